"""Tests of the generated datasets toy2d and markov_tokens (numpy, no TensorFlow)."""

import collections
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import generated
from tests.conftest import ROOT


def _config(name, **dataset):
    config = default_config()
    config.dataset.name = name
    config.batch_size = 64
    config.eval_batch_size = 100
    for key, value in dataset.items():
        config.dataset[key] = value
    return config


def _take(iterator, count):
    return list(itertools.islice(iterator, count))


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])


def _rows(batches, keys):
    """The multiset of examples (as bytes of their features) in the batches (mask 1 only)."""
    counter = collections.Counter()
    for batch in batches:
        keep = batch.get("mask", np.ones(len(batch[keys[0]]))) == 1
        for i in np.nonzero(keep)[0]:
            counter[tuple(batch[k][i].tobytes() for k in keys)] += 1
    return counter


# ---- toy2d ---------------------------------------------------------------------------------


def test_toy2d_spec_and_points_on_the_ring():
    config = _config("toy2d")
    info = data.get_dataset_info(config)
    spec = {
        "x": data.Feature((2,), "float32", "vector"),
        "label": data.Feature((), "int32", "label"),
    }
    assert info.features == info.eval_features == spec
    assert (info.num_classes, info.vocab_size) == (8, None)
    assert (info.num_train_examples, info.num_eval_examples) == (4096, 1024)
    assert data.steps_per_epoch(config, info) == 4096 // 64
    batch = next(data.create_train_iterator(config, info))
    assert batch["x"].shape == (64, 2) and batch["x"].dtype == np.float32
    assert batch["label"].shape == (64,) and batch["label"].dtype == np.int32
    examples = generated.toy2d_examples("train")
    angle = 2 * np.pi * examples["label"] / 8
    centres = 2.0 * np.stack([np.cos(angle), np.sin(angle)], -1)
    distance = np.linalg.norm(examples["x"] - centres, axis=-1)
    assert distance.max() < 0.02 * 5 and 0.01 < distance.mean() < 0.03
    assert np.bincount(examples["label"], minlength=8).min() > 4096 / 8 * 0.8
    with pytest.raises(ConfigError, match="'toy2d' has no 'image' feature") as error:
        info.image_shape  # noqa: B018
    assert "\n" not in str(error.value)


def test_toy2d_epochs_are_fresh_shuffles_and_resume_is_exact():
    config = _config("toy2d", train_split="test")  # 1024 examples: 16 steps per epoch
    info = data.get_dataset_info(config)
    steps = data.steps_per_epoch(config, info)
    assert steps == 16
    stream = data.create_train_iterator(config, info)
    batches = _take(stream, 2 * steps + 3)
    assert stream.get_state() == {"step": 2 * steps + 3}
    split = generated.toy2d_examples("test")
    everything = _rows([split], ["x", "label"])
    epochs = [_rows(batches[:steps], ["x", "label"]), _rows(batches[steps:-3], ["x", "label"])]
    assert epochs[0] == epochs[1] == everything  # each epoch: every example once
    assert not np.array_equal(batches[0]["label"], batches[steps]["label"])
    for start in (5, steps - 1, steps + 2):
        resumed = _take(data.create_train_iterator(config, info, start_step=start), 4)
        _assert_same_batches(batches[start : start + 4], resumed)
    state = json.loads(json.dumps(data.create_train_iterator(config, info).get_state()))
    assert state == {"step": 0}
    partial = data.create_train_iterator(config, info)
    _take(partial, 7)
    resumed = data.create_train_iterator(config, info, start_step=0, state=partial.get_state())
    _assert_same_batches(batches[7:10], _take(resumed, 3))
    config.seed = 1
    other = next(data.create_train_iterator(config, info))
    assert not np.array_equal(other["label"], batches[0]["label"])
    config.dataset.shuffle_buffer = 0  # no shuffling: the split in order
    first = next(data.create_train_iterator(config, info))
    np.testing.assert_array_equal(first["x"], split["x"][:64])


@pytest.mark.parametrize("name", ["toy2d", "markov_tokens"])
def test_interleave_union_of_processes_is_the_global_batch(name):
    config = _config(name)
    config.batch_size = 8
    info = data.get_dataset_info(config)
    keys = list(info.features)
    start = data.steps_per_epoch(config, info) - 2  # crosses an epoch boundary
    single = _take(data.create_train_iterator(config, info, start_step=start), 4)
    parts = [
        _take(
            data.create_train_iterator(
                config, info, start_step=start, process_index=p, process_count=4
            ),
            4,
        )
        for p in range(4)
    ]
    for step in range(4):
        assert all(len(part[step][keys[0]]) == 2 for part in parts)
        union = sum((_rows([part[step]], keys) for part in parts), collections.Counter())
        assert union == _rows([single[step]], keys)


@pytest.mark.parametrize("eval_batch, process_count", [(100, 1), (64, 2), (96, 3)])
def test_toy2d_eval_sees_every_example_once(eval_batch, process_count):
    config = _config("toy2d")
    config.batch_size = 96
    config.eval_batch_size = eval_batch
    info = data.get_dataset_info(config)
    count = data.num_eval_batches(config, info, process_count)
    seen = collections.Counter()
    for p in range(process_count):
        batches = list(
            data.create_eval_iterator(config, info, process_index=p, process_count=process_count)
        )
        assert len(batches) == count
        for batch in batches:
            assert set(batch) == {"x", "label", "mask"} and batch["mask"].dtype == np.float32
            assert len(batch["mask"]) == eval_batch // process_count
            padding = batch["mask"] == 0
            assert not batch["x"][padding].any() and not batch["label"][padding].any()
        seen += _rows(batches, ["x", "label"])
    assert seen == _rows([generated.toy2d_examples("test")], ["x", "label"])


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("toy2d", {"augment": "flip_lr"}, "'toy2d' has no images to augment"),
        ("toy2d", {"num_views": 2}, "'toy2d' has no images to view"),
        ("toy2d", {"train_host_sharding": "split"}, "must be 'interleave', got 'split'"),
        ("toy2d", {"eval_split": "validation"}, "eval_split of 'toy2d' 'validation'.*train, test"),
        ("markov_tokens", {"seq_len": 0}, "dataset.seq_len must be > 0"),
        ("markov_tokens", {"seq_len": 400}, "batch_size 64 x dataset.seq_len 400 leaves no"),
        ("markov_tokens", {"seq_len": 40}, "eval_batch_size 100 x dataset.seq_len 40 leaves"),
    ],
)
def test_generated_config_errors(name, change, message):
    config = _config(name, **change)
    with pytest.raises(ConfigError, match=message) as error:
        data.validate_data_config(config)
    assert "\n" not in str(error.value)


