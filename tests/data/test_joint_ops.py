"""The augmentation ops on whole examples: one draw moves an image, its mask and a clip
together; colour ops and cutout leave masks alone; image-only results are those of the
image-only ops they replaced (reference implementations below, copied from that code)."""

import numpy as np
import pytest
import tensorflow as tf

from jaxlab.data import augment, preprocess
from jaxlab.data.features import Feature
from tests.data.helpers import on_image

H, W, T = 8, 8, 3
SEEDS = [tf.constant([11, s], tf.int32) for s in range(16)]
FEATURES = {
    "image": Feature((H, W, 2), "float32", "image"),
    "mask": Feature((H, W), "int32", "mask", ignore_value=255),
    "clip": Feature((T, H, W, 2), "float32", "clip"),
    "label": Feature((), "int32", "label"),
}


def _example():
    """image = (y, x) of each pixel, mask = y * W + x (a distinct label per pixel), clip
    frame t = image * (t + 1), label 7."""
    ys, xs = np.mgrid[:H, :W].astype(np.float32)
    image = np.stack([ys, xs], -1)
    clip = np.stack([image * (t + 1) for t in range(T)])
    return {
        "image": tf.constant(image),
        "mask": tf.constant((ys * W + xs).astype(np.int32)),
        "clip": tf.constant(clip),
        "label": tf.constant(7, tf.int32),
    }


def _numpy(example):
    return {key: value.numpy() for key, value in example.items()}


