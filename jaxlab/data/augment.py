"""Train-only augmentation ops on whole examples, their registry and the spec parser (tf ops).

Every op is `(example, seed, features, **args) -> example`: `example` a dict of tensors,
`seed` an int32/int64 [2] tensor, `features` the example's `Feature` specs (their kinds
say what each op does to each feature; keys without a spec pass through). Ops are built on
`tf.image.stateless_*` / `tf.random.stateless_*`, so the result is a pure function of the
seed, which the pipeline derives from (config.seed, epoch, index of the example in the
epoch): it depends neither on the process count nor on where a run resumed. Op number `i`
of the spec draws from `fold_in(seed, i)`; an op that draws several times splits its seed.

Geometric ops (flip_lr, flip_ud, pad_crop, random_resized_crop) make one draw per example
and apply it to every feature of kind image, mask or clip: an image and its mask get the
same flip and crop, all frames of a clip the same crop. Masks are resized nearest-neighbour
(so they keep only label values) and padded with their `ignore_value` (0 when None).
Colour ops (color_jitter) and cutout change images and clips only (one draw per clip, all
frames alike). Labels, tokens and vectors are never changed. The draws equal those of the
image-only ops these replace, so an example holding only 'image' (and a scalar 'label')
is augmented bit for bit as before.

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
    random_scale[:min:max]      rescale image and mask by s ~ U[min, max] (defaults 0.5, 2),
                                then crop or pad back to size (masks padded with their
                                ignore value): segmentation's scale augmentation

All ops run on the [0, 1] images except cutout, which runs after normalization (see
`jaxlab.data.preprocess`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence

import tensorflow as tf

from jaxlab.config import ConfigError
from jaxlab.data.features import SPATIAL_KINDS, Feature

Example = dict[str, tf.Tensor]
AugmentOp = Callable[[Example, tf.Tensor, Mapping[str, Feature]], Example]

PAD_CROP_PIXELS = 4
RESIZED_CROP_ASPECT = (3 / 4, 4 / 3)
_RESIZED_CROP_ATTEMPTS = 10  # as torchvision; after 10 misses the whole image is kept
RESIZED_CROP_MIN_AREA = 0.08
_HEIGHT_AXIS = {"image": 0, "mask": 0, "clip": 1}  # the width axis follows it
_REFERENCE_ORDER = ("image", "clip", "mask")  # whose size the geometric draws use


# ---- helpers: which features an op touches -------------------------------------------------


def _keys(example: Example, features: Mapping[str, Feature], kinds: Sequence[str]) -> list[str]:
    return [k for k in example if k in features and features[k].kind in kinds]


def _reference_shape(example: Example, features: Mapping[str, Feature]) -> tf.Tensor | None:
    """[H, W, C] of the first image (else clip frame, else mask as [H, W, 1]) of the example."""
    for kind in _REFERENCE_ORDER:
        keys = sorted(_keys(example, features, (kind,)))
        if keys:
            shape = tf.shape(example[keys[0]])
            if kind == "clip":
                return shape[1:]
            if kind == "mask":
                return tf.concat([shape[:2], [1]], 0)
            return shape
    return None


def _spatial_map(
    example: Example, features: Mapping[str, Feature], fn: Callable[[tf.Tensor, Feature], tf.Tensor]
) -> Example:
    """The example with `fn(value, feature)` applied to each image, mask and clip."""
    out = dict(example)
    for key in _keys(example, features, SPATIAL_KINDS):
        out[key] = fn(example[key], features[key])
    return out


def _pixels_map(
    example: Example, features: Mapping[str, Feature], fn: Callable[[tf.Tensor], tf.Tensor]
) -> Example:
    """The example with `fn` applied to each image and clip (not masks)."""
    out = dict(example)
    for key in _keys(example, features, ("image", "clip")):
        out[key] = fn(example[key])
    return out


def _window(feature: Feature, rank: int, hw: Sequence[tf.Tensor], rest: int) -> tf.Tensor:
    """A vector of `rank` entries: `hw` at the feature's height and width axes, `rest` elsewhere."""
    axis = _HEIGHT_AXIS[feature.kind]
    parts = [tf.fill([axis], rest), tf.stack(hw), tf.fill([rank - axis - 2], rest)]
    return tf.concat([tf.cast(p, tf.int32) for p in parts], 0)


# ---- the ops ---------------------------------------------------------------------------------


def _flip(example: Example, seed: tf.Tensor, features: Mapping[str, Feature], dim: int) -> Example:
    # The draw of tf.image.stateless_random_flip_{left_right,up_down} on one image.
    flip = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=1.0) < 0.5

    def apply(value: tf.Tensor, feature: Feature) -> tf.Tensor:
        axis = _HEIGHT_AXIS[feature.kind] + dim
        flipped = tf.cond(flip, lambda: tf.reverse(value, [axis]), lambda: value)
        return tf.ensure_shape(flipped, value.shape)

    return _spatial_map(example, features, apply)


