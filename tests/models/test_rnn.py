"""Tests of jaxlab/models/rnn.py: rnn_lm's language-model contract (carry across windows,
initial_carry, chunked decode equal to __call__, causality) and rnn_classifier's (padding
changes nothing, the three poolings, features or tokens), parameter counts, config errors."""

from __future__ import annotations

import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxlab.config import ConfigError
from jaxlab.data.text import PAD
from jaxlab.models import get_model
from jaxlab.nn.recurrent import CELLS, cell_formula
from tests.conftest import ROOT

V, E, H, B, T = 11, 8, 8, 2, 6


def _shapes(model, x, **kwargs):
    return jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False, **kwargs))["params"]


def _count(tree) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(tree))


def _random_params(model, x, seed: int = 0):
    """N(0, 0.5^2) weights in the model's structure (from jax.eval_shape: nothing compiles)."""
    rng = np.random.default_rng(seed)
    shapes = _shapes(model, x)
    return jax.tree.map(lambda s: jnp.asarray(0.5 * rng.normal(size=s.shape), s.dtype), shapes)


@pytest.fixture(scope="module")
def tokens():
    return jnp.asarray(np.random.default_rng(1).integers(PAD + 1, V, size=(B, T)), jnp.int32)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("two_biases,tie", [(False, False), (True, True)])
def test_lm_parameter_count(cell, two_biases, tie, tokens):
    lm = get_model(
        "rnn_lm",
        vocab_size=V,
        embed_dim=E,
        hidden_size=H,
        num_layers=2,
        cell=cell,
        two_biases=two_biases,
        tie_weights=tie,
    )
    recurrent = cell_formula(cell, E, H, two_biases)[0] + cell_formula(cell, H, H, two_biases)[0]
    head = V if tie else (H + 1) * V  # tied: only the output bias
    assert _count(_shapes(lm, tokens)) == V * E + recurrent + head


def test_classifier_parameter_count_bidirectional(tokens):
    model = get_model(
        "rnn_classifier",
        num_classes=3,
        vocab_size=V,
        embed_dim=E,
        hidden_size=H,
        num_layers=2,
        cell="lstm",
        bidirectional=True,
        two_biases=True,
    )
    # PyTorch's nn.LSTM(8, 8, num_layers=2, bidirectional=True) has
    # 2*4*(8*8 + 8*8 + 16) + 2*4*(8*16 + 8*8 + 16) = 1152 + 1664 = 2816 parameters.
    assert _count(_shapes(model, tokens)) == V * E + 2816 + (2 * H + 1) * 3


@pytest.fixture(scope="module", params=["ln_lstm"])
def lm(request, tokens):
    model = get_model(
        "rnn_lm",
        vocab_size=V,
        embed_dim=E,
        hidden_size=H,
        num_layers=2,
        cell=request.param,
        learned_init=True,
    )
    params = _random_params(model, tokens)
    call = jax.jit(lambda p, t, c: model.apply({"params": p}, t, c, train=False))
    return model, params, call


def test_carry_continues_across_windows_and_chunked_decode_equals_call(lm, tokens):
    model, params, call = lm
    full, full_carry = call(params, tokens, None)
    assert full.shape == (B, T, V) and full.dtype == jnp.float32
    # Two consecutive windows with the carry == one long window (from the initial carry).
    start_carry = model.apply({"params": params}, B, method="initial_carry")
    first, carry = call(params, tokens[:, :3], start_carry)
    second, carry = call(params, tokens[:, 3:], carry)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), full, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), carry, full_carry)
    # A prompt of 3 tokens, then one token per step: the logits of __call__.
    decode = jax.jit(lambda p, t, s: model.apply({"params": p}, t, s, method="decode"))
    state = model.apply({"params": params}, B, 16, method="init_decode_state")
    chunks = []
    for start, stop in ((0, 3), (3, 4), (4, 5), (5, 6)):
        logits, state = decode(params, tokens[:, start:stop], state)
        chunks.append(logits)
    np.testing.assert_allclose(jnp.concatenate(chunks, 1), full, rtol=1e-5, atol=1e-5)
    # The carry's structure: one entry per layer, batch axis first on every leaf.
    assert jax.tree.structure(start_carry) == jax.tree.structure(full_carry) and len(carry) == 2
    assert all(leaf.shape == (B, H) for leaf in jax.tree.leaves(start_carry))


def test_initial_carry_learned_or_zeros(tokens):
    kwargs = dict(vocab_size=V, embed_dim=E, hidden_size=H, num_layers=2, cell="lstm")
    zeros = get_model("rnn_lm", **kwargs)
    params = _random_params(zeros, tokens)
    carry = zeros.apply({"params": params}, 3, method="initial_carry")
    assert all(leaf.shape == (3, H) and not np.any(leaf) for leaf in jax.tree.leaves(carry))
    learned = get_model("rnn_lm", learned_init=True, **kwargs)
    params = _random_params(learned, tokens)
    carry = learned.apply({"params": params}, 3, method="initial_carry")
    for layer in range(2):
        state = params["rnn"][f"layers_{layer}"]["forward"]["initial_state"]  # (c, h) rows
        for part in range(2):
            np.testing.assert_array_equal(carry[layer][part], np.broadcast_to(state[part], (3, H)))