def _assert_clip_follows_image(out):
    for t in range(T):
        np.testing.assert_allclose(out["clip"][t], out["image"] * (t + 1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name, axis", [("flip_lr", 1), ("flip_ud", 0)])
def test_flips_move_image_mask_and_clip_together(name, axis):
    ex = _numpy(_example())
    flipped = set()
    for seed in SEEDS:
        out = _numpy(augment.AUGMENT_OPS[name].fn(_example(), seed, FEATURES))
        did = not np.array_equal(out["image"], ex["image"])
        expected = {k: np.flip(v, axis) for k, v in ex.items() if k in ("image", "mask")}
        expected["clip"] = np.flip(ex["clip"], axis + 1)
        for key in ("image", "mask", "clip"):
            np.testing.assert_array_equal(out[key], expected[key] if did else ex[key])
        assert out["label"] == 7
        flipped.add(did)
    assert flipped == {True, False}


def test_pad_crop_takes_the_same_window_everywhere_and_pads_masks_with_ignore():
    ex, p = _numpy(_example()), 2
    padded_image = np.pad(ex["image"], [(p, p), (p, p), (0, 0)])
    padded_mask = np.pad(ex["mask"], p, constant_values=255)
    offsets = set()
    for seed in SEEDS:
        out = _numpy(augment.pad_crop(_example(), seed, FEATURES, padding=p))
        # The mask's labels locate the window (a padding of 255 everywhere would be ambiguous,
        # but every window of size H x W holds at least one real pixel).
        found = [
            (dy, dx)
            for dy in range(2 * p + 1)
            for dx in range(2 * p + 1)
            if np.array_equal(out["mask"], padded_mask[dy : dy + H, dx : dx + W])
        ]
        assert len(found) == 1
        dy, dx = found[0]
        np.testing.assert_array_equal(out["image"], padded_image[dy : dy + H, dx : dx + W])
        _assert_clip_follows_image(out)
        offsets.add((dy, dx))
    assert len(offsets) > 3 and any(o != (p, p) for o in offsets)  # shifted: 255 borders


def test_random_resized_crop_is_joint_and_keeps_mask_labels():
    ex = _numpy(_example())
    zoomed = 0
    for seed in SEEDS:
        out = _numpy(augment.random_resized_crop(_example(), seed, FEATURES, min_area=0.2))
        assert out["mask"].dtype == np.int32 and out["mask"].shape == (H, W)
        assert set(np.unique(out["mask"])) <= set(np.unique(ex["mask"]))  # nearest: labels only
        # The nearest source pixel of each output pixel is within half a pixel of the
        # bilinear sample position, which the image's (y, x) channels hold.
        ys, xs = out["mask"] // W, out["mask"] % W
        assert np.abs(out["image"][..., 0] - ys).max() <= 0.5 + 1e-4
        assert np.abs(out["image"][..., 1] - xs).max() <= 0.5 + 1e-4
        _assert_clip_follows_image(out)
        zoomed += len(np.unique(out["mask"])) < H * W
    assert zoomed > 8


def test_color_jitter_changes_images_and_clips_alike_and_never_masks():
    ex = _example()
    ex["image"] = ex["image"] / 40 + 0.3  # in [0.3, 0.5]: no clipping at strength 0.4
    ex["clip"] = tf.stack([ex["image"]] * T)
    for seed in SEEDS[:4]:
        out = _numpy(augment.color_jitter(dict(ex), seed, FEATURES, 0.4, 0.4, 0.0, 0.0))
        assert not np.allclose(out["image"], ex["image"].numpy())
        for t in range(T):  # one draw for the clip, the same as the image's
            np.testing.assert_allclose(out["clip"][t], out["image"], rtol=1e-6)
        np.testing.assert_array_equal(out["mask"], ex["mask"].numpy())


def test_cutout_zeroes_the_same_square_in_images_and_every_frame_not_masks():
    ex = _example()
    ex["image"] += 1.0  # no zero pixel before cutout
    ex["clip"] += 1.0
    for seed in SEEDS[:6]:
        out = _numpy(augment.cutout(dict(ex), seed, FEATURES, size=3))
        square = (out["image"] == 0).all(-1)
        assert 0 < square.sum() <= 9
        for t in range(T):
            np.testing.assert_array_equal((out["clip"][t] == 0).all(-1), square)
        np.testing.assert_array_equal(out["mask"], ex["mask"].numpy())


def test_ops_skip_keys_without_a_spec_and_examples_without_pixels():
    only_label = {"label": tf.constant(3), "other": tf.constant([1.0, 2.0])}
    for name, spec in augment.AUGMENT_OPS.items():
        out = _numpy(spec.fn(dict(only_label), SEEDS[0], FEATURES))
        assert out["label"] == 3 and list(out["other"]) == [1.0, 2.0], name


# ---- image-only: bit-identical to the image ops these replaced -----------------------------


def _old_pad_crop(image, seed, padding=4):
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    return tf.image.stateless_random_crop(padded, tf.shape(image), seed)


def _old_random_resized_crop(image, seed, min_area=0.08):
    shape = tf.shape(image)
    begin, size = augment.sample_crop_box(shape, seed, min_area)
    out = tf.image.resize(tf.slice(image, begin, size), shape[:2], method="bilinear")
    return tf.ensure_shape(tf.cast(out, image.dtype), image.shape)


def _old_cutout(image, seed, size=None):
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


@pytest.mark.parametrize(
    "op, old, kwargs",
    [
        (augment.flip_lr, tf.image.stateless_random_flip_left_right, {}),
        (augment.flip_ud, tf.image.stateless_random_flip_up_down, {}),
        (augment.pad_crop, _old_pad_crop, {"padding": 3}),
        (augment.random_resized_crop, _old_random_resized_crop, {"min_area": 0.3}),
        (augment.cutout, _old_cutout, {}),
    ],
)
def test_image_only_examples_are_augmented_as_before(op, old, kwargs):
    image = tf.random.stateless_uniform((10, 9, 3), [4, 2])
    for seed in SEEDS:
        np.testing.assert_array_equal(
            on_image(op, image, seed, **kwargs).numpy(), old(image, seed, **kwargs).numpy()
        )


def test_preprocess_example_with_a_label_equals_preprocess_image():
    image = tf.constant(np.arange(8 * 8 * 3).reshape(8, 8, 3) % 251, tf.uint8)
    features = {
        "image": Feature((8, 8, 3), "float32", "image"),
        "label": Feature((), "int32", "label"),
    }
    ops = augment.parse_augment("flip_lr,pad_crop:2,random_resized_crop,color_jitter,cutout:3")
    for seed in SEEDS[:4]:
        raw = {"image": image, "label": tf.constant(4, tf.int64), "unused": tf.constant(1)}
        out = preprocess.preprocess_example(raw, "cifar10", features, ops, seed)
        assert set(out) == {"image", "label"} and out["label"].dtype == tf.int32
        expected = preprocess.preprocess_image(image, "cifar10", ops, seed)
        np.testing.assert_array_equal(out["image"].numpy(), expected.numpy())
