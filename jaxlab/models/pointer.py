"""Pointer network (`pointer_net`; Vinyals, Fortunato and Jaitly 2015).

An LSTM encoder reads the N inputs (each a vector, here a number, embedded by a Dense
layer); an LSTM decoder starts from the encoder's final state and at step i reads the
embedding of the input it pointed to at step i - 1 (a learned start vector at step 0). Its
output distribution is content-based attention over the input positions:

    u_ij = v . tanh(W_1 e_j + W_2 d_i),   p(C_i = j | C_<i, P) = softmax_j(u_ij)

so the "vocabulary" is the N input positions. `__call__` is teacher forced (the decoder
reads the inputs at the target pointers) under `nn.scan`; `greedy` decodes N steps, each
reading the arg-max position's input (flax's `nn.OptimizedLSTMCell`, lifted by `nn.scan`).

`mask_chosen=True` sets the logits of the positions already pointed to (at steps < i) to
`MASKED` (a large negative number), so the output is always a permutation. This is the
constraint of the task (sorting outputs each input exactly once), not knowledge of the
answer: the paper's model is unconstrained for sorting (it restricts TSP's beam search to
valid tours). On `sort_pointer` the unmasked net reached 98.3% per-pointer accuracy but
87.1% exact sequences; masked, 98.8% exact in under a third of the steps (the config's
docstring). The mask uses only the model's own previous pointers (teacher forced: the
target prefix; greedy: its own choices).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

MASKED = -1e9
"""The logit of an already-chosen position under `mask_chosen` (finite: no NaN in softmax)."""


class PointerStep(nn.Module):
    """One decoder step: (carry, input embedding) -> (carry, pointer logits [B, N])."""

    hidden: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry: Any, x: jax.Array, keys: jax.Array) -> tuple[Any, jax.Array]:
        carry, d = nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype, name="cell")(carry, x)
        query = nn.Dense(self.hidden, use_bias=False, dtype=self.dtype, name="W_2")(d)
        energy = jnp.tanh(keys + query[:, None, :])
        logits = nn.Dense(1, use_bias=False, dtype=self.dtype, name="v")(energy)[..., 0]
        return carry, logits.astype(jnp.float32)


def _teacher(step: PointerStep, carry: Any, xs: jax.Array, keys: jax.Array):
    return step(carry, xs, keys)


def _greedy(
    step: PointerStep, carry: Any, _: Any, keys: jax.Array, embedded: jax.Array, *, mask: bool
):
    carry, x, chosen = carry
    carry, logits = step(carry, x, keys)
    if mask:
        logits = jnp.where(chosen, MASKED, logits)
    pointer = jnp.argmax(logits, -1)
    chosen = chosen | (jnp.arange(logits.shape[-1]) == pointer[:, None])
    x = jnp.take_along_axis(embedded, pointer[:, None, None], axis=1)[:, 0]
    return (carry, x, chosen), (logits, pointer.astype(jnp.int32))


def chosen_before(pointers: jax.Array, n: int) -> jax.Array:
    """bool [B, T, N]: position j was pointed to at a step before t (`pointers` [B, T])."""
    one_hot = jax.nn.one_hot(pointers, n, dtype=jnp.int32)
    return (jnp.cumsum(one_hot, axis=1) - one_hot) > 0


class PointerNet(nn.Module):
    """Pointer network over `values` float32 [B, N] (or [B, N, D]).

    Attributes: hidden (LSTM and attention width), mask_chosen (already-pointed positions
    get the logit `MASKED`; see the module docstring), dtype.
    """

    hidden: int = 128
    mask_chosen: bool = False
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.embed = nn.Dense(self.hidden, dtype=self.dtype, name="embed")
        self.encoder = nn.RNN(
            nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype), return_carry=True
        )
        self.key_proj = nn.Dense(self.hidden, use_bias=False, dtype=self.dtype, name="W_1")
        self.start = self.param("start", nn.initializers.normal(1.0), (self.hidden,))
        self.step = PointerStep(self.hidden, self.dtype)

    def _encode(self, values: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        x = values[..., None] if values.ndim == 2 else values
        embedded = self.embed(x)
        carry, outputs = self.encoder(embedded)
        return carry, embedded, self.key_proj(outputs)

    def __call__(self, values: jax.Array, pointers: jax.Array, *, train: bool) -> jax.Array:
        """Teacher-forced pointer logits f32 [B, T, N] for the target `pointers` [B, T]."""
        del train
        carry, embedded, keys = self._encode(values)
        batch = embedded.shape[0]
        pointed = jnp.take_along_axis(embedded, pointers[:, :-1, None], axis=1)
        start = jnp.broadcast_to(self.start, (batch, 1, self.hidden)).astype(embedded.dtype)
        xs = jnp.concatenate([start, pointed], axis=1)
        scan = nn.scan(
            _teacher,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=(1, nn.broadcast),
            out_axes=1,
        )
        _, logits = scan(self.step, carry, xs, keys)
        if self.mask_chosen:
            logits = jnp.where(chosen_before(pointers, logits.shape[-1]), MASKED, logits)
        return logits

    def greedy(self, values: jax.Array, length: int) -> tuple[jax.Array, jax.Array]:
        """(pointers int32 [B, length], logits f32 [B, length, N]) by greedy decoding."""
        carry, embedded, keys = self._encode(values)
        batch = embedded.shape[0]
        start = jnp.broadcast_to(self.start, (batch, self.hidden)).astype(embedded.dtype)
        scan = nn.scan(
            functools.partial(_greedy, mask=self.mask_chosen),
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=(nn.broadcast, nn.broadcast, nn.broadcast),
            out_axes=1,
            length=length,
        )
        chosen = jnp.zeros(embedded.shape[:2], bool)
        _, (logits, pointers) = scan(self.step, (carry, start, chosen), None, keys, embedded)
        return pointers, logits
