"""Tokenizers of jaxlab.data.text."""

import collections

import ml_collections
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.data.text import (
    BPETokenizer,
    CharTokenizer,
    learn_bpe_merges,
    pretokenize,
    tokenizer_for,
)


def test_char_tokenizer_round_trip_and_unknown_character():
    tok = CharTokenizer("ab c")
    ids = tok.encode("a cab")
    np.testing.assert_array_equal(ids, [0, 2, 3, 0, 1])
    assert tok.decode(ids) == "a cab"
    with pytest.raises(ConfigError, match="'z' is not in the vocabulary"):
        tok.encode("z")


def test_tokenizer_for_markov_tokens_and_for_a_dataset_without_text():
    config = ml_collections.ConfigDict({"dataset": {"name": "markov_tokens"}})
    assert tokenizer_for(config).vocab_size == 16
    config.dataset.name = "toy2d"
    with pytest.raises(ConfigError, match="no tokenizer"):
        tokenizer_for(config)


def test_char_tokenizer_reserved_ids_and_unknown_character():
    tok = CharTokenizer("ab?", num_reserved=3, unknown="?")
    assert tok.vocab_size == 6
    np.testing.assert_array_equal(tok.encode("abz"), [3, 4, 5])  # 'z' -> '?'
    assert tok.decode([0, 3, 1, 4, 2]) == "ab"  # reserved ids (PAD, BOS, EOS) give nothing


def test_pretokenize_partitions_any_text():
    text = "Hello,  world!\n\n  x_y 12ab — é\t"
    chunks = pretokenize(text)
    assert "".join(chunks) == text
    assert chunks[:4] == ["Hello", ",", " ", " world"]


def _hand_bpe(text, num_merges):
    """BPE by its definition, recounting every pair over the chunks after each merge."""
    words = collections.Counter(tuple(c) for c in pretokenize(text))
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for word, freq in words.items():
            for pair in zip(word, word[1:], strict=False):
                pairs[pair] += freq
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = collections.Counter()
        for word, freq in words.items():
            out, j = [], 0
            while j < len(word):
                if word[j : j + 2] == best:
                    out.append(best[0] + best[1])
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            merged[tuple(out)] += freq
        words = merged
    return merges, words


def test_bpe_merges_match_a_recount_and_encode_round_trips():
    text = "the cat sat on the mat; the cats ate the rat.\nthat hat, that bat: aaaa aaa\n" * 3
    merges, words = _hand_bpe(text, 30)
    assert learn_bpe_merges(text, 30) == merges
    alphabet = "".join(sorted(set(text)))
    tok = BPETokenizer(alphabet, merges)
    assert 20 < len(merges) < 30  # learning stops when every chunk is one symbol
    assert tok.vocab_size == len(alphabet) + len(merges)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    # Encoding a learned text gives the symbols the merges left in each chunk.
    assert len(ids) == sum(len(w) * f for w, f in words.items())
    assert tok.decode(tok.encode("a tea rat")) == "a tea rat"  # a text it never saw
    with pytest.raises(ConfigError, match="'z' is not in the vocabulary"):
        tok.encode("zebra")
    reserved = BPETokenizer(alphabet + "?", merges, num_reserved=3, unknown="?")
    assert reserved.encode("cat").min() >= 3
    assert reserved.decode(reserved.encode("the zoo")) == "the ?oo"
