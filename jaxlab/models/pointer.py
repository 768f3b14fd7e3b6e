"""Pointer network (`pointer_net`; Vinyals, Fortunato and Jaitly 2015).

An LSTM encoder reads the N inputs (each a vector, here a number, embedded by a Dense
layer); an LSTM decoder starts from the encoder's final state and at step i reads the
embedding of the input it pointed to at step i - 1 (a learned start vector at step 0). Its
output distribution is content-based attention over the input positions:

    u_ij = v . tanh(W_1 e_j + W_2 d_i),   p(C_i = j | C_<i, P) = softmax_j(u_ij)

so the "vocabulary" is the N input positions. `__call__` is teacher forced (the decoder
reads the inputs at the target pointers) under `nn.scan`; `greedy` decodes N steps, each
reading the arg-max position's input (flax's `nn.OptimizedLSTMCell`, lifted by `nn.scan`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


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


def _greedy(step: PointerStep, carry: Any, _: Any, keys: jax.Array, embedded: jax.Array):
    carry, x = carry
    carry, logits = step(carry, x, keys)
    pointer = jnp.argmax(logits, -1)
    x = jnp.take_along_axis(embedded, pointer[:, None, None], axis=1)[:, 0]
    return (carry, x), (logits, pointer.astype(jnp.int32))


class PointerNet(nn.Module):
    """Pointer network over `values` float32 [B, N] (or [B, N, D]).

    Attributes: hidden (LSTM and attention width), dtype.
    """

    hidden: int = 128
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
        return logits

    def greedy(self, values: jax.Array, length: int) -> tuple[jax.Array, jax.Array]:
        """(pointers int32 [B, length], logits f32 [B, length, N]) by greedy decoding."""
        carry, embedded, keys = self._encode(values)
        batch = embedded.shape[0]
        start = jnp.broadcast_to(self.start, (batch, self.hidden)).astype(embedded.dtype)
        scan = nn.scan(
            _greedy,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=(nn.broadcast, nn.broadcast, nn.broadcast),
            out_axes=1,
            length=length,
        )
        _, (logits, pointers) = scan(self.step, (carry, start), None, keys, embedded)
        return pointers, logits
