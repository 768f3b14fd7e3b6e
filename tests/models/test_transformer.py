"""Tests of jaxlab.models.transformer (the encoder-decoder Transformer and its block) and
jaxlab.models.gpt: causality, cached decoding against full recomputation, padding, the block
structure and nanoGPT's parameter count."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.models import get_model, model_fields
from jaxlab.models.transformer import TransformerBlock


def _filled(module, *args, seed=0, scale=0.3, **kwargs):
    """The module's params (structure from eval_shape) filled with numpy normals."""
    shapes = jax.eval_shape(lambda *a: module.init(jax.random.key(0), *a, **kwargs), *args)
    shapes = shapes["params"]
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(scale * rng.normal(size=s.shape), s.dtype), shapes)


def _count(model, *args, **kwargs) -> int:
    shapes = jax.eval_shape(lambda *a: model.init(jax.random.key(0), *a, **kwargs), *args)
    return sum(math.prod(s.shape) for s in jax.tree.leaves(shapes["params"]))


def _nanogpt_params(vocab, block, layers, d, bias=True, tied=True) -> int:
    """nanoGPT's GPT parameter count (model.py: wte, wpe, per block ln_1, c_attn, c_proj,
    ln_2, c_fc, c_proj, then ln_f and the lm_head, tied to wte or not)."""
    b = 1 if bias else 0
    ln = d + b * d
    block_params = 2 * ln + (3 * d * d + b * 3 * d) + (d * d + b * d)
    block_params += (4 * d * d + b * 4 * d) + (4 * d * d + b * d)
    return vocab * d + block * d + layers * block_params + ln + (0 if tied else vocab * d)


def test_gpt_parameter_count_is_nanogpts():
    tokens = jax.ShapeDtypeStruct((1, 8), jnp.int32)
    # nanoGPT's CPU shakespeare_char model (65 characters): 809,856 (0.80M without wpe).
    assert _count(get_model("gpt", vocab_size=65), tokens, train=False) == 809_856
    assert _nanogpt_params(65, 64, 4, 128) == 809_856
    for kwargs in (dict(bias=False), dict(tie_weights=False)):
        tied = kwargs.get("tie_weights", True)
        model = get_model("gpt", vocab_size=65, **kwargs)
        expected = _nanogpt_params(65, 64, 4, 128, bias=kwargs.get("bias", True), tied=tied)
        assert _count(model, tokens, train=False) == expected
    assert _count(get_model("gpt2"), tokens, train=False) == 124_439_808  # GPT-2 small


TINY_GPT = dict(vocab_size=7, num_layers=2, num_heads=2, d_model=8, block_size=8)


@pytest.fixture(scope="module")
def gpt():
    model = get_model("gpt", **TINY_GPT)
    return model, _filled(model, jnp.zeros((1, 8), jnp.int32), train=False)


def test_gpt_output_at_t_does_not_depend_on_inputs_after_t(gpt):
    model, params = gpt
    embedded = jnp.asarray(np.random.default_rng(1).normal(size=(1, 6, 8)), jnp.float32)
    jac = jax.jit(
        jax.jacrev(lambda e: model.apply({"params": params}, e, method="logits_from_embeddings"))
    )(embedded)[0, :, :, 0]  # [t, V, s, D]
    for t in range(6):
        np.testing.assert_array_equal(jac[t, :, t + 1 :], 0.0)
        assert np.all(np.abs(jac[t, :, : t + 1]).sum(axis=(0, 2)) > 0)


