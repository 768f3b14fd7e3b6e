"""Tests of dataset names, DatasetInfo, the config checks and the offline / mocked sources."""

import math

import pytest
import tensorflow_datasets as tfds

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import datasets


def _config(data_dir, **dataset):
    config = default_config()
    config.dataset.data_dir = str(data_dir)
    config.batch_size = 64
    config.eval_batch_size = 100
    for key, value in dataset.items():
        config.dataset[key] = value
    return config


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


def _one_line(error):
    assert "\n" not in str(error.value)
    return str(error.value)


def test_list_datasets():
    # Tests may register datasets of their own in this process: the built-in ones are there.
    builtin = {
        "addition",
        "cifar10",
        "cifar100",
        "copy",
        "digits",
        "fashion_mnist",
        "head500",
        "imagenet2012",
        "imdb_reviews",
        "lm1b",
        "markov_tokens",
        "mnist",
        "mnist1d",
        "shakespeare_char",
        "reverse",
        "shapes_seg",
        "sort",
        "sort_numbers",
        "tiny_shakespeare",
        "toy2d",
        "wmt14",
    }
    assert builtin <= set(data.list_datasets())


def _image_features(shape):
    return {
        "image": data.Feature(shape, "float32", "image"),
        "label": data.Feature((), "int32", "label"),
    }


def test_get_dataset_info_digits_prepares_on_first_use(digits_dir):
    info = data.get_dataset_info(_config(digits_dir))
    assert info == data.DatasetInfo(
        name="digits",
        features=_image_features((8, 8, 1)),
        eval_features=_image_features((8, 8, 1)),
        num_classes=10,
        num_train_examples=1437,
        num_eval_examples=360,
    )
    assert info.image_shape == (8, 8, 1) and info.vocab_size is None
    assert (digits_dir / "digits" / "1.0.0" / "dataset_info.json").exists()
    # Sub-splits are counted as well.
    info = data.get_dataset_info(_config(digits_dir, train_split="train[:100]"))
    assert info.num_train_examples == 100


def test_resolve_data_dir(monkeypatch, tmp_path):
    config = default_config()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "env"))
    assert datasets.resolve_data_dir(config) == str(tmp_path / "env")
    config.dataset.data_dir = str(tmp_path / "cfg")
    assert datasets.resolve_data_dir(config) == str(tmp_path / "cfg")
    monkeypatch.delenv("TFDS_DATA_DIR")
    config.dataset.data_dir = ""
    assert datasets.resolve_data_dir(config).endswith("tensorflow_datasets")


def test_unknown_dataset(tmp_path):
    with pytest.raises(ConfigError) as error:
        data.get_dataset_info(_config(tmp_path, name="imagenet"))
    assert "unknown dataset 'imagenet'" in _one_line(error)
    assert "valid choices: " + ", ".join(data.list_datasets()) in str(error.value)


def test_not_prepared_dataset(tmp_path):
    with pytest.raises(ConfigError) as error:
        data.get_dataset_info(_config(tmp_path, name="mnist"))
    message = _one_line(error)
    assert f"dataset 'mnist' is not prepared in {tmp_path}" in message
    assert f"tfds build mnist --data_dir {tmp_path}" in message
    assert "'digits'" in message


@pytest.mark.parametrize("key", ["train_split", "eval_split"])
def test_bad_split(digits_dir, key):
    with pytest.raises(ConfigError) as error:
        data.get_dataset_info(_config(digits_dir, **{key: "validation"}))
    assert f"unknown dataset.{key} 'validation'" in _one_line(error)
    assert "valid splits: test, train" in str(error.value)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"augment": "flip_lr,rotate"}, "unknown augment op 'rotate'.*flip_lr, pad_crop"),
        ({"train_host_sharding": "random"}, "train_host_sharding 'random'.*interleave, split"),
        ({"shuffle_buffer": -1}, "shuffle_buffer must be >= 0"),
        ({"prefetch": -2}, "prefetch must be >= 0"),
        ({"name": "svhn"}, "unknown dataset 'svhn'"),
        ({"batch_size": 0}, "batch_size must be > 0"),
        ({"batch_size": 63}, "batch_size 63 is not divisible by the process count 2"),
        ({"eval_batch_size": 101}, "eval_batch_size 101 is not divisible by the process count 2"),
    ],
)
def test_validate_data_config_errors(tmp_path, change, message):
    config = _config(tmp_path)
    for key, value in change.items():
        if key in config.dataset:
            config.dataset[key] = value
        else:
            config[key] = value
    with pytest.raises(ConfigError, match=message) as error:
        data.validate_data_config(config, process_count=2)
    _one_line(error)


def test_validate_data_config_accepts_defaults(tmp_path):
    config = _config(tmp_path, augment="pad_crop,flip_lr", train_host_sharding="split")
    data.validate_data_config(config, process_count=4)


def test_steps_per_epoch(digits_dir):
    config = _config(digits_dir)
    info = data.get_dataset_info(config)
    assert data.steps_per_epoch(config, info) == 1437 // 64
    config.batch_size = 2048
    with pytest.raises(ConfigError, match="batch_size 2048 is larger than the 1437") as error:
        data.steps_per_epoch(config, info)
    _one_line(error)


@pytest.mark.parametrize("eval_batch, process_count", [(64, 1), (100, 1), (64, 2), (100, 2)])
def test_num_eval_batches(digits_dir, eval_batch, process_count):
    config = _config(digits_dir)
    config.eval_batch_size = eval_batch
    info = data.get_dataset_info(config)
    local = eval_batch // process_count
    # split_for_jax_process gives the first processes the extra examples: ceil(360 / count).
    expected = math.ceil(math.ceil(360 / process_count) / local)
    assert data.num_eval_batches(config, info, process_count) == expected


def test_process_split_sizes(digits_dir):
    builder = datasets.get_builder(_config(digits_dir))
    assert datasets.process_split_sizes(builder, "test", 7) == [52, 52, 52, 51, 51, 51, 51]
    assert datasets.count_examples(builder, "train[10:20]") == 10


@pytest.mark.parametrize(
    "name, shape, classes", [("mnist", (28, 28, 1), 10), ("cifar10", (32, 32, 3), 10)]
)
def test_mock_data(tmp_path, name, shape, classes):
    config = _config(tmp_path, name=name, augment="flip_lr,pad_crop")
    config.batch_size = 8
    config.eval_batch_size = 16
    with tfds.testing.mock_data(num_examples=20):
        info = data.get_dataset_info(config)
        features = _image_features(shape)
        assert info == data.DatasetInfo(name, features, features, classes, 20, 20)
        assert data.steps_per_epoch(config, info) == 2
        batch = next(data.create_train_iterator(config, info, start_step=3))
        assert batch["image"].shape == (8, *shape) and batch["image"].dtype == "float32"
        assert batch["label"].shape == (8,) and batch["label"].dtype == "int32"
        assert batch["label"].max() < classes
        evals = list(data.create_eval_iterator(config, info))
        assert len(evals) == data.num_eval_batches(config, info) == 2
        assert sum(b["mask"].sum() for b in evals) == 20
