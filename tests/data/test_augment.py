"""Tests of the augmentation ops one at a time, the spec grammar, and their place in the
pipeline (train only, deterministic, resumable)."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import augment, preprocess
from tests.data.helpers import on_image

SEEDS = [tf.constant([7, s], tf.int32) for s in range(16)]
FULL_SPEC = (
    "flip_lr,pad_crop:2,random_resized_crop:0.35,color_jitter:0.4:0.4:0.4:0.1,cutout:3,flip_ud"
)


def _image(shape, low=0.05, high=1.0, seed=0):
    """A float image with no zero pixel (so zeroed pixels are cutout's)."""
    return tf.random.stateless_uniform(shape, [seed, 1], low, high)


def test_flip_ud_mirrors_or_keeps():
    image = _image((5, 4, 3))
    flipped = image.numpy()[::-1]
    outcomes = set()
    for seed in SEEDS:
        out = on_image(augment.flip_ud, image, seed).numpy()
        assert np.array_equal(out, image.numpy()) or np.array_equal(out, flipped)
        outcomes.add(np.array_equal(out, flipped))
    assert outcomes == {True, False}


@pytest.mark.parametrize("padding", [0, 2])
def test_pad_crop_padding_argument(padding):
    image = _image((6, 5, 1))
    padded = np.pad(image.numpy(), [(padding, padding), (padding, padding), (0, 0)])
    offsets = set()
    for seed in SEEDS:
        out = on_image(augment.pad_crop, image, seed, padding=padding).numpy()
        found = [
            (dy, dx)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            if np.array_equal(out, padded[dy : dy + 6, dx : dx + 5])
        ]
        assert found
        offsets.add(found[0])
    assert (len(offsets) == 1) == (padding == 0)


@pytest.mark.parametrize("shape", [(8, 8, 1), (12, 9, 3)])
def test_random_resized_crop_keeps_the_shape_and_zooms(shape):
    height, width, channels = shape
    # A left-to-right ramp: any crop resized back stays a non-decreasing ramp in x, constant
    # in y, within the input's range.
    ramp = np.broadcast_to(np.linspace(0, 1, width)[None, :, None], shape).astype(np.float32)
    image = tf.constant(ramp)
    spans = []
    for seed in SEEDS:
        out = on_image(augment.random_resized_crop, image, seed, min_area=0.2).numpy()
        assert out.shape == shape and out.dtype == np.float32
        assert (out >= -1e-6).all() and (out <= 1 + 1e-6).all()
        np.testing.assert_allclose(out, np.broadcast_to(out[:1], shape), atol=1e-6)
        assert (np.diff(out[0, :, 0]) >= -1e-6).all()
        spans.append(out.max() - out.min())
    assert min(spans) < 0.9  # some crops zoom in
    # min_area 1 on a square image: the only box is the whole image.
    square = _image((8, 8, 3))
    np.testing.assert_allclose(
        on_image(augment.random_resized_crop, square, SEEDS[0], min_area=1.0).numpy(),
        square.numpy(),
    )


def test_color_jitter_brightness_and_contrast_statistics():
    rgb = _image((6, 6, 3), low=0.3, high=0.7)  # no clipping for strengths <= 0.4
    factors = set()
    for seed in SEEDS[:6]:
        out = on_image(augment.color_jitter, rgb, seed, 0.4, 0.0, 0.0, 0.0).numpy()
        ratio = out / rgb.numpy()
        np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)
        assert 0.6 <= ratio.flat[0] <= 1.4
        factors.add(round(float(ratio.flat[0]), 4))

        out = on_image(augment.color_jitter, rgb, seed, 0.0, 0.4, 0.0, 0.0).numpy()
        mean = rgb.numpy().mean((0, 1))
        np.testing.assert_allclose(out.mean((0, 1)), mean, atol=1e-5)
        scale = (out - mean) / (rgb.numpy() - mean)
        np.testing.assert_allclose(scale, scale.flat[0], rtol=1e-3)
        assert 0.6 <= scale.flat[0] <= 1.4
    assert len(factors) > 1


def test_color_jitter_saturation_and_hue_keep_value_and_skip_grayscale():
    rgb = _image((6, 6, 3))
    for seed in SEEDS[:4]:
        hue = on_image(augment.color_jitter, rgb, seed, 0.0, 0.0, 0.0, 0.1).numpy()
        assert not np.allclose(hue, rgb.numpy())
        # A hue rotation keeps each pixel's max (HSV value) and min (value * (1 - sat)).
        np.testing.assert_allclose(hue.max(-1), rgb.numpy().max(-1), atol=1e-5)
        np.testing.assert_allclose(hue.min(-1), rgb.numpy().min(-1), atol=1e-5)
        sat = on_image(augment.color_jitter, rgb, seed, 0.0, 0.0, 0.4, 0.0).numpy()
        np.testing.assert_allclose(sat.max(-1), rgb.numpy().max(-1), atol=1e-5)
        out = on_image(augment.color_jitter, rgb, seed).numpy()
        assert out.shape == (6, 6, 3) and out.min() >= 0 and out.max() <= 1
    gray = _image((6, 6, 1))
    for seed in SEEDS[:4]:
        skipped = on_image(augment.color_jitter, gray, seed, 0.0, 0.0, 0.4, 0.5).numpy()
        np.testing.assert_array_equal(skipped, gray.numpy())
        out = on_image(augment.color_jitter, gray, seed).numpy()
        assert out.shape == (6, 6, 1) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("shape, size, side", [((12, 12, 2), 4, 4), ((8, 8, 1), None, 4)])
