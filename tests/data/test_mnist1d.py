"""Tests of jaxlab.data.mnist1d (generated small: the full 5,000 examples take seconds)."""

import random

import numpy as np
import pytest
from mnist1d.data import get_dataset_args, make_dataset

from jaxlab import data
from jaxlab.config import default_config
from jaxlab.data import mnist1d


@pytest.fixture
def small_mnist1d(monkeypatch):
    """mnist1d served from 100 generated examples (80 train, 20 test)."""
    mnist1d.mnist1d_examples.cache_clear()
    monkeypatch.setattr(
        mnist1d, "_mnist1d_arrays", lambda: mnist1d.generate_mnist1d(num_samples=100)
    )
    yield
    mnist1d.mnist1d_examples.cache_clear()


def test_generation_is_the_packages_and_leaves_global_random_states_alone():
    np.random.seed(7)
    random.seed(7)
    numpy_next, python_next = np.random.get_state()[1][:5].copy(), random.getstate()
    ours = mnist1d.generate_mnist1d(num_samples=30)
    assert np.array_equal(np.random.get_state()[1][:5], numpy_next)
    assert random.getstate() == python_next
    args = get_dataset_args()
    args.num_samples = 30
    theirs = make_dataset(args)  # reseeds the global generators to the package's seed 42
    for key in ("x", "y", "x_test", "y_test"):
        np.testing.assert_array_equal(ours[key], theirs[key])


def test_mnist1d_source_spec_and_batches(small_mnist1d):
    config = default_config()
    config.dataset.name = "mnist1d"
    config.batch_size, config.eval_batch_size = 16, 16
    info = data.get_dataset_info(config)
    spec = {
        "x": data.Feature((40, 1), "float32", "vector"),
        "label": data.Feature((), "int32", "label"),
    }
    assert info.features == info.eval_features == spec
    assert (info.num_classes, info.num_train_examples, info.num_eval_examples) == (10, 80, 20)
    raw = mnist1d.generate_mnist1d(num_samples=100)
    train = mnist1d.mnist1d_examples("train")
    np.testing.assert_array_equal(train["x"][:, :, 0], raw["x"].astype(np.float32))
    np.testing.assert_array_equal(train["label"], raw["y"])
    batch = next(data.create_train_iterator(config, info))
    assert batch["x"].shape == (16, 40, 1) and batch["label"].dtype == np.int32
    masks = [b["mask"].sum() for b in data.create_eval_iterator(config, info)]
    assert sum(masks) == 20
