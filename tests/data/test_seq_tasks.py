"""The generated seq2seq datasets: contents (reverse is the reverse, sums are sums, sorted
is sorted), determinism, disjoint splits, and what the loop reads from them."""

from __future__ import annotations

import ml_collections
import numpy as np
import pytest

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.data import seq_tasks
from jaxlab.data.text import EOS, FIRST_SYMBOL, PAD, tokenizer_for

PARAMS = (6, 2, 5, 2)  # seq_len, min_len, num_symbols, num_digits
BIG = (8, 8, 10, 3)  # a space of 10**8 sources: the splits can be disjoint


def _config(name: str, **dataset) -> ml_collections.ConfigDict:
    c = default_config()
    c.dataset.name = name
    c.batch_size = 4
    c.eval_batch_size = 300
    for key, value in dataset.items():
        c.dataset[key] = value
    return c


def _symbols(row: np.ndarray) -> list[int]:
    out = []
    for t in row:
        if t == EOS:
            break
        out.append(int(t))
    return out


@pytest.mark.parametrize("kind", ["copy", "reverse", "sort"])
def test_symbol_tasks_hold_their_transformation(kind):
    arrays = seq_tasks.seq_task_examples(kind, "train", PARAMS)
    source, target = arrays["source"][:200], arrays["target"][:200]
    assert source.shape == (200, 6) and target.shape == (200, 7)
    lengths = (source != PAD).sum(1)
    assert lengths.min() == 2 and lengths.max() == 6  # min_len .. seq_len
    for src, tgt, n in zip(source, target, lengths, strict=True):
        assert np.all(src[:n] >= FIRST_SYMBOL) and np.all(src[:n] < FIRST_SYMBOL + 5)
        assert np.all(src[n:] == PAD)
        expected = {"copy": src[:n], "reverse": src[:n][::-1], "sort": np.sort(src[:n])}[kind]
        assert _symbols(tgt) == list(expected)
        assert tgt[n] == EOS and np.all(tgt[n + 1 :] == PAD)
    if kind == "sort":
        pointers = arrays["pointers"][:200]
        for src, tgt, ptr, n in zip(source, target, pointers, lengths, strict=True):
            np.testing.assert_array_equal(src[ptr[:n]], tgt[:n])
            assert ptr[n] == n


def test_addition_targets_are_the_sums():
    arrays = seq_tasks.seq_task_examples("addition", "train", PARAMS)
    tok = seq_tasks.SeqTaskSource("addition").tokenizer(None)
    for src, tgt in zip(arrays["source"][:100], arrays["target"][:100], strict=True):
        a, b = tok.decode(src[src != PAD]).split("+")
        assert tok.decode(_symbols(tgt)) == str(int(a) + int(b))
        assert len(a) <= 2 and len(b) <= 2


def test_deterministic_and_test_split_disjoint_from_train():
    first = seq_tasks.seq_task_examples("reverse", "test", BIG)
    seq_tasks.seq_task_examples.cache_clear()
    again = seq_tasks.seq_task_examples("reverse", "test", BIG)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    train = {r.tobytes() for r in seq_tasks.seq_task_examples("reverse", "train", BIG)["source"]}
    assert not any(r.tobytes() in train for r in again["source"])
    assert len(again["source"]) == seq_tasks.SIZES["test"]


def test_info_batches_tokenizer_and_bad_options():
    config = _config("reverse", seq_len=6, min_len=2, num_symbols=5, num_digits=2)
    data.validate_data_config(config)
    info = data.get_dataset_info(config)
    assert info.vocab_size == 3 + 5
    assert info.features["source"].shape == (6,) and info.features["target"].shape == (7,)
    batch = next(data.create_train_iterator(config, info))
    assert batch["source"].shape == (4, 6) and batch["target"].dtype == np.int32
    assert tokenizer_for(config).decode([0, 1, 2, 3, 7]) == "_<>04"
    addition = _config("addition", seq_len=6, min_len=2, num_symbols=5, num_digits=2)
    assert data.get_dataset_info(addition).vocab_size == 14
    with pytest.raises(ConfigError, match="dataset.min_len must be in"):
        data.validate_data_config(_config("copy", seq_len=4, min_len=5))


def test_sort_numbers_pointers_sort_the_values():
    arrays = seq_tasks.sort_number_examples("test", 5)
    values, pointers = arrays["values"], arrays["pointers"]
    assert values.shape == (1000, 5) and values.dtype == np.float32
    sorted_values = np.take_along_axis(values, pointers, axis=1)
    assert np.all(np.diff(sorted_values, axis=1) >= 0)
