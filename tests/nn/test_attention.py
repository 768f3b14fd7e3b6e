"""Tests of jaxlab.nn.attention and jaxlab.nn.positional against direct numpy computations."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.nn.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from jaxlab.nn.positional import LearnedPositions, sinusoidal_encoding


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_scaled_dot_product_attention_matches_numpy_with_masks_and_bias():
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(2, n, 2, 3)).astype(np.float32) for n in (4, 5, 5))
    bias = rng.normal(size=(2, 2, 4, 5)).astype(np.float32)
    mask = rng.random((2, 1, 4, 5)) > 0.4
    mask[0, 0, 1] = False  # a fully masked query row
    mask[:, :, :, 0] |= np.arange(4) != 1  # every other row keeps at least one key
    out, weights = scaled_dot_product_attention(q, k, v, mask=jnp.asarray(mask), bias=bias)

    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(3) + bias
    expected_w = _softmax(np.where(mask, logits, -1e30)) * mask.any(-1, keepdims=True)
    np.testing.assert_allclose(weights, expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        out, np.einsum("bhqk,bkhd->bqhd", expected_w, v), rtol=1e-5, atol=1e-6
    )
    assert np.all(np.asarray(out[0, 1]) == 0.0) and np.isfinite(np.asarray(out)).all()


@pytest.fixture(scope="module")
def relative_attention():
    """Self-attention of width 8 with 2 heads and Shaw relative keys clipped at 2."""
    mha = MultiHeadAttention(num_heads=2, features=8, max_relative_distance=2)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 6, 8)), jnp.float32)
    shapes = jax.eval_shape(lambda: mha.init(jax.random.key(0), x)["params"])
    rng = np.random.default_rng(2)  # non-zero biases and relative table: every term counts
    params = jax.tree.map(lambda s: jnp.asarray(0.5 * rng.normal(size=s.shape), s.dtype), shapes)
    return mha, params, x


def test_relative_multi_head_attention_equals_direct_numpy(relative_attention):
    mha, params, x = relative_attention
    out, weights, _ = mha.apply({"params": params}, x, mask=causal_mask(6))
    p = jax.tree.map(np.asarray, params)
    xn = np.asarray(x)
    q, k, v = (
        np.einsum("btd,dhe->bthe", xn, p[n]["kernel"]) + p[n]["bias"]
        for n in ("query", "key", "value")
    )
    table, dist = p["relative_key"], 2
    logits = np.zeros((2, 2, 6, 6))
    for i in range(6):
        for j in range(6):
            a = table[min(max(j - i, -dist), dist) + dist]
            logits[:, :, i, j] = np.einsum("bhe,bhe->bh", q[:, i], k[:, j] + a) / math.sqrt(4)
    logits = np.where(np.tril(np.ones((6, 6), bool)), logits, -np.inf)
    w = _softmax(logits)
    expected = np.einsum("bhqk,bkhe->bqhe", w, v)
    expected = np.einsum("bqhe,hed->bqd", expected, p["out"]["kernel"]) + p["out"]["bias"]
    np.testing.assert_allclose(weights, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_cached_chunks_equal_causal_attention_over_the_whole_sequence(relative_attention):
    mha, params, x = relative_attention
    chunks = ((0, 3), (3, 4), (4, 6))  # a prompt, one token, a chunk

    @jax.jit
    def run(params, x):
        full, _, _ = mha.apply({"params": params}, x, mask=causal_mask(6))
        cache = mha.apply({"params": params}, 2, 8, method="init_cache")  # 2 slots spare
        outs, weights = [], []
        for start, stop in chunks:
            out, w, cache = mha.apply({"params": params}, x[:, start:stop], cache=cache)
            outs.append(out)
            weights.append(w)
        return full, jnp.concatenate(outs, axis=1), weights, cache.index

    full, chunked, weights, index = run(params, x)
    np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-5)
    for (start, stop), w in zip(chunks, weights, strict=True):
        assert w.shape == (2, 2, stop - start, 8)
        np.testing.assert_array_equal(w[..., stop:], 0.0)  # no future, no empty slot
    np.testing.assert_array_equal(index, [6, 6])


def test_attention_width_must_split_into_heads():
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        MultiHeadAttention(num_heads=3, features=8).init(jax.random.key(0), jnp.ones((1, 2, 8)))


def test_sinusoidal_encoding_is_the_closed_form():
    positions, d = np.array([0, 1, 5, 17]), 6
    expected = np.zeros((4, d))
    for row, pos in enumerate(positions):
        for i in range(d // 2):
            expected[row, 2 * i] = math.sin(pos / 10000 ** (2 * i / d))
            expected[row, 2 * i + 1] = math.cos(pos / 10000 ** (2 * i / d))
    np.testing.assert_allclose(sinusoidal_encoding(positions, d), expected, atol=1e-5)
    with pytest.raises(ConfigError, match="even width"):
        sinusoidal_encoding(positions, 5)


def test_learned_positions_look_up_their_rows():
    module = LearnedPositions(max_len=5, features=3)
    params = module.init(jax.random.key(0), jnp.arange(5))["params"]
    table = np.asarray(params["embedding"])
    np.testing.assert_array_equal(
        module.apply({"params": params}, jnp.array([[4, 0], [2, 2]])), table[[[4, 0], [2, 2]]]
    )
