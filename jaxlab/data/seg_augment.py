"""`random_scale`: the joint random-scale op of segmentation training (DeepLab's scale
augmentation), in the signature of `jaxlab.data.augment`'s ops.

It belongs in `jaxlab.data.augment.AUGMENT_OPS` (not owned by the segmentation work), as

    "random_scale": AugmentOpSpec(
        random_scale,
        (OpArg("min_scale", 0.5, 0.0, low_open=True), OpArg("max_scale", 2.0, 0.0, low_open=True)),
    ),

so that `dataset.augment = "random_scale:0.5:2,flip_lr"` reaches it; until then it is
called directly (tests). Images and masks (rank 3 / rank 2, [H, W, ...]) are handled;
clips pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from jaxlab.data.features import Feature

Example = dict[str, tf.Tensor]


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