def test_generated_datasets_never_load_tensorflow():
    code = (
        "import sys\n"
        "from jaxlab import data\n"
        "from jaxlab.config import default_config\n"
        "for name in ('toy2d', 'markov_tokens'):\n"
        "    c = default_config(); c.dataset.name = name; c.batch_size = 8\n"
        "    c.eval_batch_size = 8\n"
        "    info = data.get_dataset_info(c)\n"
        "    next(data.create_train_iterator(c, info)); list(data.create_eval_iterator(c, info))\n"
        "    info.example_batch(2)\n"
        "print(sorted(m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ---- markov_tokens -------------------------------------------------------------------------


def _markov(batch=8, seq_len=16, eval_batch=10):
    config = _config("markov_tokens", seq_len=seq_len)
    config.batch_size, config.eval_batch_size = batch, eval_batch
    return config, data.get_dataset_info(config)


def test_markov_spec_and_sizes():
    config, info = _markov()
    token = data.Feature((16,), "int32", "tokens")
    assert info.features == info.eval_features == {"inputs": token, "targets": token}
    assert (info.num_classes, info.vocab_size) == (None, 16)
    steps = data.steps_per_epoch(config, info)
    assert steps == ((20_000 - 1) // 8) // 16  # whole windows per strip
    assert info.num_train_examples == steps * 8
    assert data.num_eval_batches(config, info) == ((4_000 - 1) // 10) // 16
    batch = next(data.create_train_iterator(config, info))
    assert batch["inputs"].shape == batch["targets"].shape == (8, 16)
    assert batch["inputs"].dtype == np.int32 and 0 <= batch["inputs"].min()
    assert batch["inputs"].max() < 16
    # The stream follows its chain: the empirical transitions approach the matrix.
    stream = generated.markov_stream("train")
    counts = np.zeros((16, 16))
    np.add.at(counts, (stream[:-1], stream[1:]), 1)
    seen = counts.sum(1) > 500
    empirical = counts[seen] / counts[seen].sum(1, keepdims=True)
    assert np.abs(empirical - generated.markov_transitions()[seen]).max() < 0.1


def test_markov_windows_are_consecutive_per_row():
    config, info = _markov()
    steps = data.steps_per_epoch(config, info)
    batches = _take(data.create_train_iterator(config, info), steps + 2)
    inputs = np.stack([b["inputs"] for b in batches])  # [steps + 2, B, T]
    targets = np.stack([b["targets"] for b in batches])
    np.testing.assert_array_equal(targets[:, :, :-1], inputs[:, :, 1:])  # shifted by one
    # The last target of window t in row b is the first input of window t + 1 in row b.
    np.testing.assert_array_equal(targets[: steps - 1, :, -1], inputs[1:steps, :, 0])
    # Concatenating a row's windows gives its strip of the stream.
    stream = generated.markov_stream("train")
    strip = (len(stream) - 1) // 8
    for row in range(8):
        got = inputs[:steps, row].reshape(-1)
        np.testing.assert_array_equal(got, stream[row * strip : row * strip + steps * 16])
    # Epochs repeat the same windows (no shuffling).
    _assert_same_batches(batches[:2], batches[steps:])


def test_markov_resume_is_exact_mid_epoch_and_from_state():
    config, info = _markov()
    steps = data.steps_per_epoch(config, info)
    from_start = _take(data.create_train_iterator(config, info), steps + 3)
    for start in (5, steps - 1):
        resumed = _take(data.create_train_iterator(config, info, start_step=start), 3)
        _assert_same_batches(from_start[start : start + 3], resumed)
    stream = data.create_train_iterator(config, info)
    _take(stream, 9)
    state = json.loads(json.dumps(stream.get_state()))
    assert state == {"step": 9}
    resumed = data.create_train_iterator(config, info, start_step=123, state=state)
    _assert_same_batches(from_start[9:12], _take(resumed, 3))
    assert resumed.get_state() == {"step": 12}


def test_markov_eval_cuts_the_test_stream_and_shards_rows():
    config, info = _markov(eval_batch=10)
    single = list(data.create_eval_iterator(config, info))
    assert len(single) == data.num_eval_batches(config, info)
    assert all(b["mask"].tolist() == [1.0] * 10 for b in single)
    stream = generated.markov_stream("test")
    strip = (len(stream) - 1) // 10
    row = np.concatenate([b["inputs"][3] for b in single])
    np.testing.assert_array_equal(row, stream[3 * strip : 3 * strip + len(row)])
    parts = [
        list(data.create_eval_iterator(config, info, process_index=p, process_count=2))
        for p in range(2)
    ]
    for step, batch in enumerate(single):
        np.testing.assert_array_equal(parts[0][step]["inputs"], batch["inputs"][0::2])
        np.testing.assert_array_equal(parts[1][step]["targets"], batch["targets"][1::2])
