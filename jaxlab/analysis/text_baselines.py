"""Reference compression rates of a character corpus: count n-gram models and bzip2.

All rates are in nats per character of the validation text (divide by ln 2 for bits).

- `ngram_nats_per_char(train, valid, n, k)`: a count n-gram model of order n with add-k
  smoothing, fitted on `train`:

      p(c | h) = (N(h c) + k) / (N(h) + k V)

  where h is the n - 1 characters before c, N counts occurrences in `train` (an n-gram is
  counted where its whole window lies in `train`; N(h) counts h as the context of a next
  character) and V is the size of the alphabet (`alphabet`, default: the characters of
  train and valid together). Each validation character is scored given the n - 1
  characters before it in the running text `train + valid` (so its first characters'
  contexts reach back into `train`). No back-off or interpolation: add-k alone.
  With `smoothing='witten_bell'` the orders are interpolated instead (Witten & Bell 1991):

      p_m(c | h) = (N(h c) + T(h) p_{m-1}(c | h')) / (N(h) + T(h)),   p_0 = 1 / V,

  with h' the context h without its first character, T(h) the number of distinct
  characters that follow h in `train`, and p_m = p_{m-1} for a context never seen.
- `bzip2_nats_per_char(valid)`: `bzip2 -9` (Python's `bz2` module, compresslevel 9) on the
  UTF-8 bytes of `valid` alone: 8 * compressed bytes / characters * ln 2.

Written with numpy (n-grams as base-V integer codes, counted with `np.unique`) because no
library here fits count n-gram models of characters.
"""

from __future__ import annotations

import bz2
import math

import numpy as np


def _codes(ids: np.ndarray, order: int, base: int) -> np.ndarray:
    """int64 base-`base` codes of the `order`-grams of `ids` (one per start position)."""
    count = len(ids) - order + 1
    codes = np.zeros(max(count, 0), np.int64)
    for i in range(order):
        codes = codes * base + ids[i : i + count]
    return codes


def _lookup(table: np.ndarray, counts: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The count of each code in the sorted unique `table` (0 when absent)."""
    where = np.minimum(np.searchsorted(table, codes), max(len(table) - 1, 0))
    found = table[where] == codes if len(table) else np.zeros(len(codes), bool)
    return np.where(found, counts[where] if len(table) else 0, 0)


class _Counts:
    """The counts of the order-m n-grams of a text of ids: each n-gram's count N(h c), and
    per context h, N(h) (occurrences followed by a character) and T(h) (distinct characters
    that follow it)."""

    def __init__(self, ids: np.ndarray, order: int, base: int) -> None:
        self.base = base
        self.grams, self.counts = np.unique(_codes(ids, order, base), return_counts=True)
        self.contexts, where = np.unique(self.grams // base, return_inverse=True)
        self.context_counts = np.bincount(where, weights=self.counts).astype(np.int64)
        self.context_types = np.bincount(where).astype(np.int64)

    def lookup(self, scored: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N(h c), N(h), T(h)) of each n-gram code in `scored`."""
        contexts = scored // self.base
        return (
            _lookup(self.grams, self.counts, scored),
            _lookup(self.contexts, self.context_counts, contexts),
            _lookup(self.contexts, self.context_types, contexts),
        )


SMOOTHING = ("add_k", "witten_bell")


def ngram_nats_per_char(
    train: str,
    valid: str,
    n: int,
    k: float = 1.0,
    alphabet: str | None = None,
    smoothing: str = "add_k",
) -> float:
    """Validation nats per character of the count n-gram model (module docstring), with
    'add_k' or 'witten_bell' smoothing."""
    if n < 1 or k <= 0 or smoothing not in SMOOTHING:
        raise ValueError(f"need n >= 1, k > 0, smoothing in {SMOOTHING}; got {n}, {k}, {smoothing}")
    alphabet = alphabet or "".join(sorted(set(train + valid)))
    index = {c: i for i, c in enumerate(alphabet)}
    ids = np.array([index[c] for c in train + valid], np.int64)
    size, base = len(train), len(alphabet)
    if size < n - 1:  # the first validation characters would lack a whole context
        raise ValueError(f"the train text needs at least {n - 1} characters")

    def scored(order: int) -> np.ndarray:  # the order-grams ending at each valid character
        return _codes(ids[size - (order - 1) :], order, base)

    if smoothing == "add_k":
        gram, context, _ = _Counts(ids[:size], n, base).lookup(scored(n))
        return float(-np.mean(np.log((gram + k) / (context + k * base))))
    p = np.full(len(valid), 1.0 / base)
    for order in range(1, n + 1):
        gram, context, types = _Counts(ids[:size], order, base).lookup(scored(order))
        seen = context > 0
        p = np.where(seen, (gram + types * p) / np.maximum(context + types, 1), p)
    return float(-np.mean(np.log(p)))


def bzip2_nats_per_char(valid: str) -> float:
    """`bzip2 -9` on the UTF-8 bytes of `valid`: 8 * bytes / characters * ln 2."""
    compressed = bz2.compress(valid.encode("utf-8"), compresslevel=9)
    return 8 * len(compressed) / len(valid) * math.log(2)