def test_gpt_cached_generation_equals_full_recomputation(gpt):
    model, params = gpt
    variables = {"params": params}
    prompt, steps = jnp.array([[3, 1, 4], [5, 2, 6]]), 5
    length = prompt.shape[1] + steps

    @jax.jit
    def generate(params, prompt):  # a prompt, then one token per step, all under jit
        variables = {"params": params}
        state = model.apply(variables, 2, length, method="init_decode_state")
        logits, state = model.apply(variables, prompt, state, method="decode")

        def step(carry, _):
            state, last = carry
            token = jnp.argmax(last, axis=-1)
            logits, state = model.apply(variables, token[:, None], state, method="decode")
            return (state, logits[:, 0]), (token, logits[:, 0])

        _, (tokens, step_logits) = jax.lax.scan(step, (state, logits[:, -1]), length=steps)
        return tokens.T, jnp.concatenate([logits, step_logits.swapaxes(0, 1)], axis=1)

    tokens, cached_logits = generate(params, prompt)
    full = jax.jit(lambda v, x: model.apply(v, x, train=False)[0])
    sequence = jnp.concatenate([prompt, tokens], axis=1)
    for i in range(steps):  # greedy tokens from the whole recomputed sequence, one by one
        known = jnp.concatenate([prompt, tokens[:, :i]], axis=1)
        padded = jnp.pad(known, ((0, 0), (0, length - known.shape[1])))
        np.testing.assert_array_equal(
            jnp.argmax(full(variables, padded)[:, known.shape[1] - 1], -1), tokens[:, i]
        )
    np.testing.assert_allclose(cached_logits, full(variables, sequence), rtol=1e-4, atol=1e-5)


def test_gpt_language_model_contract(gpt):
    model, params = gpt
    tokens = jnp.array([[1, 2, 3]])
    out = jax.eval_shape(lambda: model.apply({"params": params}, tokens, None, train=False))
    assert out[0].shape == (1, 3, 7) and out[0].dtype == jnp.float32 and out[1] is None
    assert model.apply({"params": params}, 4, method="initial_carry") is None
    with pytest.raises(ValueError, match="exceeds block_size 8"):
        model.apply({"params": params}, 1, 9, method="init_decode_state")
    with pytest.raises(ConfigError, match="sinusoidal, learned, relative"):
        _count(get_model("gpt", positions="rotary", vocab_size=7), tokens, train=False)
    with pytest.raises(ConfigError, match="model.vocab_size must be > 0"):
        _count(get_model("gpt"), tokens, train=False)
    assert model_fields("gpt")["block_size"] == 64 and model_fields("gpt")["d_model"] == 128


TINY_TRANSFORMER = dict(vocab_size=9, d_model=8, num_heads=2, num_layers=2, mlp_dim=16)
SOURCE = jnp.array([[3, 4, 5, 6, 0, 0], [7, 8, 3, 4, 5, 6]])  # row 0 padded
TARGET_IN = jnp.array([[1, 6, 5, 4, 3], [1, 6, 5, 4, 3]])


@pytest.fixture(scope="module")
def transformer():
    """Post-LN, sinusoidal positions, no dropout."""
    model = get_model("transformer", dropout=0.0, **TINY_TRANSFORMER)
    return model, _filled(model, SOURCE, TARGET_IN, train=False)


def test_transformer_decode_step_with_teacher_tokens_equals_call(transformer):
    model, params = transformer

    @jax.jit
    def run(params, source, target_in):
        variables = {"params": params}
        logits = model.apply(variables, source, target_in, train=False)
        memory = model.apply(variables, source, method="encode")
        state = model.apply(
            variables, memory, source, target_in.shape[1], method="init_decode_state"
        )

        def step(state, token):
            out, state, attention = model.apply(
                variables, token, state, memory, source, method="decode_step"
            )
            return state, (out, attention)

        _, (step_logits, attention) = jax.lax.scan(step, state, target_in.T)
        return logits, step_logits.swapaxes(0, 1), attention.swapaxes(0, 1)

    logits, step_logits, attention = run(params, SOURCE, TARGET_IN)
    assert logits.shape == (2, 5, 9)
    np.testing.assert_allclose(step_logits, logits, rtol=1e-4, atol=1e-5)
    assert attention.shape == (2, 5, 6)  # [B, T, S]
    np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(attention[0, :, 4:], 0.0)  # padded source positions


def test_transformer_padded_source_positions_change_nothing(transformer):
    model, params = transformer
    source = SOURCE.at[1, 4:].set(0)  # both rows: 4 symbols, then padding
    padded, trimmed = jax.jit(
        lambda v, s: [model.apply(v, x, TARGET_IN, train=False) for x in (s, s[:, :4])]
    )({"params": params}, source)
    np.testing.assert_allclose(padded, trimmed, rtol=1e-5, atol=1e-6)


