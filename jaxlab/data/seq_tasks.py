"""Generated sequence-to-sequence tasks: numpy only, deterministic from fixed data seeds.

    copy       target = source
    reverse    target = source reversed
    sort       target = source sorted (ascending symbol ids); also `pointers` [T]: the
               source positions in sorted order (stable), then the position of the EOS
               step (= the source length), then 0 (padding)
    addition   source "a+b" as characters (digits 0-9 and '+'), target the digits of a + b;
               a, b uniform in [0, 10**dataset.num_digits), written without leading zeros
    sort_numbers  the pointer network's task (Vinyals et al. 2015): 'values' float32 [N]
               uniform in [0, 1), 'pointers' int32 [N] = argsort(values); N = seq_len

Features (contract 4): 'source' int32 [S] (symbols, then PAD = 0; no EOS) and 'target'
int32 [T] (symbols, EOS = 2, then PAD). For copy / reverse / sort S = dataset.seq_len and
T = S + 1, each example's length uniform in [dataset.min_len, dataset.seq_len] (min_len
defaults to seq_len: fixed lengths); symbols uniform over dataset.num_symbols ids (3, 4,
...). For addition S = 2 n + 1 and T = n + 2 with n = dataset.num_digits (default 3).
`vocab_size` = 3 specials + the symbols (addition: 10 digits and '+': 14).

Sizes (fixed): 50,000 train and 1,000 test examples (sort_numbers: 100,000 and 1,000),
drawn from data seeds 11 (train) and 12 (test); every test example whose source also occurs
in the train split is redrawn, so the splits are disjoint wherever the space of sources
allows it (it always does at the documented sizes; tiny spaces keep their overlap).
Batches are served by `ArraySource` (shuffled epochs, padded eval passes, exact resume).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data.features import DatasetInfo, Feature
from jaxlab.data.generated import ArraySource
from jaxlab.data.registry import Batch
from jaxlab.data.text import EOS, FIRST_SYMBOL, PAD, CharTokenizer

TASKS = ("copy", "reverse", "sort", "addition")
SIZES = {"train": 50_000, "test": 1_000}
NUMBER_SIZES = {"train": 100_000, "test": 1_000}
DATA_SEEDS = {"train": 11, "test": 12}
DEFAULT_NUM_SYMBOLS, DEFAULT_NUM_DIGITS = 10, 3
ADDITION_CHARS = "0123456789+"
_MAX_REDRAWS = 20


def _params(config: ml_collections.ConfigDict) -> tuple[int, int, int, int]:
    """(seq_len, min_len, num_symbols, num_digits) of `config.dataset`."""
    d = config.dataset
    seq_len = int(d.get("seq_len", 16))
    return (
        seq_len,
        int(d.get("min_len", seq_len) or seq_len),
        int(d.get("num_symbols", DEFAULT_NUM_SYMBOLS)),
        int(d.get("num_digits", DEFAULT_NUM_DIGITS)),
    )


def _symbol_examples(kind: str, n: int, seq_len: int, min_len: int, symbols: int, rng):
    """source [n, S], target [n, S + 1] and pointers [n, S + 1] of copy/reverse/sort."""
    lengths = rng.integers(min_len, seq_len + 1, n)
    raw = rng.integers(0, symbols, (n, seq_len)) + FIRST_SYMBOL
    valid = np.arange(seq_len)[None, :] < lengths[:, None]
    source = np.where(valid, raw, PAD).astype(np.int32)
    j = np.arange(seq_len)[None, :]
    if kind == "reverse":
        positions = np.where(valid, lengths[:, None] - 1 - j, j)
    elif kind == "sort":  # stable: equal symbols keep their order; padding sorts last
        positions = np.argsort(
            np.where(valid, source, np.iinfo(np.int32).max), axis=1, kind="stable"
        )
    else:
        positions = np.broadcast_to(j, source.shape)
    moved = np.where(valid, np.take_along_axis(source, positions, axis=1), PAD)
    ends = np.arange(seq_len + 1)[None, :] == lengths[:, None]
    target = np.where(ends, EOS, np.pad(moved, ((0, 0), (0, 1)))).astype(np.int32)
    pointers = np.where(valid, positions, 0)
    pointers = np.where(ends, lengths[:, None], np.pad(pointers, ((0, 0), (0, 1))))
    pointers = pointers.astype(np.int32)
    return source, target, pointers


def _digits(values: np.ndarray) -> list[str]:
    return [str(int(v)) for v in values]


def _addition_examples(n: int, num_digits: int, rng):
    """source [n, 2 d + 1] ('a+b' characters) and target [n, d + 2] (a + b, EOS)."""
    a = rng.integers(0, 10**num_digits, n)
    b = rng.integers(0, 10**num_digits, n)
    source = np.zeros((n, 2 * num_digits + 1), np.int32)
    target = np.zeros((n, num_digits + 2), np.int32)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        text = f"{x}+{y}"
        source[i, : len(text)] = [FIRST_SYMBOL + ADDITION_CHARS.index(c) for c in text]
        total = str(x + y)
        target[i, : len(total)] = [FIRST_SYMBOL + int(c) for c in total]
        target[i, len(total)] = EOS
    return source, target


def _draw(kind: str, split: str, size: int, params: tuple[int, int, int, int]) -> dict:
    seq_len, min_len, symbols, digits = params
    rng = np.random.default_rng([DATA_SEEDS[split], TASKS.index(kind)])
    if kind == "addition":
        source, target = _addition_examples(size, digits, rng)
        return {"source": source, "target": target}
    source, target, pointers = _symbol_examples(kind, size, seq_len, min_len, symbols, rng)
    out = {"source": source, "target": target}
    if kind == "sort":
        out["pointers"] = pointers
    return out


@functools.cache
def seq_task_examples(
    kind: str, split: str, params: tuple[int, int, int, int]
) -> dict[str, np.ndarray]:
    """All examples of a split of `kind` for (seq_len, min_len, num_symbols, num_digits);
    test sources that occur in the train split are redrawn (see the module docstring)."""
    arrays = _draw(kind, split, SIZES[split], params)
    if split == "test":
        seen = {row.tobytes() for row in seq_task_examples(kind, "train", params)["source"]}
        for attempt in range(_MAX_REDRAWS):
            clash = np.array([row.tobytes() in seen for row in arrays["source"]])
            if not clash.any():
                break
            fresh = _redraw(kind, int(clash.sum()), params, attempt)
            for key in arrays:
                arrays[key][clash] = fresh[key]
    for value in arrays.values():
        value.setflags(write=False)
    return arrays


def _redraw(kind: str, n: int, params: tuple[int, int, int, int], attempt: int) -> dict:
    seq_len, min_len, symbols, digits = params
    rng = np.random.default_rng([DATA_SEEDS["test"], TASKS.index(kind), 1 + attempt])
    if kind == "addition":
        source, target = _addition_examples(n, digits, rng)
        return {"source": source, "target": target}
    source, target, pointers = _symbol_examples(kind, n, seq_len, min_len, symbols, rng)
    out = {"source": source, "target": target}
    if kind == "sort":
        out["pointers"] = pointers
    return out


class _Arrays(ArraySource):
    """An `ArraySource` over fixed arrays (one per config)."""

    def __init__(self, features: dict[str, Feature], arrays: dict[str, dict[str, np.ndarray]]):
        self.features = features
        self._arrays = arrays

    def examples(self, split: str) -> dict[str, np.ndarray]:
        return self._arrays[split]


class _ConfiguredSource:
    """A dataset whose arrays depend on `config.dataset`: each protocol call is delegated
    to an `ArraySource` over the arrays of that config."""

    def bound(self, config: ml_collections.ConfigDict) -> ArraySource:
        raise NotImplementedError

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        self.check(config)
        self.bound(config).validate(config, process_count)

    def check(self, config: ml_collections.ConfigDict) -> None:
        raise NotImplementedError

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo:
        return self.bound(config).info(config)

    def steps_per_epoch(self, config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
        return self.bound(config).steps_per_epoch(config, info)

    def num_eval_batches(
        self, config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
    ) -> int:
        return self.bound(config).num_eval_batches(config, info, process_count)

    def train_iterator(self, config, info, **kwargs) -> Iterator[Batch]:
        return self.bound(config).train_iterator(config, info, **kwargs)

    def eval_iterator(self, config, info, **kwargs) -> Iterator[Batch]:
        return self.bound(config).eval_iterator(config, info, **kwargs)


class SeqTaskSource(_ConfiguredSource):
    """copy, reverse, sort or addition (see the module docstring)."""

    def __init__(self, kind: str) -> None:
        check_choice("sequence task", kind, TASKS)
        self.kind = kind

    def check(self, config: ml_collections.ConfigDict) -> None:
        seq_len, min_len, symbols, digits = _params(config)
        for key, value in (("seq_len", seq_len), ("num_symbols", symbols), ("num_digits", digits)):
            check_positive(f"dataset.{key}", value, integer=True)
        if not 1 <= min_len <= seq_len:
            raise ConfigError(
                f"dataset.min_len must be in [1, dataset.seq_len={seq_len}], got {min_len}"
            )

    def vocab_size(self, config: ml_collections.ConfigDict) -> int:
        """3 specials + the symbols (addition: 10 digits and '+')."""
        symbols = len(ADDITION_CHARS) if self.kind == "addition" else _params(config)[2]
        return FIRST_SYMBOL + symbols

    def bound(self, config: ml_collections.ConfigDict) -> ArraySource:
        params = _params(config)
        arrays = {split: seq_task_examples(self.kind, split, params) for split in SIZES}
        first = arrays["train"]
        features = {
            key: Feature(value.shape[1:], "int32", "tokens") for key, value in first.items()
        }
        return _Arrays(features, arrays)

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo:
        info = self.bound(config).info(config)
        return DatasetInfo(**{**info.__dict__, "vocab_size": self.vocab_size(config)})

    def tokenizer(self, config: ml_collections.ConfigDict) -> CharTokenizer:
        """Ids as characters: '_' PAD, '<' BOS, '>' EOS, then the digits/letters of the symbols
        (addition: '0'-'9' and '+')."""
        if self.kind == "addition":
            return CharTokenizer("_<>" + ADDITION_CHARS)
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        symbols = _params(config)[2]
        if symbols > len(alphabet):
            raise ConfigError(f"no display alphabet for {symbols} symbols (at most 62)")
        return CharTokenizer("_<>" + alphabet[:symbols])


@functools.cache
def sort_number_examples(split: str, length: int) -> dict[str, np.ndarray]:
    """'values' float32 [N, length] uniform in [0, 1) and 'pointers' int32 [N, length]."""
    rng = np.random.default_rng([DATA_SEEDS[split], 99, length])
    values = rng.random((NUMBER_SIZES[split], length)).astype(np.float32)
    pointers = np.argsort(values, axis=1, kind="stable").astype(np.int32)
    for value in (values, pointers):
        value.setflags(write=False)
    return {"values": values, "pointers": pointers}


class SortNumbersSource(_ConfiguredSource):
    """sort_numbers: the pointer network's task (see the module docstring)."""

    def check(self, config: ml_collections.ConfigDict) -> None:
        check_positive("dataset.seq_len", _params(config)[0], integer=True)

    def bound(self, config: ml_collections.ConfigDict) -> ArraySource:
        length = _params(config)[0]
        features = {
            "values": Feature((length,), "float32", "vector"),
            "pointers": Feature((length,), "int32", "tokens"),
        }
        arrays = {split: sort_number_examples(split, length) for split in NUMBER_SIZES}
        return _Arrays(features, arrays)


SEQ_TASK_SOURCES = {
    **{kind: SeqTaskSource(kind) for kind in TASKS},
    "sort_numbers": SortNumbersSource(),
}
