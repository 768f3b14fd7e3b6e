"""Tests of the offline `digits` TFDS builder and its scikit-learn split."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxlab.data import digits


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
    b = tfds.builder("digits", data_dir=str(tmp_path_factory.mktemp("tfds")))
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return b


def test_registered_under_digits():
    assert "digits" in tfds.list_builders()
    assert tfds.builder_cls("digits") is digits.Digits
    assert str(digits.Digits.VERSION) == "1.0.0"


def test_load_digits_split_is_stratified_80_20():
    x_train, y_train, x_test, y_test = digits.load_digits_split()
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    assert x_train.min() >= 0 and x_train.max() == 16
    all_counts = np.bincount(np.concatenate([y_train, y_test]), minlength=10)
    test_counts = np.bincount(y_test, minlength=10)
    # Stratified: each class keeps its share (20% of its examples, up to rounding).
    assert np.all(np.abs(test_counts - 0.2 * all_counts) <= 1)
    # Fixed: the same split every call.
    again = digits.load_digits_split()
    assert np.array_equal(again[0], x_train) and np.array_equal(again[3], y_test)


def test_to_uint8_maps_0_16_to_0_255():
    np.testing.assert_array_equal(
        digits.to_uint8(np.array([0, 1, 8, 15, 16])), np.array([0, 16, 128, 239, 255], np.uint8)
    )


def test_builder_sizes_features_and_balance(builder):
    info = builder.info
    assert info.splits["train"].num_examples == 1437
    assert info.splits["test"].num_examples == 360
    assert info.features["image"].shape == (8, 8, 1)
    assert info.features["label"].num_classes == 10
    labels = np.array([ex["label"] for ex in tfds.as_numpy(builder.as_dataset(split="test"))])
    counts = np.bincount(labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


@pytest.mark.parametrize("split, index", [("train", (0, 1)), ("test", (2, 3))])
def test_builder_yields_load_digits_split_in_order(builder, split, index):
    arrays = digits.load_digits_split()
    images, labels = arrays[index[0]], arrays[index[1]]
    examples = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
    assert len(examples) == len(labels)
    got_images = np.stack([ex["image"] for ex in examples])
    assert got_images.dtype == np.uint8
    np.testing.assert_array_equal(got_images[..., 0], digits.to_uint8(images))
    np.testing.assert_array_equal([ex["label"] for ex in examples], labels)
