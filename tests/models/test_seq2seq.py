"""seq2seq_rnn and pointer_net: stepping `decode_step` equals the teacher-forced `__call__`
for every attention type; attention weights are a distribution that is zero on padding;
extra source padding changes nothing (the encoder skips PAD steps)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.data.text import PAD
from jaxlab.models import get_model
from jaxlab.models.pointer import MASKED

SOURCE = jnp.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 3]], jnp.int32)
TARGET_IN = jnp.array([[1, 5, 4, 3], [1, 3, 9, 8]], jnp.int32)
VARIANTS = {
    "none_gru": dict(attention="none", cell="gru"),
    "luong_dot": dict(attention="luong", score="dot"),
    "luong_general_bidir": dict(attention="luong", score="general", bidirectional=True),
    "luong_concat_gru_nofeed": dict(
        attention="luong", score="concat", cell="gru", input_feeding=False
    ),
    "bahdanau": dict(attention="bahdanau"),
}


def _teacher_and_stepped(model, variables):
    """(logits, attention) of `__call__` and of `decode_step` stepped over the teacher
    tokens (under `lax.scan`, one compiled function)."""

    def run(variables):
        logits, weights = model.apply(
            variables, SOURCE, TARGET_IN, train=False, method="forward_with_attention"
        )
        memory = model.apply(variables, SOURCE, method="encode")
        state = model.apply(variables, memory, SOURCE, 4, method="init_decode_state")

        def step(state, token):
            out, state, attention = model.apply(
                variables, token, state, memory, SOURCE, method="decode_step"
            )
            if attention is None:
                attention = jnp.full(SOURCE.shape, -1.0)
            return state, (out, attention)

        _, (stepped, attention) = jax.lax.scan(step, state, TARGET_IN.T)
        longer = jnp.pad(SOURCE, ((0, 0), (0, 3)))  # more padding: the same logits
        padded = model.apply(variables, longer, TARGET_IN, train=False)
        return logits, weights, stepped.swapaxes(0, 1), attention.swapaxes(0, 1), padded

    return jax.jit(run)(variables)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_decode_step_equals_teacher_forcing_and_attention_is_masked(variant):
    model = get_model("seq2seq_rnn", vocab_size=10, embed_dim=8, hidden=8, **VARIANTS[variant])
    variables = jax.jit(lambda: model.init(jax.random.key(0), SOURCE, TARGET_IN, train=False))()
    logits, weights, stepped, attention, padded = _teacher_and_stepped(model, variables)
    assert logits.shape == (2, 4, 10) and logits.dtype == jnp.float32
    np.testing.assert_allclose(stepped, logits, atol=1e-5)
    np.testing.assert_allclose(padded, logits, atol=1e-5)  # PAD steps change nothing
    if VARIANTS[variant]["attention"] == "none":
        assert np.all(np.asarray(attention) == -1.0)  # decode_step returned None
        return
    np.testing.assert_allclose(attention, weights, atol=1e-6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    pad = np.broadcast_to((SOURCE == PAD)[:, None, :], weights.shape)
    assert np.all(np.asarray(weights)[pad] == 0.0)
    assert np.all(np.asarray(weights)[~pad] > 0.0)


def test_pointer_net_greedy_matches_teacher_forcing_on_its_own_pointers():
    """Both with and without `mask_chosen` (same parameters, one compile)."""
    models = [get_model("pointer_net", hidden=8, mask_chosen=m) for m in (False, True)]
    values = jax.random.uniform(jax.random.key(2), (3, 5))

    @jax.jit
    def run():
        zeros = jnp.zeros((3, 5), jnp.int32)
        variables = models[0].init(jax.random.key(3), values, zeros, train=False)
        out = []
        for model in models:
            pointers, greedy_logits = model.apply(variables, values, 5, method="greedy")
            forced = model.apply(variables, values, pointers, train=False)
            out.append((pointers, greedy_logits, forced))
        return out

    for mask_chosen, (pointers, greedy_logits, forced) in zip((False, True), run(), strict=True):
        assert pointers.shape == (3, 5) and greedy_logits.shape == (3, 5, 5)
        np.testing.assert_allclose(forced, greedy_logits, atol=1e-5)
        np.testing.assert_array_equal(jnp.argmax(forced, -1), pointers)
        masked = np.asarray(forced) == MASKED
        if not mask_chosen:
            assert not masked.any()
            continue
        # a permutation; step t masks exactly the t positions chosen before it
        np.testing.assert_array_equal(np.sort(pointers, 1), np.broadcast_to(np.arange(5), (3, 5)))
        np.testing.assert_array_equal(masked.sum(-1), np.broadcast_to(np.arange(5), (3, 5)))
        for t in range(5):
            assert not masked[np.arange(3), t, np.asarray(pointers)[:, t]].any()
