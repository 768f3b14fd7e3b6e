"""Tests of the generated segmentation dataset `shapes_seg` and its pipeline (joint
augmentation of image and mask, padded eval)."""

import itertools

import numpy as np
import pytest

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import preprocess, shapes_seg

LABELS = {0, 1, 2, 3, 255}


def _config(data_dir, augment="", **dataset):
    config = default_config()
    config.dataset.name = "shapes_seg"
    config.dataset.data_dir = data_dir
    config.dataset.augment = augment
    config.batch_size = 40
    config.eval_batch_size = 32
    for key, value in dataset.items():
        config.dataset[key] = value
    return config


def test_examples_have_ignore_rings_between_regions():
    examples = shapes_seg.load_shapes_seg_split("train")
    images, labels = examples["image"], examples["label"]
    assert images.shape == (400, 16, 16, 3) and images.dtype == np.uint8
    assert labels.shape == (400, 16, 16) and set(np.unique(labels)) == LABELS
    # No two neighbouring pixels (8-neighbourhood) carry two different real labels: a ring
    # of 255 separates every shape from what surrounds it.
    padded = np.pad(labels, [(0, 0), (1, 1), (1, 1)], constant_values=255)
    for dy, dx in itertools.product(range(3), range(3)):
        other = padded[:, dy : dy + 16, dx : dx + 16]
        clash = (labels != other) & (labels != 255) & (other != 255)
        assert not clash.any()
    again = shapes_seg.load_shapes_seg_split("train")
    np.testing.assert_array_equal(again["image"], images)  # fixed seeds


def test_normalization_constants_match_the_train_split():
    pixels = shapes_seg.load_shapes_seg_split("train")["image"] / 255.0
    norm = preprocess.NORMALIZATION["shapes_seg"]
    np.testing.assert_allclose(pixels.mean((0, 1, 2)), norm.mean, atol=1e-3)
    np.testing.assert_allclose(pixels.std((0, 1, 2)), norm.std, atol=1e-3)


def test_feature_spec(data_dir):
    info = data.get_dataset_info(_config(data_dir))
    spec = {
        "image": data.Feature((16, 16, 3), "float32", "image"),
        "label": data.Feature((16, 16), "int32", "mask", ignore_value=255),
    }
    assert info.features == info.eval_features == spec
    assert (info.num_classes, info.num_train_examples, info.num_eval_examples) == (4, 400, 100)
    assert info.image_shape == (16, 16, 3)


def test_pad_crop_moves_image_and_mask_together_in_the_pipeline(data_dir):
    plain = _config(data_dir, shuffle_buffer=0)
    info = data.get_dataset_info(plain)
    augmented = _config(data_dir, "pad_crop:3,flip_lr", shuffle_buffer=0)
    a = next(data.create_train_iterator(plain, info))
    b = next(data.create_train_iterator(augmented, info))
    assert b["label"].dtype == np.int32 and set(np.unique(b["label"])) <= LABELS
    norm = preprocess.NORMALIZATION["shapes_seg"]
    black = (0 - np.array(norm.mean, np.float32)) / np.array(norm.std, np.float32)
    moved = 0
    pairs = zip(a["image"], a["label"], b["image"], b["label"], strict=True)
    for image, mask, out_image, out_mask in pairs:
        # pad_crop pads the [0, 1] image with black (normalized: `black`), the mask with 255.
        padded_image = np.tile(black, (22, 22, 1)).astype(np.float32)
        padded_image[3:19, 3:19] = image
        padded_mask = np.pad(mask, 3, constant_values=255)
        # The noisy image locates the window (and flip); the mask must show the same one.
        found = []
        for flip, dy, dx in itertools.product((False, True), range(7), range(7)):
            crop = padded_image[dy : dy + 16, dx : dx + 16]
            if np.allclose(crop[:, ::-1] if flip else crop, out_image, atol=1e-5):
                window = padded_mask[dy : dy + 16, dx : dx + 16]
                found.append(window[:, ::-1] if flip else window)
        assert len(found) == 1
        np.testing.assert_array_equal(found[0], out_mask)
        moved += not np.array_equal(mask, out_mask)
    assert moved > 30


def test_eval_pads_masks_with_zeros_and_counts_every_example(data_dir):
    config = _config(data_dir, "flip_lr")
    info = data.get_dataset_info(config)
    seen = 0
    for p in range(2):
        batches = list(data.create_eval_iterator(config, info, process_index=p, process_count=2))
        assert len(batches) == data.num_eval_batches(config, info, 2) == 4  # ceil(50 / 16)
        for batch in batches:
            assert batch["label"].shape == (16, 16, 16) and batch["label"].dtype == np.int32
            padding = batch["mask"] == 0
            assert not batch["label"][padding].any() and not batch["image"][padding].any()
        seen += sum(int(b["mask"].sum()) for b in batches)
    assert seen == 100


def test_views_need_an_image_only_dataset(data_dir):
    config = _config(data_dir, "flip_lr", num_views=2)
    with pytest.raises(ConfigError, match="num_views 2 needs a dataset whose only spatial"):
        data.validate_data_config(config)
