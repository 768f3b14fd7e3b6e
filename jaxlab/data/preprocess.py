"""Per-dataset preprocessing of whole examples (tf ops only); the ops are in `augment`.

An example's images and clips go through `scale` (uint8 -> float32 in [0, 1]), then, for
training only, the augmentation ops named by `config.dataset.augment` (which move masks
with the images), then `normalize` with the dataset's mean and std:

    scale -> [ops on the [0, 1] images, in spec order] -> normalize -> [cutout]

Masks and labels are cast to their spec's dtype (int32) and only moved by geometric ops.

Datasets of JPEGs of varying sizes (`FIXED_SIZE`: imagenet2012) replace `scale` by a decode
to a fixed square: a random resized crop for training (drawn even when no op is named),
resize and center crop for eval. The ops then run on that square. (Image-only: such a
dataset has no masks, which this crop would not move.)

Geometric and colour ops run on the [0, 1] image, so the padding of `pad_crop` is black (0)
as in the usual recipes and `color_jitter` clips to [0, 1]. `cutout` alone runs after
normalization, whatever its position in the spec: its square is 0 in the normalized image,
i.e. the dataset mean, as in DeVries & Taylor (2017), so it removes information without
adding a black patch the eval images never have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import tensorflow as tf

from jaxlab.data.augment import RESIZED_CROP_MIN_AREA, apply_ops, sample_crop_box
from jaxlab.data.features import Feature


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std of a dataset's pixels, on the [0, 1] scale."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


# The usual published statistics of each train split.
NORMALIZATION: dict[str, Normalization] = {
    "cifar10": Normalization(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "cifar100": Normalization(mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
    # Computed once over all pixels of the digits train split (jaxlab.data.digits: the
    # uint8 images / 255): mean 0.305434, std 0.375957.
    "digits": Normalization(mean=(0.3054,), std=(0.3760,)),
    "fashion_mnist": Normalization(mean=(0.2860,), std=(0.3530,)),
    "imagenet2012": Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    "mnist": Normalization(mean=(0.1307,), std=(0.3081,)),
    # Computed once over all pixels of the shapes_seg train split (jaxlab.data.shapes_seg):
    # mean (0.234874, 0.226903, 0.234669), std (0.209939, 0.186973, 0.216965).
    "shapes_seg": Normalization(mean=(0.2349, 0.2269, 0.2347), std=(0.2099, 0.1870, 0.2170)),
}


@dataclasses.dataclass(frozen=True)
class FixedSize:
    """How a dataset of JPEGs of varying sizes becomes `size` x `size` images.

    Train: an Inception-style random resized crop (area fraction in [0.08, 1], aspect ratio
    in [3/4, 4/3]) decoded straight from the JPEG (`tf.image.decode_and_crop_jpeg` decodes
    only the window) and resized to `size`. Eval: the shorter side resized to
    `eval_resize`, then the central `size` x `size` window (224/256 = 0.875, as the
    ResNet and ViT recipes).
    """

    size: int
    eval_resize: int


# Datasets whose images differ in size: the pipeline reads their JPEG bytes undecoded
# (tfds.decode.SkipDecoding) and `preprocess_example` decodes and crops them.
FIXED_SIZE: dict[str, FixedSize] = {"imagenet2012": FixedSize(size=224, eval_resize=256)}

_CROP_STREAM = 1_000_000  # fold-in tag of the fixed-size crop (augment op i uses i)


# ---- preprocessing ---------------------------------------------------------------------------


def scale(image: tf.Tensor) -> tf.Tensor:
    """Maps a uint8 image to float32 in [0, 1]."""
    return tf.cast(image, tf.float32) / 255.0


def normalize(image: tf.Tensor, dataset: str) -> tf.Tensor:
    """Subtracts the dataset's per-channel mean and divides by its std."""
    norm = NORMALIZATION[dataset]
    return (image - tf.constant(norm.mean, tf.float32)) / tf.constant(norm.std, tf.float32)


