"""Text: token conventions, tokenizers, and `tokenizer_for(config)` (ids <-> text).

Token conventions of the sequence datasets that need special tokens (seq2seq and the
generated tasks): `PAD` = 0 marks padding (never a real token, so `tokens != PAD` is the
mask), `BOS` = 1 starts a decoder input, `EOS` = 2 ends a target; real symbols start at
`FIRST_SYMBOL` = 3. Character language-model corpora need none of them: their ids are the
characters of a fixed alphabet.

A dataset that holds text gives its tokenizer through a `tokenizer(config)` method on its
source; `tokenizer_for(config)` finds it (scripts/sample.py decodes generated ids with it).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import re
from collections.abc import Iterable
from typing import Protocol

import ml_collections
import numpy as np

from jaxlab.config import ConfigError

PAD, BOS, EOS = 0, 1, 2
FIRST_SYMBOL = 3
MARKOV_ALPHABET = "abcdefghijklmnop"  # markov_tokens' 16 tokens, shown as letters


class Tokenizer(Protocol):
    """Text <-> int32 ids."""

    vocab_size: int

    def encode(self, text: str) -> np.ndarray: ...

    def decode(self, ids: Iterable[int]) -> str: ...


class CharTokenizer:
    """Characters <-> ids by position in a fixed alphabet (id i is `alphabet[i]`).

    `num_reserved` > 0 shifts every character's id up by that many, keeping ids below it
    for special tokens (3: PAD, BOS, EOS; then `alphabet[0]` is FIRST_SYMBOL); `decode`
    drops reserved ids. `unknown`, a character of the alphabet, stands for every character
    outside it (so any text encodes); without it such a character is a ConfigError.
    """

    def __init__(self, alphabet: str, *, num_reserved: int = 0, unknown: str | None = None) -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("a character alphabet must not repeat characters")
        if unknown is not None and unknown not in alphabet:
            raise ValueError(f"the unknown character {unknown!r} must be in the alphabet")
        self.alphabet = alphabet
        self.num_reserved = num_reserved
        self.unknown = unknown
        self.vocab_size = num_reserved + len(alphabet)
        self._ids = {c: num_reserved + i for i, c in enumerate(alphabet)}
        # Whole-text encoding through a lookup table over code points (fast for corpora).
        self._table = np.full(max(map(ord, alphabet), default=0) + 1, -1, np.int32)
        for c, i in self._ids.items():
            self._table[ord(c)] = i

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of `text`; ConfigError naming the first character outside the alphabet
        (unless the tokenizer has an `unknown` character)."""
        points = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)
        ids = np.full(len(points), -1, np.int32)
        inside = points < len(self._table)
        ids[inside] = self._table[points[inside]]
        missing = ids < 0
        if missing.any():
            if self.unknown is None:
                first = chr(points[np.argmax(missing)])
                raise ConfigError(
                    f"character {first!r} is not in the vocabulary of {len(self.alphabet)} "
                    f"characters: {self.alphabet!r}"
                )
            ids[missing] = self._ids[self.unknown]
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of `ids` (reserved ids give nothing)."""
        r = self.num_reserved
        return "".join(self.alphabet[int(i) - r] for i in ids if int(i) >= r)


# Pre-tokenization: runs of letters, of digits, of other symbols (each optionally led by
# one space, as GPT-2's byte-level BPE does), and of whitespace; every character falls in
# exactly one chunk, so joining the chunks gives the text back.
_CHUNK = re.compile(r" ?[^\W\d_]+| ?\d+| ?[^\s\w]+| ?_+|\s+(?!\S)|\s+")


def pretokenize(text: str) -> list[str]:
    """The chunks BPE merges within (never across): `"".join(pretokenize(t)) == t`."""
    return _CHUNK.findall(text)


def learn_bpe_merges(text: str, num_merges: int) -> list[tuple[str, str]]:
    """Byte-pair encoding (Sennrich et al. 2016) over the characters of `text`: up to
    `num_merges` merges, each of the adjacent pair of symbols most frequent in the chunks
    of `text` (`pretokenize`; ties: the smallest pair), in the order learned.

    Written here because no BPE library is installed (`tokenizers`, `sentencepiece`); the
    pair counts are kept up to date per merge, only for the chunks that hold the merged
    pair, and a heap with stale entries skipped finds the most frequent pair.
    """
    counts = collections.Counter(pretokenize(text))
    words = [list(chunk) for chunk in counts]
    freqs = list(counts.values())
    pairs: collections.Counter = collections.Counter()
    where: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    for i, (word, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in zip(word, word[1:], strict=False):
            pairs[pair] += freq
            where[pair].add(i)
    heap = [(-count, pair) for pair, count in pairs.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while heap and len(merges) < num_merges:
        negative, best = heapq.heappop(heap)
        if pairs.get(best, 0) != -negative:
            continue  # stale: the count changed since this entry was pushed
        merges.append(best)
        first, second = best
        joined = first + second
        touched = set()
        for i in where.pop(best):
            word, freq = words[i], freqs[i]
            for pair in zip(word, word[1:], strict=False):
                pairs[pair] -= freq
                touched.add(pair)
            merged, j = [], 0
            while j < len(word):
                if j + 1 < len(word) and word[j] == first and word[j + 1] == second:
                    merged.append(joined)
                    j += 2
                else:
                    merged.append(word[j])
                    j += 1
            words[i] = merged
            for pair in zip(merged, merged[1:], strict=False):
                pairs[pair] += freq
                where[pair].add(i)
                touched.add(pair)
        for pair in touched:
            if pairs[pair] > 0:
                heapq.heappush(heap, (-pairs[pair], pair))
            else:
                del pairs[pair]
                where.pop(pair, None)
    return merges


class BPETokenizer:
    """Subwords from byte-pair merges: ids are `num_reserved` specials, then the characters
    of `alphabet`, then one token per merge (the concatenation of its pair), in order.

    `encode` splits the text into chunks (`pretokenize`) and applies, within each chunk, the
    earliest-learned merge among its adjacent pairs until none applies (chunks are cached),
    so `decode(encode(text)) == text` for any text over the alphabet. `unknown` (a
    character of the alphabet) stands for characters outside it, as in `CharTokenizer`.
    """

    def __init__(
        self,
        alphabet: str,
        merges: Iterable[tuple[str, str]],
        *,
        num_reserved: int = 0,
        unknown: str | None = None,
    ) -> None:
        self.chars = CharTokenizer(alphabet, num_reserved=num_reserved, unknown=unknown)
        self.merges = [tuple(m) for m in merges]
        self.num_reserved = num_reserved
        self.tokens = list(alphabet) + [a + b for a, b in self.merges]
        self.vocab_size = num_reserved + len(self.tokens)
        self._ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._cache: dict[str, list[int]] = {}

    def _encode_chunk(self, chunk: str) -> list[int]:
        """The ids of one chunk of characters of the alphabet (merged by rank)."""
        char_ids = self.chars._ids
        symbols, ids = list(chunk), [char_ids[c] for c in chunk]
        none = len(self.merges)
        while len(symbols) > 1:
            rank = min(self._ranks.get(p, none) for p in zip(symbols, symbols[1:], strict=False))
            if rank == none:
                break
            first, second = self.merges[rank]
            new_id = self.num_reserved + len(self.chars.alphabet) + rank
            merged, merged_ids, j = [], [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and symbols[j] == first and symbols[j + 1] == second:
                    merged.append(first + second)
                    merged_ids.append(new_id)
                    j += 2
                else:
                    merged.append(symbols[j])
                    merged_ids.append(ids[j])
                    j += 1
            symbols, ids = merged, merged_ids
        return ids

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of `text` (ConfigError for a character outside the alphabet, unless
        the tokenizer has an `unknown` character)."""
        if self.chars.unknown is not None:
            text = self.chars.decode(self.chars.encode(text))  # outside characters -> unknown
        else:
            self.chars.encode(text)  # raises for the first character outside the alphabet
        cache = self._cache
        pieces = []
        for chunk in pretokenize(text):
            ids = cache.get(chunk)
            if ids is None:
                ids = cache[chunk] = self._encode_chunk(chunk)
            pieces.append(ids)
        return np.fromiter(itertools.chain.from_iterable(pieces), np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids` (reserved ids give nothing)."""
        r = self.num_reserved
        return "".join(self.tokens[int(i) - r] for i in ids if int(i) >= r)


def tokenizer_for(config: ml_collections.ConfigDict) -> Tokenizer:
    """The tokenizer of `config.dataset.name` (its source's `tokenizer(config)`);
    ConfigError for a dataset without text."""
    from jaxlab.data.registry import get_source  # the registry imports the sources

    name = config.dataset.name
    if name == "markov_tokens":
        return CharTokenizer(MARKOV_ALPHABET)
    source = get_source(name)
    if not hasattr(source, "tokenizer"):
        raise ConfigError(f"dataset {name!r} has no tokenizer (it holds no text)")
    return source.tokenizer(config)
