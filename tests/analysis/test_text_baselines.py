"""Tests of jaxlab.analysis.text_baselines against hand counts."""

import bz2
import math

import pytest

from jaxlab.analysis.text_baselines import bzip2_nats_per_char, ngram_nats_per_char


def test_add_k_bigram_matches_a_hand_count():
    # train "abab": bigrams ab x2, ba x1; contexts a (2, followed by b), b (1, followed by a).
    # valid "ba" is scored in the running text "ababba": p(b | b) then p(a | b), V = 2.
    k = 0.5
    p_bb = (0 + k) / (1 + 2 * k)
    p_ba = (1 + k) / (1 + 2 * k)
    expected = -(math.log(p_bb) + math.log(p_ba)) / 2
    assert ngram_nats_per_char("abab", "ba", 2, k) == pytest.approx(expected)


def test_add_k_trigram_with_an_unseen_context_is_uniform():
    # train "aab": trigram aab x1. valid "ba": trigrams "abb" (context ab, N=0) and "bba".
    got = ngram_nats_per_char("aab", "ba", 3, 1.0, alphabet="abc")
    assert got == pytest.approx(math.log(3))


def test_witten_bell_matches_a_hand_count():
    # train "aab", V = 2 ("ab"). Unigram: N = 3, T = 2: p1(a) = (2 + 2/2)/5, p1(b) = (1 + 1)/5.
    # Bigram contexts: a -> {a: 1, b: 1} (N 2, T 2); b is never a context.
    # valid "ab" in "aabab": p(a | b) = p1(a) (unseen context); p(b | a) = (1 + 2 p1(b)) / 4.
    p1a, p1b = 3 / 5, 2 / 5
    expected = -(math.log(p1a) + math.log((1 + 2 * p1b) / 4)) / 2
    got = ngram_nats_per_char("aab", "ab", 2, smoothing="witten_bell")
    assert got == pytest.approx(expected)


def test_bzip2_rate_is_eight_bits_per_compressed_byte():
    text = "to be or not to be, that is the question — " * 50
    size = len(bz2.compress(text.encode("utf-8"), 9))
    assert bzip2_nats_per_char(text) == pytest.approx(8 * size / len(text) * math.log(2))
    assert bzip2_nats_per_char(text) < math.log(2) * 8  # repetitive text compresses
