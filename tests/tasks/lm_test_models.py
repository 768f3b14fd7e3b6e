"""Tiny models built to the sequence contracts (COMMON contract 1 and 2), registered under
test names, so the language-model and sequence-classification tasks are tested without the
zoo's own models. Importing this module registers them.

- `test_rnn_lm`: embedding, SimpleCell / GRUCell layers (flax cells under `nn.scan`), a
  dense head; the carry is the tuple of the layers' states; optionally a learned initial
  state.
- `test_attention_lm`: embedding plus learned positions, one causal single-head attention
  layer and a head; carries nothing across windows; `decode` keeps a key/value cache of
  `max_length` positions and a position counter.
- `test_sequence_classifier`: mean-pooled embeddings of the non-PAD tokens (or the mean of
  the feature vectors), a dense head.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab import models


def _scan(cell: type[nn.Module], features: int) -> nn.Module:
    return nn.scan(
        cell,
        variable_broadcast="params",
        split_rngs={"params": False},
        in_axes=1,
        out_axes=1,
    )(features=features)


class TinyRnnLM(nn.Module):
    """Recurrent layers (flax's SimpleCell or GRUCell under `nn.scan`) over embeddings, to
    contract 1; the carry is the tuple of the layers' states."""

    vocab_size: int = 0
    hidden: int = 8
    cells: tuple[str, ...] = ("gru",)
    learned_init: bool = False
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.embed = nn.Embed(self.vocab_size, self.hidden)
        kinds = {"simple": nn.SimpleCell, "gru": nn.GRUCell}
        self.layers = [_scan(kinds[c], self.hidden) for c in self.cells]
        self.head = nn.Dense(self.vocab_size)
        if self.learned_init:
            self.h0 = self.param("h0", nn.initializers.normal(0.5), (len(self.cells), self.hidden))

    def initial_carry(self, batch_size: int) -> tuple[jax.Array, ...]:
        shape = (batch_size, self.hidden)
        if self.learned_init:
            return tuple(jnp.broadcast_to(h, shape) for h in self.h0)
        return tuple(jnp.zeros(shape) for _ in self.cells)

    def __call__(self, tokens: jax.Array, carry=None, *, train: bool):
        if carry is None:
            carry = self.initial_carry(tokens.shape[0])
        x, states = self.embed(tokens), []
        for layer, h in zip(self.layers, carry, strict=True):
            h, x = layer(h, x)
            states.append(h)
        return self.head(x), tuple(states)

    def init_decode_state(self, batch_size: int, max_length: int):
        return self.initial_carry(batch_size)

    def decode(self, tokens: jax.Array, state):
        return self(tokens, state, train=False)


class TinyAttentionLM(nn.Module):
    """One causal single-head attention layer with a key/value cache, to contract 1."""

    vocab_size: int = 0
    width: int = 16
    block_size: int = 16
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.embed = nn.Embed(self.vocab_size, self.width)
        self.pos = self.param("pos", nn.initializers.normal(0.5), (self.block_size, self.width))
        self.qkv = nn.Dense(3 * self.width)
        self.out = nn.Dense(self.width)
        self.head = nn.Dense(self.vocab_size)

    def _layer(self, tokens, positions, keys, values, key_positions):
        """Logits of `tokens` at `positions`, attending to the keys/values (this window's
        or the cache's) at `key_positions` up to their own position."""
        x = self.embed(tokens) + self.pos[positions]
        q, k, v = jnp.split(self.qkv(x), 3, axis=-1)
        keys = k if keys is None else keys
        values = v if values is None else values
        scores = jnp.einsum("btd,bsd->bts", q, keys) / jnp.sqrt(self.width)
        allowed = key_positions[None, None, :] <= positions[None, :, None]
        weights = jax.nn.softmax(jnp.where(allowed, scores, -1e9), axis=-1)
        y = x + self.out(jnp.einsum("bts,bsd->btd", weights, values))
        return self.head(y), k, v

    def __call__(self, tokens: jax.Array, carry=None, *, train: bool):
        positions = jnp.arange(tokens.shape[1])
        logits, _, _ = self._layer(tokens, positions, None, None, positions)
        return logits, None

    def initial_carry(self, batch_size: int) -> None:
        return None

    def init_decode_state(self, batch_size: int, max_length: int):
        zeros = jnp.zeros((batch_size, max_length, self.width))
        return {"k": zeros, "v": zeros, "pos": jnp.zeros((), jnp.int32)}

    def decode(self, tokens: jax.Array, state):
        pos = state["pos"]
        positions = pos + jnp.arange(tokens.shape[1])
        x = self.embed(tokens) + self.pos[positions]
        _, k, v = jnp.split(self.qkv(x), 3, axis=-1)
        keys = jax.lax.dynamic_update_slice_in_dim(state["k"], k, pos, axis=1)
        values = jax.lax.dynamic_update_slice_in_dim(state["v"], v, pos, axis=1)
        key_positions = jnp.arange(keys.shape[1])
        logits, _, _ = self._layer(tokens, positions, keys, values, key_positions)
        return logits, {"k": keys, "v": values, "pos": pos + tokens.shape[1]}


class TinySequenceClassifier(nn.Module):
    """Mean-pooled token embeddings (PAD = 0 left out) or feature vectors, to contract 2."""

    num_classes: int = 2
    vocab_size: int = 0
    width: int = 8
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        if jnp.issubdtype(x.dtype, jnp.integer):
            mask = (x != 0)[..., None]
            e = nn.Embed(self.vocab_size, self.width)(x)
            pooled = jnp.sum(e * mask, 1) / jnp.maximum(jnp.sum(mask, 1), 1)
        else:
            pooled = x.reshape(x.shape[0], -1)
        h = nn.relu(nn.Dense(self.width)(pooled))
        return nn.Dense(self.num_classes)(h)


# Test registrations (jaxlab.models has no public register function: a test-only entry).
models._REGISTRY.setdefault("test_rnn_lm", TinyRnnLM)
models._REGISTRY.setdefault("test_attention_lm", TinyAttentionLM)
models._REGISTRY.setdefault("test_sequence_classifier", TinySequenceClassifier)
