"""Tests of the per-dataset preprocessing and the augmentation op registry."""

import numpy as np
import pytest
import tensorflow as tf

from jaxlab.config import ConfigError
from jaxlab.data import augment, digits, preprocess
from tests.data.helpers import image_features, on_image


def _image(shape=(8, 8, 3)):
    return tf.constant(np.arange(np.prod(shape)).reshape(shape) % 251, tf.uint8)


def test_parse_augment():
    assert augment.parse_augment("") == []
    assert augment.parse_augment(" flip_lr , pad_crop,") == ["flip_lr", "pad_crop"]
    with pytest.raises(ConfigError, match="unknown augment op 'rotate'.*flip_lr, pad_crop"):
        augment.parse_augment("flip_lr,rotate")
    with pytest.raises(ConfigError, match="comma-separated"):
        augment.parse_augment(["flip_lr"])


def test_scale_and_normalize():
    image = tf.constant([[[0, 255, 51]]], tf.uint8)
    np.testing.assert_allclose(preprocess.scale(image).numpy(), [[[0.0, 1.0, 0.2]]])
    norm = preprocess.NORMALIZATION["cifar10"]
    got = preprocess.normalize(tf.ones([2, 2, 3]), "cifar10").numpy()
    np.testing.assert_allclose(got[0, 0], (1 - np.array(norm.mean)) / np.array(norm.std), 1e-6)


def test_every_dataset_has_normalization_per_channel():
    channels = {"mnist": 1, "fashion_mnist": 1, "digits": 1, "cifar10": 3, "cifar100": 3}
    channels["imagenet2012"] = 3
    for name, count in channels.items():
        norm = preprocess.NORMALIZATION[name]
        assert len(norm.mean) == len(norm.std) == count


def test_digits_constants_match_its_train_split():
    x_train = digits.to_uint8(digits.load_digits_split()[0]) / 255.0
    norm = preprocess.NORMALIZATION["digits"]
    assert abs(x_train.mean() - norm.mean[0]) < 1e-3
    assert abs(x_train.std() - norm.std[0]) < 1e-3


def test_flip_lr_is_stateless_and_flips_for_some_seeds():
    image = preprocess.scale(_image())
    flipped = tf.reverse(image, axis=[1]).numpy()
    outcomes = set()
    for s in range(16):
        seed = tf.constant([1, s], tf.int32)
        out = on_image(augment.flip_lr, image, seed).numpy()
        np.testing.assert_array_equal(out, on_image(augment.flip_lr, image, seed).numpy())
        assert np.array_equal(out, image.numpy()) or np.array_equal(out, flipped)
        outcomes.add(np.array_equal(out, flipped))
    assert outcomes == {True, False}


def test_pad_crop_is_a_shifted_window_of_the_padded_image():
    image = preprocess.scale(_image((6, 5, 1)))
    padded = np.pad(image.numpy(), [(4, 4), (4, 4), (0, 0)])
    windows = set()
    for s in range(12):
        out = on_image(augment.pad_crop, image, tf.constant([3, s], tf.int32)).numpy()
        assert out.shape == (6, 5, 1)
        matches = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if np.array_equal(out, padded[dy : dy + 6, dx : dx + 5])
        ]
        assert matches
        windows.add(matches[0])
    assert len(windows) > 1


def test_preprocess_image_plain_and_augmented():
    image = _image()
    plain = preprocess.preprocess_image(image, "cifar10").numpy()
    expected = preprocess.normalize(preprocess.scale(image), "cifar10").numpy()
    np.testing.assert_array_equal(plain, expected)
    seed = tf.constant([0, 7], tf.int32)
    a = preprocess.preprocess_image(image, "cifar10", ["pad_crop", "flip_lr"], seed).numpy()
    b = preprocess.preprocess_image(image, "cifar10", ["pad_crop", "flip_lr"], seed).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == plain.shape
    with pytest.raises(ValueError, match="seed"):
        preprocess.preprocess_image(image, "cifar10", ["flip_lr"])


def test_augment_uses_a_distinct_seed_per_op():
    # Two flips with the same seed would always cancel out; with one seed per op they
    # leave the image flipped for some seeds.
    image = preprocess.scale(_image())
    flipped = tf.reverse(image, axis=[1]).numpy()
    results = [
        augment.apply_ops(
            {"image": image},
            ["flip_lr", "flip_lr"],
            tf.constant([5, s], tf.int32),
            image_features(image),
        )["image"].numpy()
        for s in range(16)
    ]
    assert any(np.array_equal(r, flipped) for r in results)
