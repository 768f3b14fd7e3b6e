"""Per-dataset preprocessing and the registry of train-only augmentation ops (tf ops only).

An example goes through `scale` (uint8 -> float32 in [0, 1]), then, for training only, the
augmentation ops named by `config.dataset.augment`, then `normalize` with the dataset's
mean and std:

    scale -> [ops on the [0, 1] image, in spec order] -> normalize -> [cutout]

Datasets of JPEGs of varying sizes (`FIXED_SIZE`: imagenet2012) replace `scale` by a decode
to a fixed square: a random resized crop for training (drawn even when no op is named),
resize and center crop for eval. The ops then run on that square.

Geometric and colour ops run on the [0, 1] image, so the padding of `pad_crop` is black (0)
as in the usual recipes and `color_jitter` clips to [0, 1]. `cutout` alone runs after
normalization, whatever its position in the spec: its square is 0 in the normalized image,
i.e. the dataset mean, as in DeVries & Taylor (2017), so it removes information without
adding a black patch the eval images never have.

The spec is a comma-separated list of `name[:arg[:arg...]]` entries; a missing or empty
argument takes its default ("color_jitter::0.2" changes the contrast alone):

    flip_lr                     horizontal flip with probability 1/2
    flip_ud                     vertical flip with probability 1/2
    pad_crop[:padding]          pad (black, default 4, integer >= 0), random crop of the size
    random_resized_crop[:min_area]
                                crop of area fraction in [min_area, 1] (default 0.08, in
                                (0, 1]) and aspect ratio in [3/4, 4/3], resized back
    color_jitter[:b:c:s:h]      brightness, contrast, saturation in [0, 1] (defaults 0.4),
                                hue in [0, 0.5] (default 0.1)
    cutout[:size]               zero a size x size square (integer >= 1, default
                                min(8, half the smaller side)) around a random centre

Every augmentation op is `(image, seed, **args) -> image` with `image` float32 [H, W, C] and
`seed` an int32/int64 [2] tensor, built on `tf.image.stateless_*` / `tf.random.stateless_*`:
the result is a pure function of the seed, which the pipeline derives from (config.seed,
epoch, index of the example in the epoch), so it depends neither on the process count nor on
where a run resumed. Op number `i` of the spec draws from `fold_in(seed, i)`; an op that
draws several times splits its own seed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

import tensorflow as tf

from jaxlab.config import ConfigError


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
# (tfds.decode.SkipDecoding) and `preprocess_image` decodes and crops them.
FIXED_SIZE: dict[str, FixedSize] = {"imagenet2012": FixedSize(size=224, eval_resize=256)}

AugmentOp = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

PAD_CROP_PIXELS = 4
RESIZED_CROP_ASPECT = (3 / 4, 4 / 3)
_RESIZED_CROP_ATTEMPTS = 10  # as torchvision; after 10 misses the whole image is kept
RESIZED_CROP_MIN_AREA = 0.08
_CROP_STREAM = 1_000_000  # fold-in tag of the fixed-size crop (augment op i uses i)


# ---- the ops ---------------------------------------------------------------------------------


def flip_lr(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Flips the image left-right with probability 1/2 (stateless in `seed`)."""
    return tf.image.stateless_random_flip_left_right(image, seed)