def test_transformer_configuration_errors():
    source = jax.ShapeDtypeStruct((1, 6), jnp.int32)
    learned = get_model("transformer", positions="learned", max_len=5, **TINY_TRANSFORMER)
    with pytest.raises(ValueError, match="source length 6 exceeds max_len 5"):
        _count(learned, source, source, train=False)
    with pytest.raises(ConfigError, match="valid choices: relu, gelu"):
        _count(
            get_model("transformer", activation="tanh", **TINY_TRANSFORMER),
            source,
            source,
            train=False,
        )
    with pytest.raises(ConfigError, match="model.vocab_size must be > 0"):
        _count(get_model("transformer"), source, source, train=False)


def test_transformer_decoder_output_at_t_does_not_depend_on_inputs_after_t():
    model = get_model(
        "transformer", positions="relative", norm_first=True, dropout=0.0, **TINY_TRANSFORMER
    )
    variables = {"params": _filled(model, SOURCE, TARGET_IN, train=False)}

    @jax.jit
    def jacobian(variables, embedded):
        memory = model.apply(variables, SOURCE, method="encode")
        decode = lambda e: model.apply(variables, e, memory, SOURCE, method="decode_embedded")  # noqa: E731
        return jax.jacrev(decode)(embedded)  # [B, T, V, B, S, D]

    embedded = jnp.asarray(np.random.default_rng(1).normal(size=(2, 5, 8)), jnp.float32)
    jac = jacobian(variables, embedded)
    for t in range(5):
        np.testing.assert_array_equal(jac[:, t, :, :, t + 1 :], 0.0)
        assert np.abs(jac[0, t, :, 0, t]).sum() > 0


def _layer_norm(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


@pytest.mark.parametrize("norm_first", [True, False])
def test_pre_ln_keeps_the_residual_stream_and_post_ln_normalizes_it(norm_first):
    block = TransformerBlock(features=8, num_heads=2, mlp_dim=16, norm_first=norm_first)
    x = jnp.asarray(3.0 + 2.0 * np.random.default_rng(0).normal(size=(2, 5, 8)), jnp.float32)
    params = _filled(block, x)
    # Zero branches (all but the norm scales zero): pre-LN is the identity, post-LN the norm.
    zero = jax.tree_util.tree_map_with_path(
        lambda path, p: jnp.ones_like(p) if path[-1].key == "scale" else jnp.zeros_like(p),
        params,
    )
    apply = jax.jit(lambda params: block.apply({"params": params}, x)[0])
    out = apply(zero)
    expected = np.asarray(x) if norm_first else _layer_norm(_layer_norm(np.asarray(x)))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # Random branches: post-LN output rows stay normalized (unit scale, zero bias).
    out = apply(jax.tree_util.tree_map_with_path(lambda path, p: zero_or(p, path), params))
    if not norm_first:
        np.testing.assert_allclose(np.mean(out, -1), 0.0, atol=1e-5)
        np.testing.assert_allclose(np.var(out, -1), 1.0, rtol=1e-3)
    else:
        assert np.abs(np.mean(out, -1)).max() > 0.5  # the residual stream keeps its offset


def zero_or(p: jax.Array, path: tuple) -> jax.Array:
    """Unit scale and zero bias for the norms (norm1/2), the random values elsewhere."""
    if path[-2].key.startswith("norm"):
        return jnp.ones_like(p) if path[-1].key == "scale" else jnp.zeros_like(p)
    return p


def test_block_dropout_only_at_train_time():
    noisy = TransformerBlock(features=8, num_heads=2, mlp_dim=16, dropout=0.5)
    plain = TransformerBlock(features=8, num_heads=2, mlp_dim=16, dropout=0.0)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 4, 8)), jnp.float32)
    variables = {"params": _filled(plain, x)}

    @jax.jit
    def outputs(variables, x):
        train = [
            noisy.apply(variables, x, train=True, rngs={"dropout": jax.random.key(i)})[0]
            for i in (1, 2)
        ]
        return noisy.apply(variables, x, train=False)[0], plain.apply(variables, x)[0], *train

    evaluated, reference, a, b = outputs(variables, x)
    np.testing.assert_allclose(evaluated, reference, rtol=1e-6)
    assert not np.allclose(a, b)