def decode_random_resized_crop(
    encoded: tf.Tensor, seed: tf.Tensor, size: int, min_area: float = RESIZED_CROP_MIN_AREA
) -> tf.Tensor:
    """JPEG bytes -> float32 [size, size, 3] in [0, 1]: a random crop (area fraction in
    [min_area, 1], aspect ratio in [3/4, 4/3], the whole image after 10 misses) decoded
    from the JPEG alone and resized (bilinear) to `size` x `size`. Stateless in `seed`.

    Written here rather than taken from a library: TF has the pieces (the box sampler and
    `decode_and_crop_jpeg`, which decodes only the window) but not the op; this is the
    Inception/torchvision RandomResizedCrop on them.
    """
    begin, crop_size = sample_crop_box(tf.image.extract_jpeg_shape(encoded), seed, min_area)
    window = tf.stack([begin[0], begin[1], crop_size[0], crop_size[1]])
    crop = tf.image.decode_and_crop_jpeg(encoded, window, channels=3)
    out = tf.image.resize(crop, [size, size], method="bilinear") / 255.0
    return tf.ensure_shape(out, [size, size, 3])


def decode_center_crop(encoded: tf.Tensor, size: int, resize: int) -> tf.Tensor:
    """JPEG bytes -> float32 [size, size, 3] in [0, 1]: the shorter side resized to `resize`
    (bilinear, antialiased, aspect ratio kept), then the central `size` x `size` window."""
    image = tf.image.decode_jpeg(encoded, channels=3)
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize / tf.reduce_min(hw)
    new_hw = tf.maximum(tf.cast(tf.round(hw * scale), tf.int32), resize)
    image = tf.image.resize(image, new_hw, method="bilinear", antialias=True) / 255.0
    top, left = (new_hw[0] - size) // 2, (new_hw[1] - size) // 2
    out = tf.clip_by_value(image[top : top + size, left : left + size], 0.0, 1.0)
    return tf.ensure_shape(out, [size, size, 3])


def preprocess_example(
    example: Mapping[str, tf.Tensor],
    dataset: str,
    features: Mapping[str, Feature],
    ops: Sequence[str] = (),
    seed: tf.Tensor | None = None,
    *,
    training: bool | None = None,
    normalized: bool = True,
) -> dict[str, tf.Tensor]:
    """One raw example -> the example of `features`: images and clips normalized float32,
    masks and labels cast to their dtype; augmented (all features jointly) when training.

    Raw images and clips are uint8, or for a dataset of `FIXED_SIZE` the image's JPEG bytes,
    decoded to the fixed size (train: random resized crop drawn from `seed`; eval: resize
    and center crop). Keys without a spec in `features` are dropped. `ops` are spec entries
    (see `augment.parse_augment`); `training` defaults to whether `ops` are given; `seed`
    (int32/int64 [2]) is required when training draws anything. Eval (`training` False) is
    never augmented. `normalized` False (`config.dataset.normalize`, the generative models)
    leaves images and clips on the [0, 1] scale.
    """
    training = bool(ops) if training is None else training
    if ops and not training:
        raise ValueError("augmentation ops are for training only")
    fixed = FIXED_SIZE.get(dataset)
    if training and (ops or fixed) and seed is None:
        raise ValueError("augmentation needs a seed")
    out = {}
    for key, value in example.items():
        feature = features.get(key)
        if feature is None:
            continue
        if feature.kind not in ("image", "clip"):
            out[key] = tf.cast(value, feature.dtype)
        elif fixed is None:
            out[key] = scale(value)
        elif training:
            crop_seed = tf.random.experimental.stateless_fold_in(seed, _CROP_STREAM)
            out[key] = decode_random_resized_crop(value, crop_seed, fixed.size)
        else:
            out[key] = decode_center_crop(value, fixed.size, fixed.eval_resize)
    if ops:
        out = apply_ops(out, ops, seed, features)
    for key in out:
        if normalized and features[key].kind in ("image", "clip"):
            out[key] = normalize(out[key], dataset)
    if ops:
        out = apply_ops(out, ops, seed, features, after_normalize=True)
    return out


def preprocess_image(
    image: tf.Tensor,
    dataset: str,
    ops: Sequence[str] = (),
    seed: tf.Tensor | None = None,
    *,
    training: bool | None = None,
) -> tf.Tensor:
    """One image (uint8 [H, W, C], or JPEG bytes for `FIXED_SIZE`) -> normalized float32
    [H, W, C]; `preprocess_example` on an example holding only this image."""
    fixed = FIXED_SIZE.get(dataset)
    shape = (fixed.size, fixed.size, 3) if fixed else tuple(image.shape)
    features = {"image": Feature(shape, "float32", "image")}
    return preprocess_example({"image": image}, dataset, features, ops, seed, training=training)[
        "image"
    ]
