"""Tests of `dataset.num_views`: train examples carrying several augmented views of their
image, through the tf.data pipeline on the offline digits dataset."""

import itertools

import numpy as np
import pytest

from jaxlab import data
from jaxlab.config import ConfigError, default_config

BATCH = 100


def _config(data_dir, augment, num_views=2, **dataset):
    config = default_config()
    config.dataset.data_dir = data_dir
    config.dataset.augment = augment
    config.dataset.num_views = num_views
    config.dataset.shuffle_buffer = 0  # the split in order, whatever the views
    config.batch_size = BATCH
    config.eval_batch_size = 120
    for key, value in dataset.items():
        config.dataset[key] = value
    return config


def test_views_spec_and_batches(data_dir):
    config = _config(data_dir, "pad_crop,flip_lr")
    info = data.get_dataset_info(config)
    assert info.features == {
        "views": data.Feature((2, 8, 8, 1), "float32", "image"),
        "label": data.Feature((), "int32", "label"),
    }
    assert set(info.eval_features) == {"image", "label"} and info.image_shape == (8, 8, 1)
    stream = data.create_train_iterator(config, info)
    first = list(itertools.islice(stream, 3))
    batch = first[0]
    assert set(batch) == {"views", "label"}
    assert batch["views"].shape == (BATCH, 2, 8, 8, 1) and batch["views"].dtype == np.float32
    differ = [not np.array_equal(v[0], v[1]) for v in batch["views"]]
    assert np.mean(differ) > 0.9
    # Deterministic for a seed, and resumable.
    again = list(itertools.islice(data.create_train_iterator(config, info), 3))
    resumed = next(data.create_train_iterator(config, info, state=stream.get_state()))
    following = next(stream)
    for x, y in [*zip(first, again, strict=True), (following, resumed)]:
        np.testing.assert_array_equal(x["views"], y["views"])
        np.testing.assert_array_equal(x["label"], y["label"])
    config.seed = 5
    other = next(data.create_train_iterator(config, info))
    np.testing.assert_array_equal(other["label"], batch["label"])  # no shuffling
    assert not np.array_equal(other["views"], batch["views"])


def test_each_view_is_an_augmentation_of_the_image(data_dir):
    config = _config(data_dir, "flip_lr", num_views=3)
    info = data.get_dataset_info(config)
    views = next(data.create_train_iterator(config, info))["views"]
    plain_config = _config(data_dir, "", num_views=0)
    plain = next(data.create_train_iterator(plain_config, data.get_dataset_info(plain_config)))
    flips = np.zeros(views.shape[:2], bool)
    for i, image in enumerate(plain["image"]):
        for v in range(3):
            flips[i, v] = np.array_equal(views[i, v], image[:, ::-1])
            assert flips[i, v] or np.array_equal(views[i, v], image)
    assert 0.3 < flips.mean() < 0.7  # each view flipped by its own draw
    assert 0.3 < (flips[:, 0] != flips[:, 1]).mean() < 0.7


def test_eval_ignores_views(data_dir):
    with_views = _config(data_dir, "pad_crop")
    without = _config(data_dir, "pad_crop", num_views=0)
    info = data.get_dataset_info(with_views)
    for x, y in zip(
        data.create_eval_iterator(with_views, info),
        data.create_eval_iterator(without, data.get_dataset_info(without)),
        strict=True,
    ):
        assert set(x) == {"image", "label", "mask"}
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])


@pytest.mark.parametrize(
    "augment, views, message",
    [
        ("flip_lr", 1, "num_views must be 0 .* or >= 2, got 1"),
        ("flip_lr", -2, "num_views must be >= 0"),
        ("", 2, "num_views 2 needs dataset.augment ops"),
    ],
)
def test_views_config_errors(data_dir, augment, views, message):
    with pytest.raises(ConfigError, match=message) as error:
        data.validate_data_config(_config(data_dir, augment, num_views=views))
    assert "\n" not in str(error.value)
