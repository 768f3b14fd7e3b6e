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
    """Characters <-> ids by position in a fixed alphabet (id i is `alphabet[i]`)."""

    def __init__(self, alphabet: str) -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("a character alphabet must not repeat characters")
        self.alphabet = alphabet
        self.vocab_size = len(alphabet)
        self._ids = {c: i for i, c in enumerate(alphabet)}

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of `text`; ConfigError naming the first character outside the alphabet."""
        unknown = [c for c in text if c not in self._ids]
        if unknown:
            raise ConfigError(
                f"character {unknown[0]!r} is not in the vocabulary of {self.vocab_size} "
                f"characters: {self.alphabet!r}"
            )
        return np.array([self._ids[c] for c in text], np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of `ids`."""
        return "".join(self.alphabet[int(i)] for i in ids)


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
