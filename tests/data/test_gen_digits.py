"""The gen_digits split (Tomczak's 1000 / 350 / 447) and the dataset.normalize option."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data.gen_digits import gen_digits_examples, to_levels


def _config(**dataset):
    c = default_config()
    c.dataset.name = "gen_digits"
    c.dataset.eval_split = "validation"
    c.batch_size, c.eval_batch_size = 100, 128
    c.dataset.update(dataset)
    return c


def test_splits_are_tomczaks_in_order_and_levels_round_trip():
    digits = load_digits()
    sizes = {
        split: len(gen_digits_examples(split)["label"]) for split in ("train", "validation", "test")
    }
    assert sizes == {"train": 1000, "validation": 350, "test": 447}
    test = gen_digits_examples("test")
    np.testing.assert_array_equal(to_levels(test["image"])[..., 0], digits.images[1350:])
    np.testing.assert_array_equal(test["label"], digits.target[1350:])
    assert test["image"].min() == 0.0 and test["image"].max() == 1.0


def test_iterators_cover_the_validation_split_once_and_reject_bad_splits():
    c = _config()
    info = data.get_dataset_info(c)
    assert (info.num_train_examples, info.num_eval_examples) == (1000, 350)
    batches = list(data.create_eval_iterator(c, info))
    masks = np.concatenate([b["mask"] for b in batches])
    images = np.concatenate([b["image"] for b in batches])[masks == 1]
    np.testing.assert_array_equal(images, gen_digits_examples("validation")["image"])
    first = next(data.create_train_iterator(c, info))
    assert first["image"].shape == (100, 8, 8, 1) and first["image"].dtype == np.float32
    with pytest.raises(ConfigError, match="validation"):
        data.get_dataset_info(_config(eval_split="val"))
    bad = _config()
    del bad.dataset["normalize"]  # the typed field refuses a str; a hand-built config may not
    bad.dataset.normalize = "no"
    with pytest.raises(ConfigError, match="dataset.normalize"):
        data.validate_data_config(bad)


def test_tfds_images_stay_in_unit_range_when_not_normalized():
    c = default_config()  # the TFDS `digits` dataset
    c.eval_batch_size = 360
    c.dataset.normalize = False
    info = data.get_dataset_info(c)
    raw = next(data.create_eval_iterator(c, info))["image"]
    assert raw.min() == 0.0 and raw.max() == 1.0
    c.dataset.normalize = True
    standardized = next(data.create_eval_iterator(c, info))["image"]
    np.testing.assert_allclose(standardized, (raw - 0.3054) / 0.3760, rtol=1e-5, atol=1e-5)