def flip_lr(example: Example, seed: tf.Tensor, features: Mapping[str, Feature]) -> Example:
    """Flips images, masks and clips left-right together with probability 1/2."""
    return _flip(example, seed, features, dim=1)


def flip_ud(example: Example, seed: tf.Tensor, features: Mapping[str, Feature]) -> Example:
    """Flips images, masks and clips upside down together with probability 1/2."""
    return _flip(example, seed, features, dim=0)


def pad_crop(
    example: Example,
    seed: tf.Tensor,
    features: Mapping[str, Feature],
    padding: int = PAD_CROP_PIXELS,
) -> Example:
    """Pads `padding` pixels on each side (black for images and clips, `ignore_value` for
    masks), then crops the same random window of the original size from every one."""
    # The offsets of tf.image.stateless_random_crop on a padded [H, W, C] image.
    limit = tf.constant([2 * padding + 1, 2 * padding + 1, 1], tf.int32)
    draw = tf.random.stateless_uniform([3], seed=seed, maxval=tf.int32.max, dtype=tf.int32)
    offset = draw % limit

    def apply(value: tf.Tensor, feature: Feature) -> tf.Tensor:
        rank = len(value.shape)
        fill = (feature.ignore_value or 0) if feature.kind == "mask" else 0
        pads = tf.stack([_window(feature, rank, (padding, padding), 0)] * 2, axis=1)
        padded = tf.pad(value, pads, constant_values=tf.cast(fill, value.dtype))
        begin = _window(feature, rank, (offset[0], offset[1]), 0)
        out = tf.slice(padded, begin, tf.shape(value))
        return tf.ensure_shape(out, value.shape)

    return _spatial_map(example, features, apply)


def sample_crop_box(
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
    example: Example,
    seed: tf.Tensor,
    features: Mapping[str, Feature],
    min_area: float = RESIZED_CROP_MIN_AREA,
) -> Example:
    """Inception-style crop: area fraction in [min_area, 1], aspect ratio (w/h) in [3/4, 4/3],
    resized back to the input's height and width (bilinear; nearest-neighbour for masks).

    One box for the whole example, from `tf.image.stateless_sample_distorted_bounding_box`;
    when none of its attempts fits, the whole image is kept.
    """
    shape = _reference_shape(example, features)
    if shape is None:
        return example
    begin, size = sample_crop_box(shape, seed, min_area)

    def apply(value: tf.Tensor, feature: Feature) -> tf.Tensor:
        rank = len(value.shape)
        crop = tf.slice(
            value,
            _window(feature, rank, (begin[0], begin[1]), 0),
            _window(feature, rank, (size[0], size[1]), -1),
        )
        if feature.kind == "mask":
            crop = crop[..., None] if rank == 2 else crop
            out = tf.image.resize(crop, shape[:2], method="nearest")
            out = out[..., 0] if rank == 2 else out
        else:
            out = tf.image.resize(crop, shape[:2], method="bilinear")
        return tf.ensure_shape(tf.cast(out, value.dtype), value.shape)

    return _spatial_map(example, features, apply)


def _jitter(
    pixels: tf.Tensor,
    seed: tf.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
) -> tf.Tensor:
    channels = pixels.shape[-1]
    if channels is None:
        raise ValueError("color_jitter needs images with a known channel count")
    seeds = tf.random.experimental.stateless_split(seed, 4)
    if brightness > 0:
        factor = tf.random.stateless_uniform([], seeds[0], 1 - brightness, 1 + brightness)
        pixels = tf.clip_by_value(pixels * factor, 0.0, 1.0)
    if contrast > 0:
        pixels = tf.image.stateless_random_contrast(pixels, 1 - contrast, 1 + contrast, seeds[1])
        pixels = tf.clip_by_value(pixels, 0.0, 1.0)
    if channels == 3 and saturation > 0:
        pixels = tf.image.stateless_random_saturation(
            pixels, 1 - saturation, 1 + saturation, seeds[2]
        )
        pixels = tf.clip_by_value(pixels, 0.0, 1.0)
    if channels == 3 and hue > 0:
        pixels = tf.clip_by_value(tf.image.stateless_random_hue(pixels, hue, seeds[3]), 0.0, 1.0)
    return pixels


def color_jitter(
    example: Example,
    seed: tf.Tensor,
    features: Mapping[str, Feature],
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
) -> Example:
    """Random brightness, contrast, saturation and hue of images and clips, in that order,
    each clipped to [0, 1]; one draw per example (all frames of a clip alike).

    As torchvision's ColorJitter: brightness multiplies by a factor in [1 - b, 1 + b];
    contrast scales the distance to each channel's mean (per frame) by a factor in
    [1 - c, 1 + c]; saturation scales the HSV saturation by a factor in [1 - s, 1 + s]; hue
    shifts the hue by up to h turns. A strength of 0 skips that part. Saturation and hue
    need colour: without exactly 3 channels (grayscale) they are skipped. Unlike
    torchvision the order is fixed, not drawn per image.
    """
    jitter = functools.partial(
        _jitter,
        seed=seed,
        brightness=brightness,
        contrast=contrast,
        saturation=saturation,
        hue=hue,
    )
    return _pixels_map(example, features, jitter)


