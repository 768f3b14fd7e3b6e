"""Tests of the feature specs, DatasetInfo.example_batch, eval padding, the registry and the
train iterator's state."""

import itertools
import json

import numpy as np
import pytest

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import registry
from jaxlab.data.features import pad_batch, padding_example

IMAGE = data.Feature((4, 4, 3), "float32", "image")
MASK = data.Feature((4, 4), "int32", "mask", ignore_value=255)


def _info(**changes):
    fields = dict(
        name="fake",
        features={"views": data.Feature((2, 4, 4, 3), "float32", "image"), "label": MASK},
        eval_features={"image": IMAGE, "label": MASK},
        num_classes=4,
        num_train_examples=10,
        num_eval_examples=5,
    )
    return data.DatasetInfo(**{**fields, **changes})


def test_feature_normalizes_and_checks():
    feature = data.Feature([2, 3], np.float32, "vector")
    assert feature == data.Feature((2, 3), "float32", "vector")
    assert feature.shape == (2, 3) and feature.dtype == "float32" and feature.ignore_value is None
    with pytest.raises(ValueError, match="unknown feature kind 'picture'.*image, mask, clip"):
        data.Feature((2,), "float32", "picture")
    with pytest.raises(TypeError):
        data.Feature((2,), "no_such_dtype", "vector")


def test_example_batch_follows_the_specs():
    info = _info()
    train = info.example_batch(3)
    assert set(train) == {"views", "label"}
    assert train["views"].shape == (3, 2, 4, 4, 3) and train["views"].dtype == np.float32
    assert train["label"].shape == (3, 4, 4) and train["label"].dtype == np.int32
    evals = info.example_batch(5, train=False)
    assert set(evals) == {"image", "label", "mask"}
    assert evals["image"].shape == (5, 4, 4, 3) and evals["mask"].dtype == np.float32
    assert not any(value.any() for value in [*train.values(), *evals.values()])
    assert info.image_shape == (4, 4, 3)  # from eval: train examples hold views


def test_pad_batch_pads_with_zeros_of_the_spec_and_masks():
    features = {"image": IMAGE, "label": MASK}
    real = {"image": np.ones((2, 4, 4, 3), np.float32), "label": np.full((2, 4, 4), 3, np.int32)}
    batch = pad_batch(real, features, 5)
    assert batch["mask"].tolist() == [1, 1, 0, 0, 0] and batch["mask"].dtype == np.float32
    assert batch["image"][:2].all() and not batch["image"][2:].any()
    assert batch["label"].dtype == np.int32 and not batch["label"][2:].any()
    with pytest.raises(ValueError, match="feature 'label' is int64 .*spec says int32"):
        pad_batch({**real, "label": real["label"].astype(np.int64)}, features, 5)
    with pytest.raises(ValueError, match="does not fit 1"):
        pad_batch(real, features, 1)
    pad = padding_example(features)
    assert pad["image"].shape == (4, 4, 3) and pad["mask"] == 0


class _Counting:
    """A minimal source: batch s of the train stream is {'step': [s]}."""

    def validate(self, config, process_count=1):
        pass

    def info(self, config):
        spec = {"step": data.Feature((), "int32", "vector")}
        return data.DatasetInfo(config.dataset.name, spec, spec, None, 10, 0)

    def steps_per_epoch(self, config, info):
        return 10

    def num_eval_batches(self, config, info, process_count=1):
        return 0

    def train_iterator(self, config, info, *, start_step, process_index, process_count):
        return ({"step": np.array([s], np.int32)} for s in itertools.count(start_step))

    def eval_iterator(self, config, info, *, process_index, process_count):
        return iter(())


def test_register_dataset_and_dispatch(monkeypatch):
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    data.register_dataset("counting", _Counting())
    assert "counting" in data.list_datasets()
    config = default_config()
    config.dataset.name = "counting"
    info = data.get_dataset_info(config)
    assert data.steps_per_epoch(config, info) == 10
    stream = data.create_train_iterator(config, info, start_step=4)
    assert [int(next(stream)["step"][0]) for _ in range(3)] == [4, 5, 6]
    assert stream.get_state() == {"step": 7}
    with pytest.raises(ValueError, match="already registered"):
        data.register_dataset("counting", _Counting())
    with pytest.raises(TypeError, match="lacks the methods .*train_iterator"):
        data.register_dataset("broken", object())
    config.dataset.name = "nothing"
    with pytest.raises(ConfigError, match="unknown dataset 'nothing'.*counting"):
        data.get_dataset_info(config)


@pytest.mark.parametrize("state", [{"step": -1}, {"position": 3}, {"step": 1.5}, [3]])
def test_bad_iterator_state(state):
    config = default_config()
    config.dataset.name = "toy2d"
    info = data.get_dataset_info(config)
    with pytest.raises(ConfigError, match="state must be {'step': n}") as error:
        data.create_train_iterator(config, info, state=state)
    assert "\n" not in str(error.value)


def test_digits_iterator_state_resumes_exactly(data_dir):
    config = default_config()
    config.dataset.data_dir = data_dir
    config.dataset.augment = "flip_lr,pad_crop"
    config.batch_size = 100
    info = data.get_dataset_info(config)
    stream = data.create_train_iterator(config, info, start_step=12)
    first = list(itertools.islice(stream, 2))  # steps 12, 13 (the end of epoch 0)
    state = json.loads(json.dumps(stream.get_state()))
    assert state == {"step": 14}
    after = list(itertools.islice(stream, 2))
    resumed = list(itertools.islice(data.create_train_iterator(config, info, state=state), 2))
    for x, y in zip(after, resumed, strict=True):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["label"], y["label"])
    assert not np.array_equal(first[0]["image"], after[0]["image"])