def test_rnn_lm_is_causal(tokens):
    model = get_model("rnn_lm", vocab_size=V, embed_dim=E, hidden_size=H, cell="lstm")
    params = _random_params(model, tokens)

    def logits_of(delta):  # delta [1, T, E] is added to the embeddings
        def add(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            if isinstance(context.module, nn.Embed) and context.method_name == "__call__":
                out = out + delta
            return out

        with nn.intercept_methods(add):
            return model.apply({"params": params}, tokens[:1], train=False)[0][0]  # [T, V]

    jac = jax.jit(jax.jacfwd(logits_of))(jnp.zeros((1, T, E)))  # [T, V, 1, T, E]
    influence = np.abs(np.asarray(jac)).sum(axis=(1, 2, 4))  # [t output, s input]
    assert np.all(influence[np.triu_indices(T, 1)] == 0)  # inputs after t: exactly zero
    assert np.all(np.diag(influence) > 0) and np.all(influence[np.tril_indices(T)] > 0)


def test_lm_dropout_only_in_training(tokens):
    model = get_model("rnn_lm", vocab_size=V, embed_dim=E, hidden_size=H, cell="rnn", dropout=0.5)
    params = _random_params(model, tokens)
    rngs = {"dropout": jax.random.key(0)}
    train, _ = model.apply({"params": params}, tokens, train=True, rngs=rngs)
    eval_, _ = model.apply({"params": params}, tokens, train=False, rngs=rngs)
    assert not np.allclose(train, eval_)


@pytest.mark.parametrize("pooling", ["last", "mean", "scalar_mix"])
def test_classifier_padding_changes_nothing(pooling, tokens):
    model = get_model(
        "rnn_classifier",
        num_classes=3,
        vocab_size=V,
        embed_dim=E,
        hidden_size=H,
        num_layers=2 if pooling == "scalar_mix" else 1,
        cell="gru",
        bidirectional=True,
        merge="sum",
        pooling=pooling,
    )
    padded = tokens.at[0, 3:].set(PAD)
    params = _random_params(model, padded)
    if pooling == "scalar_mix":
        assert params["scalar_mix"]["weights"].shape == (2,)
    run = jax.jit(lambda p, x: model.apply({"params": p}, x, train=False))
    logits = run(params, padded)
    assert logits.shape == (B, 3) and logits.dtype == jnp.float32
    np.testing.assert_allclose(logits[0], run(params, tokens[:1, :3])[0], rtol=1e-5, atol=1e-5)


def test_classifier_on_float_features_and_config_errors():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(B, T, 5)), jnp.float32)
    model = get_model("rnn_classifier", num_classes=4, hidden_size=H, cell="rnn", pooling="mean")
    params = _random_params(model, x)
    flat = traverse_util.flatten_dict(params)
    assert not any("Embed" in "/".join(k) for k in flat)  # features go in as they are
    assert params["rnn"]["layers_0"]["forward"]["cell"]["ih"]["kernel"].shape == (5, H)
    assert model.apply({"params": params}, x, train=False).shape == (B, 4)
    with pytest.raises(ConfigError, match="vocab_size is 0"):
        model.init(jax.random.key(0), jnp.ones((B, T), jnp.int32), train=False)
    with pytest.raises(ConfigError, match="unknown model.pooling 'max'; valid choices: last"):
        get_model("rnn_classifier", pooling="max")
    with pytest.raises(ConfigError, match="unknown model.cell 'lstn'; valid choices: rnn"):
        get_model("rnn_lm", cell="lstn")
    with pytest.raises(ConfigError, match="tie_weights needs hidden_size == embed_dim"):
        get_model("rnn_lm", embed_dim=4, hidden_size=8, tie_weights=True)
    with pytest.raises(ConfigError, match="needs model.vocab_size >= 1"):
        _shapes(get_model("rnn_lm"), jnp.ones((B, T), jnp.int32))


def test_inspect_reads_sequence_inputs_and_prints_each_recurrent_layers_formula():
    # In a subprocess: scripts.inspect defines absl flags (e.g. --batch_size) that another
    # script imported by another test in this process (scripts.bench) defines too.
    code = f"V = {V}\n" + INSPECT_CHECK
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


INSPECT_CHECK = """
import jax.numpy as jnp
from jaxlab.models import get_model
from jaxlab.analysis import parameter_table
from scripts.inspect import recurrent_lines, resolve

name, kwargs, shape, dtype = resolve(None, "rnn_lm", 10, 32, 3, seq_len=5, vocab_size=V)
assert (name, kwargs, shape, dtype) == ("rnn_lm", {"vocab_size": V}, (5,), "int32")
_, kwargs, shape, dtype = resolve(None, "rnn_classifier", 4, 32, 7, seq_len=5)
assert (kwargs, shape, dtype) == ({"num_classes": 4}, (5, 7), "float32")
model = get_model(
    "rnn_classifier", num_classes=4, hidden_size=20, bidirectional=True, two_biases=True
)
lines = recurrent_lines(parameter_table(model, (1, *shape), flops=False))
assert lines == [
    "lstm layer 0: 4*((7+20)*20 + 20) + 4*20 = 2,320",
    "lstm layer 0 backward: 4*((7+20)*20 + 20) + 4*20 = 2,320",
]
"""