def cutout(
    example: Example,
    seed: tf.Tensor,
    features: Mapping[str, Feature],
    size: int | None = None,
) -> Example:
    """Sets a `size` x `size` square of images and clips (every frame) to 0; its centre is
    uniform over the pixels and the square is clipped at the borders (DeVries & Taylor,
    2017). Masks keep their labels.

    The default size is min(8, half the smaller side). In the pipeline it runs after
    normalization, so 0 is the dataset mean.
    """
    shape = _reference_shape(example, features)
    if shape is None:
        return example
    height, width = shape[0], shape[1]
    side = tf.minimum(8, tf.minimum(height, width) // 2) if size is None else tf.constant(size)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    cy = tf.random.stateless_uniform([], seeds[0], 0, height, dtype=tf.int32)
    cx = tf.random.stateless_uniform([], seeds[1], 0, width, dtype=tf.int32)
    y0, x0 = cy - side // 2, cx - side // 2
    ys, xs = tf.range(height)[:, None], tf.range(width)[None, :]
    inside = ((ys >= y0) & (ys < y0 + side) & (xs >= x0) & (xs < x0 + side))[:, :, None]
    return _pixels_map(
        example, features, lambda value: tf.where(inside, tf.zeros_like(value), value)
    )


# ---- the registry and the spec parser ------------------------------------------------------


def random_scale(
    example: Example,
    seed: tf.Tensor,
    features: Mapping[str, Feature],
    min_scale: float = 0.5,
    max_scale: float = 2.0,
) -> Example:
    """Rescales the image(s) and mask(s) of an example by one factor s ~ U[min_scale,
    max_scale] (images bilinear with half-pixel centres, the models' align_corners=False
    convention; masks nearest-neighbour, so they keep label values), then brings them back
    to the original size: a random crop when larger, padding at the bottom and right when
    smaller (images 0, masks their `ignore_value`, 255, so the padding is not scored).
    The crop offset is drawn from the same seed for every feature."""
    keys = [k for k in example if k in features and features[k].kind in ("image", "mask")]
    if not keys:
        return example
    scale_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    s = tf.random.stateless_uniform([], scale_seed, min_scale, max_scale)
    h, w = tf.shape(example[keys[0]])[0], tf.shape(example[keys[0]])[1]
    nh = tf.maximum(1, tf.cast(tf.round(tf.cast(h, tf.float32) * s), tf.int32))
    nw = tf.maximum(1, tf.cast(tf.round(tf.cast(w, tf.float32) * s), tf.int32))
    u = tf.random.stateless_uniform([2], crop_seed, 0.0, 1.0)
    oy = tf.cast(u[0] * tf.cast(tf.maximum(nh - h, 0) + 1, tf.float32), tf.int32)
    ox = tf.cast(u[1] * tf.cast(tf.maximum(nw - w, 0) + 1, tf.float32), tf.int32)
    oy, ox = tf.minimum(oy, tf.maximum(nh - h, 0)), tf.minimum(ox, tf.maximum(nw - w, 0))
    out = dict(example)
    for key in keys:
        value, feature = example[key], features[key]
        mask = feature.kind == "mask"
        x = value[..., None] if mask and len(value.shape) == 2 else value
        method = "nearest" if mask else "bilinear"
        resized = tf.cast(tf.image.resize(x, tf.stack([nh, nw]), method=method), value.dtype)
        resized = resized[oy : oy + h, ox : ox + w]
        fill = (feature.ignore_value or 0) if mask else 0
        pad = [[0, h - tf.shape(resized)[0]], [0, w - tf.shape(resized)[1]], [0, 0]]
        resized = tf.pad(resized, pad, constant_values=tf.cast(fill, value.dtype))
        resized = resized[..., 0] if mask and len(value.shape) == 2 else resized
        out[key] = tf.ensure_shape(resized, value.shape)
    return out


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
    """A registered op: `fn(example, seed, features, **args)`, its arguments, and whether it
    runs after normalization (cutout) instead of on the [0, 1] images."""

    fn: Callable[..., Example]
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
    "random_scale": AugmentOpSpec(
        random_scale,
        (OpArg("min_scale", 0.5, 0.0, low_open=True), OpArg("max_scale", 2.0, 0.0, low_open=True)),
    ),
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


def apply_ops(
    example: Example,
    ops: Sequence[str],
    seed: tf.Tensor,
    features: Mapping[str, Feature],
    *,
    after_normalize: bool = False,
) -> Example:
    """Applies, in order, the ops of `ops` that run at this stage (before normalization by
    default, else only those that run after it); op `i` of `ops` draws from fold_in(seed, i)."""
    for position, entry in enumerate(ops):
        op, late = build_op(entry)
        if late == after_normalize:
            example = op(
                example, tf.random.experimental.stateless_fold_in(seed, position), features
            )
    return example