def flip_ud(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Flips the image upside down with probability 1/2 (stateless in `seed`)."""
    return tf.image.stateless_random_flip_up_down(image, seed)


def pad_crop(image: tf.Tensor, seed: tf.Tensor, padding: int = PAD_CROP_PIXELS) -> tf.Tensor:
    """Pads `padding` black pixels on each side, then crops a random window of the original size."""
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    return tf.image.stateless_random_crop(padded, tf.shape(image), seed)


def _sample_crop_box(
    shape: tf.Tensor, seed: tf.Tensor, min_area: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """(begin, size) of an Inception-style crop box of an image of `shape` [H, W, C]: area
    fraction in [min_area, 1], aspect ratio in [3/4, 4/3]; the whole image after 10 misses."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=RESIZED_CROP_ASPECT,
        area_range=(min_area, 1.0),
        max_attempts=_RESIZED_CROP_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def random_resized_crop(
    image: tf.Tensor, seed: tf.Tensor, min_area: float = RESIZED_CROP_MIN_AREA
) -> tf.Tensor:
    """Inception-style crop: area fraction in [min_area, 1], aspect ratio (w/h) in [3/4, 4/3],
    resized (bilinear) back to the input's height and width.

    The box comes from `tf.image.stateless_sample_distorted_bounding_box`; when none of its
    attempts fits the image, the whole image is kept.
    """
    shape = tf.shape(image)
    begin, size = _sample_crop_box(shape, seed, min_area)
    crop = tf.slice(image, begin, size)
    out = tf.image.resize(crop, shape[:2], method="bilinear")
    return tf.ensure_shape(tf.cast(out, image.dtype), image.shape)


def color_jitter(
    image: tf.Tensor,
    seed: tf.Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
) -> tf.Tensor:
    """Random brightness, contrast, saturation and hue, in that order, each clipped to [0, 1].

    As torchvision's ColorJitter: brightness multiplies by a factor in [1 - b, 1 + b];
    contrast scales the distance to each channel's mean by a factor in [1 - c, 1 + c];
    saturation scales the HSV saturation by a factor in [1 - s, 1 + s]; hue shifts the hue by
    up to h turns. A strength of 0 skips that part. Saturation and hue need colour: for an
    image without exactly 3 channels (grayscale) they are skipped. Unlike torchvision the
    order is fixed, not drawn per image.
    """
    channels = image.shape[-1]
    if channels is None:
        raise ValueError("color_jitter needs images with a known channel count")
    seeds = tf.random.experimental.stateless_split(seed, 4)
    if brightness > 0:
        factor = tf.random.stateless_uniform([], seeds[0], 1 - brightness, 1 + brightness)
        image = tf.clip_by_value(image * factor, 0.0, 1.0)
    if contrast > 0:
        image = tf.image.stateless_random_contrast(image, 1 - contrast, 1 + contrast, seeds[1])
        image = tf.clip_by_value(image, 0.0, 1.0)
    if channels == 3 and saturation > 0:
        image = tf.image.stateless_random_saturation(
            image, 1 - saturation, 1 + saturation, seeds[2]
        )
        image = tf.clip_by_value(image, 0.0, 1.0)
    if channels == 3 and hue > 0:
        image = tf.clip_by_value(tf.image.stateless_random_hue(image, hue, seeds[3]), 0.0, 1.0)
    return image


def cutout(image: tf.Tensor, seed: tf.Tensor, size: int | None = None) -> tf.Tensor:
    """Sets a `size` x `size` square to 0; its centre is uniform over the pixels and the square
    is clipped at the borders (DeVries & Taylor, 2017).

    The default size is min(8, half the smaller side). In the pipeline it runs after
    normalization, so 0 is the dataset mean.
    """
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    side = tf.minimum(8, tf.minimum(height, width) // 2) if size is None else tf.constant(size)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    cy = tf.random.stateless_uniform([], seeds[0], 0, height, dtype=tf.int32)
    cx = tf.random.stateless_uniform([], seeds[1], 0, width, dtype=tf.int32)
    y0, x0 = cy - side // 2, cx - side // 2
    ys, xs = tf.range(height)[:, None], tf.range(width)[None, :]
    inside = (ys >= y0) & (ys < y0 + side) & (xs >= x0) & (xs < x0 + side)
    return tf.where(inside[:, :, None], tf.zeros_like(image), image)


# ---- the registry and the spec parser ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpArg:
    """One positional argument of an op: its name, default and valid range (inclusive unless
    `low_open`; `high` None means unbounded)."""

    name: str
    default: float | int | None
    low: float
    high: float | None = None
    integer: bool = False
    low_open: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.high is None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        return f"{kind} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"

    def parse(self, raw: str) -> float | int | None:
        """The value of `raw` (the default when empty); None when not valid."""
        if raw == "":
            return self.default
        try:
            value = int(raw) if self.integer else float(raw)
        except ValueError:
            return None
        if not math.isfinite(value) or value < self.low or (self.low_open and value == self.low):
            return None
        if self.high is not None and value > self.high:
            return None
        return value


@dataclasses.dataclass(frozen=True)
class AugmentOpSpec:
    """A registered op: `fn(image, seed, **args)`, its arguments, and whether it runs after
    normalization (cutout) instead of on the [0, 1] image."""

    fn: Callable[..., tf.Tensor]
    args: tuple[OpArg, ...] = ()
    after_normalize: bool = False

    def usage(self, name: str) -> str:
        return name + "".join(f"[:{a.name}]" for a in self.args)


_STRENGTH = dict(default=0.4, low=0.0, high=1.0)

# In the order the errors list them.
AUGMENT_OPS: dict[str, AugmentOpSpec] = {
    "flip_lr": AugmentOpSpec(flip_lr),
    "pad_crop": AugmentOpSpec(pad_crop, (OpArg("padding", PAD_CROP_PIXELS, 0, integer=True),)),
    "flip_ud": AugmentOpSpec(flip_ud),
    "random_resized_crop": AugmentOpSpec(
        random_resized_crop, (OpArg("min_area", RESIZED_CROP_MIN_AREA, 0.0, 1.0, low_open=True),)
    ),
    "color_jitter": AugmentOpSpec(
        color_jitter,
        (
            OpArg("brightness", **_STRENGTH),
            OpArg("contrast", **_STRENGTH),
            OpArg("saturation", **_STRENGTH),
            OpArg("hue", 0.1, 0.0, 0.5),
        ),
    ),
    "cutout": AugmentOpSpec(cutout, (OpArg("size", None, 1, integer=True),), after_normalize=True),
}


def parse_op(entry: str) -> tuple[str, dict[str, float | int | None]]:
    """Parses one `name[:arg...]` entry into (name, keyword arguments with defaults filled).

    Raises ConfigError naming the valid ops, or the argument's valid range.
    """
    name, *raw_args = [part.strip() for part in entry.split(":")]
    if name not in AUGMENT_OPS:
        valid = ", ".join(spec.usage(n) for n, spec in AUGMENT_OPS.items())
        raise ConfigError(f"unknown augment op {name!r} in dataset.augment; valid ops: {valid}")
    spec = AUGMENT_OPS[name]
    if len(raw_args) > len(spec.args):
        most = f"at most {len(spec.args)} argument(s)" if spec.args else "no arguments"
        raise ConfigError(
            f"augment op {name!r} takes {most} ({spec.usage(name)}), got {entry.strip()!r}"
        )
    kwargs = {}
    for i, arg in enumerate(spec.args):
        raw = raw_args[i] if i < len(raw_args) else ""
        value = arg.parse(raw)
        if value is None and raw != "":
            raise ConfigError(
                f"augment op {name!r}: {arg.name} must be {arg.describe()}, got {raw!r}"
            )
        kwargs[arg.name] = value
    return name, kwargs


def parse_augment(spec: str) -> list[str]:
    """Splits a comma-separated `config.dataset.augment` into op entries, checking each.

    Empty entries are ignored ("" means no augmentation); spaces around names and arguments
    are dropped ("pad_crop : 2" -> "pad_crop:2"). Raises ConfigError naming an unknown op
    and the valid ones, or a bad argument and its valid range.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"dataset.augment must be a comma-separated string, got {spec!r}")
    entries = []
    for entry in spec.split(","):
        if not entry.strip():
            continue
        parse_op(entry)
        entries.append(":".join(part.strip() for part in entry.split(":")))
    return entries


def build_op(entry: str) -> tuple[AugmentOp, bool]:
    """The op of one spec entry, its arguments bound, and whether it runs after normalize."""
    name, kwargs = parse_op(entry)
    spec = AUGMENT_OPS[name]
    return functools.partial(spec.fn, **kwargs), spec.after_normalize


# ---- preprocessing ---------------------------------------------------------------------------


def scale(image: tf.Tensor) -> tf.Tensor:
    """Maps a uint8 image to float32 in [0, 1]."""
    return tf.cast(image, tf.float32) / 255.0


def normalize(image: tf.Tensor, dataset: str) -> tf.Tensor:
    """Subtracts the dataset's per-channel mean and divides by its std."""
    norm = NORMALIZATION[dataset]
    return (image - tf.constant(norm.mean, tf.float32)) / tf.constant(norm.std, tf.float32)


def augment(
    image: tf.Tensor, ops: Sequence[str], seed: tf.Tensor, *, after_normalize: bool = False
) -> tf.Tensor:
    """Applies, in order, the ops of `ops` that run at this stage (before normalization by
    default, else only those that run after it); op `i` of `ops` draws from fold_in(seed, i)."""
    for position, entry in enumerate(ops):
        op, late = build_op(entry)
        if late == after_normalize:
            image = op(image, tf.random.experimental.stateless_fold_in(seed, position))
    return image


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
    begin, crop_size = _sample_crop_box(tf.image.extract_jpeg_shape(encoded), seed, min_area)
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


def preprocess_image(
    image: tf.Tensor,
    dataset: str,
    ops: Sequence[str] = (),
    seed: tf.Tensor | None = None,
    *,
    training: bool | None = None,
) -> tf.Tensor:
    """One image -> normalized float32 [H, W, C]; augmented when training.

    `image` is uint8 [H, W, C], or for a dataset of `FIXED_SIZE` its JPEG bytes, which
    are decoded to the fixed size (train: random resized crop drawn from `seed`; eval:
    resize and center crop). `ops` are spec entries (see `parse_augment`); `training`
    defaults to whether `ops` are given; `seed` (int32/int64 [2]) is required when
    training draws anything. Eval (`training` False) is never augmented.
    """
    training = bool(ops) if training is None else training
    if ops and not training:
        raise ValueError("augmentation ops are for training only")
    fixed = FIXED_SIZE.get(dataset)
    if training and (ops or fixed) and seed is None:
        raise ValueError("augmentation needs a seed")
    if fixed is None:
        image = scale(image)
    elif training:
        crop_seed = tf.random.experimental.stateless_fold_in(seed, _CROP_STREAM)
        image = decode_random_resized_crop(image, crop_seed, fixed.size)
    else:
        image = decode_center_crop(image, fixed.size, fixed.eval_resize)
    if ops:
        image = augment(image, ops, seed)
    image = normalize(image, dataset)
    if ops:
        image = augment(image, ops, seed, after_normalize=True)
    return image