def test_cutout_zeroes_a_clipped_square(shape, size, side):
    image = _image(shape)
    inside = 0
    for seed in SEEDS:
        out = on_image(augment.cutout, image, seed, size=size).numpy()
        zero = (out == 0).all(-1)
        assert not ((out == 0).any(-1) & ~zero).any()  # all channels or none
        np.testing.assert_array_equal(out[~zero], image.numpy()[~zero])
        rows, cols = np.nonzero(zero.any(1))[0], np.nonzero(zero.any(0))[0]
        assert zero[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
        assert zero.sum() <= side * side
        touches = rows.min() == 0 or cols.min() == 0
        touches |= rows.max() == shape[0] - 1 or cols.max() == shape[1] - 1
        if not touches:  # fully inside: exactly size x size
            inside += 1
            assert zero.sum() == side * side and len(rows) == len(cols) == side
    assert inside > 0


def test_default_cutout_size_is_at_most_8():
    image = _image((32, 32, 1))
    sizes = [(on_image(augment.cutout, image, s).numpy() == 0).sum() for s in SEEDS]
    assert max(sizes) == 64


def test_cutout_fills_with_the_mean_after_normalization():
    image = tf.constant(np.arange(6 * 6 * 3).reshape(6, 6, 3) % 251 + 1, tf.uint8)
    plain = preprocess.preprocess_image(image, "cifar10")
    for seed in SEEDS[:4]:
        out = preprocess.preprocess_image(image, "cifar10", ["cutout:2"], seed).numpy()
        zero = (out == 0).all(-1)
        assert 0 < zero.sum() <= 4
        np.testing.assert_array_equal(out[~zero], plain.numpy()[~zero])


def test_full_spec_is_deterministic_per_seed():
    image = tf.constant(np.arange(8 * 8 * 3).reshape(8, 8, 3) % 251, tf.uint8)
    ops = augment.parse_augment(FULL_SPEC)
    outs = []
    for seed in SEEDS[:6]:
        a = preprocess.preprocess_image(image, "cifar10", ops, seed).numpy()
        b = preprocess.preprocess_image(image, "cifar10", ops, seed).numpy()
        np.testing.assert_array_equal(a, b)
        assert a.shape == (8, 8, 3) and a.dtype == np.float32
        outs.append(a.tobytes())
    assert len(set(outs)) == len(outs)


def test_parse_augment_arguments_and_defaults():
    assert augment.parse_augment(" pad_crop : 2 ,cutout,, color_jitter::0.2") == [
        "pad_crop:2",
        "cutout",
        "color_jitter::0.2",
    ]
    assert augment.parse_op("color_jitter::0.2") == (
        "color_jitter",
        {"brightness": 0.4, "contrast": 0.2, "saturation": 0.4, "hue": 0.1},
    )
    assert augment.parse_op("pad_crop") == ("pad_crop", {"padding": 4})
    assert augment.parse_op("random_resized_crop") == (
        "random_resized_crop",
        {"min_area": 0.08},
    )
    assert augment.parse_op("cutout:16") == ("cutout", {"size": 16})
    assert augment.parse_op("flip_ud") == ("flip_ud", {})
    assert len(augment.parse_augment(FULL_SPEC)) == 6


@pytest.mark.parametrize(
    "spec, message",
    [
        ("flip_lr,rotate", "unknown augment op 'rotate'.*valid ops: flip_lr, pad_crop.*cutout"),
        ("pad_crop:x", r"pad_crop': padding must be an integer >= 0, got 'x'"),
        ("pad_crop:-1", "padding must be an integer >= 0"),
        ("pad_crop:2.5", "padding must be an integer >= 0"),
        ("random_resized_crop:0", r"min_area must be a number in \(0, 1\], got '0'"),
        ("random_resized_crop:1.5", r"min_area must be a number in \(0, 1\]"),
        ("color_jitter:0.4:2", r"contrast must be a number in \[0, 1\], got '2'"),
        ("color_jitter:0:0:0:0.6", r"hue must be a number in \[0, 0.5\]"),
        ("color_jitter:nan", "brightness must be a number"),
        ("cutout:0", "size must be an integer >= 1"),
        ("flip_lr:1", "'flip_lr' takes no arguments"),
        ("pad_crop:1:2", r"takes at most 1 argument\(s\) \(pad_crop\[:padding\]\)"),
    ],
)
def test_parse_augment_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        augment.parse_augment(spec)


def _config(data_dir, augment):
    config = default_config()
    config.dataset.data_dir = data_dir
    config.dataset.augment = augment
    config.dataset.shuffle_buffer = 0  # the same examples in the same order for any augment
    config.batch_size = 100
    config.eval_batch_size = 120
    return config


def test_pipeline_augments_train_only(data_dir):
    augmented, plain = _config(data_dir, FULL_SPEC), _config(data_dir, "")
    info = data.get_dataset_info(augmented)
    a = list(itertools.islice(data.create_train_iterator(augmented, info), 3))
    p = next(data.create_train_iterator(plain, info))
    np.testing.assert_array_equal(a[0]["label"], p["label"])
    assert a[0]["image"].shape == p["image"].shape and a[0]["image"].dtype == np.float32
    changed = [not np.array_equal(x, y) for x, y in zip(a[0]["image"], p["image"], strict=True)]
    assert np.mean(changed) > 0.9
    # Deterministic, and a stream resumed at step 2 continues exactly.
    again = next(data.create_train_iterator(augmented, info, start_step=2))
    np.testing.assert_array_equal(again["image"], a[2]["image"])
    # Eval with the augment spec set equals eval without it, batch for batch.
    for x, y in zip(
        data.create_eval_iterator(augmented, info),
        data.create_eval_iterator(plain, info),
        strict=True,
    ):
        for key in ("image", "label", "mask"):
            np.testing.assert_array_equal(x[key], y[key])
