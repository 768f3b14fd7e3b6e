"""The encoder-decoder Transformer (Vaswani et al., 2017, "Attention Is All You Need") for
seq2seq, and the transformer block that GPT shares.

Block: self-attention, then (decoder) cross-attention over the encoder output, then a
position-wise MLP (Dense - ReLU or GELU - Dense), each a residual sub-layer with dropout on
its output. `norm_first=False` is the paper's post-LN, `LayerNorm(x + Dropout(f(x)))`, whose
every sub-layer output is normalized; `norm_first=True` is pre-LN (GPT-2, Xiong et al.,
2020), `x + Dropout(f(LayerNorm(x)))`, with a final LayerNorm after the stack.

Model (contract 3, seq2seq): source and target share one vocabulary; token embeddings are
scaled by sqrt(d_model) and, with `share_embeddings`, one matrix embeds the source and the
target and is the output projection (section 3.4). Positions: `sinusoidal` (section 3.5),
`learned` (one table per side, `max_len` rows), or `relative` (Shaw et al., 2018: clipped
relative keys in every self-attention, `max_relative_distance`; no absolute positions).
The encoder masks padded source keys (PAD = 0) in self- and cross-attention; the decoder's
self-attention is causal. Decoding keeps a key/value cache per decoder layer and the
cross-attention keys and values of the memory, computed once in `init_decode_state`.
Dropout applies to the embeddings, every sub-layer output and the attention weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import check_choice, check_positive
from jaxlab.nn.activations import get_activation
from jaxlab.nn.attention import KVCache, MultiHeadAttention, causal_mask, padding_mask
from jaxlab.nn.initializers import Initializer
from jaxlab.nn.positional import POSITIONS, LearnedPositions, sinusoidal_encoding

ACTIVATIONS = ("relu", "gelu")


class TransformerBlock(nn.Module):
    """A transformer layer of width `features` (see the module doc): parameters
    `self_attention`, `norm1`, (with `cross_attention`) `cross_attn`, `norm_cross`, then the
    MLP `fc1`, `fc2` and `norm2`."""

    features: int
    num_heads: int
    mlp_dim: int
    dropout: float = 0.0
    norm_first: bool = True
    activation: str = "gelu"
    cross_attention: bool = False
    use_bias: bool = True
    max_relative_distance: int = 0
    layer_norm_epsilon: float = 1e-5
    kernel_init: Initializer = nn.initializers.xavier_uniform()
    out_kernel_init: Initializer | None = None
    dtype: jnp.dtype = jnp.float32

    def setup(self) -> None:
        check_choice("transformer activation", self.activation, ACTIVATIONS)
        attention = dict(
            num_heads=self.num_heads,
            features=self.features,
            dropout=self.dropout,
            use_bias=self.use_bias,
            kernel_init=self.kernel_init,
            out_kernel_init=self.out_kernel_init,
            dtype=self.dtype,
        )
        norm = dict(epsilon=self.layer_norm_epsilon, use_bias=self.use_bias, dtype=self.dtype)
        self.self_attention = MultiHeadAttention(
            max_relative_distance=self.max_relative_distance, **attention
        )
        self.norm1 = nn.LayerNorm(**norm)
        if self.cross_attention:
            self.cross_attn = MultiHeadAttention(**attention)
            self.norm_cross = nn.LayerNorm(**norm)
        self.fc1 = nn.Dense(
            self.mlp_dim, use_bias=self.use_bias, kernel_init=self.kernel_init, dtype=self.dtype
        )
        self.fc2 = nn.Dense(
            self.features,
            use_bias=self.use_bias,
            kernel_init=self.out_kernel_init or self.kernel_init,
            dtype=self.dtype,
        )
        self.norm2 = nn.LayerNorm(**norm)
        self.drop = nn.Dropout(self.dropout)

    def _sublayer(
        self,
        x: jax.Array,
        branch: Callable[[jax.Array], tuple[jax.Array, Any]],
        norm: nn.Module,
        train: bool,
    ) -> tuple[jax.Array, Any]:
        if self.norm_first:
            y, aux = branch(norm(x))
            return x + self.drop(y, deterministic=not train), aux
        y, aux = branch(x)
        return norm(x + self.drop(y, deterministic=not train)), aux

    def project_memory(self, memory: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The cross-attention keys and values of the encoder output `memory` `[B, S, D]`."""
        return self.cross_attn.project_kv(memory)

    def init_cache(self, batch_size: int, max_length: int) -> KVCache:
        """An empty self-attention cache of `max_length` positions."""
        return self.self_attention.init_cache(batch_size, max_length)

    def __call__(
        self,
        x: jax.Array,
        *,
        mask: jax.Array | None = None,
        cache: KVCache | None = None,
        memory: jax.Array | None = None,
        memory_kv: tuple[jax.Array, jax.Array] | None = None,
        memory_mask: jax.Array | None = None,
        train: bool = False,
    ) -> tuple[jax.Array, jax.Array | None, KVCache | None]:
        """The layer on `x` `[B, T, D]`: `mask` for self-attention (and `cache` while decoding,
        see MultiHeadAttention); with cross-attention, the encoder output `memory` or its
        precomputed `memory_kv`, and `memory_mask`. Returns the output, the cross-attention
        weights `[B, heads, T, S]` (None without cross-attention) and the new cache."""

        def self_attend(y: jax.Array) -> tuple[jax.Array, KVCache | None]:
            out, _, new_cache = self.self_attention(y, mask=mask, cache=cache, train=train)
            return out, new_cache

        x, cache = self._sublayer(x, self_attend, self.norm1, train)
        weights = None
        if self.cross_attention:

            def cross_attend(y: jax.Array) -> tuple[jax.Array, jax.Array]:
                out, w, _ = self.cross_attn(y, memory, kv=memory_kv, mask=memory_mask, train=train)
                return out, w

            x, weights = self._sublayer(x, cross_attend, self.norm_cross, train)

        def mlp(y: jax.Array) -> tuple[jax.Array, None]:
            return self.fc2(get_activation(self.activation)(self.fc1(y))), None

        x, _ = self._sublayer(x, mlp, self.norm2, train)
        return x, weights, cache


class Transformer(nn.Module):
    """The encoder-decoder Transformer (see the module doc); defaults are the paper's base
    model (6 + 6 layers, d_model 512, 8 heads, MLP 2048, dropout 0.1, post-LN, sinusoidal
    positions, shared embeddings). `vocab_size` comes from the dataset (0 = unset)."""

    vocab_size: int = 0
    d_model: int = 512
    num_heads: int = 8
    num_layers: int = 6
    mlp_dim: int = 2048
    dropout: float = 0.1
    positions: str = "sinusoidal"
    max_relative_distance: int = 16
    norm_first: bool = False
    activation: str = "relu"
    max_len: int = 256
    share_embeddings: bool = True
    dtype: jnp.dtype = jnp.float32

    def setup(self) -> None:
        check_positive("model.vocab_size", self.vocab_size, integer=True)
        check_choice("transformer positions", self.positions, POSITIONS)
        embed = dict(
            num_embeddings=self.vocab_size,
            features=self.d_model,
            embedding_init=nn.initializers.normal(self.d_model**-0.5),
            dtype=self.dtype,
        )
        if self.share_embeddings:
            self.embed = nn.Embed(**embed)
        else:
            self.source_embed = nn.Embed(**embed)
            self.target_embed = nn.Embed(**embed)
            self.head = nn.Dense(self.vocab_size, dtype=self.dtype)
        if self.positions == "learned":
            self.source_positions = LearnedPositions(self.max_len, self.d_model, self.dtype)
            self.target_positions = LearnedPositions(self.max_len, self.d_model, self.dtype)
        block = dict(
            features=self.d_model,
            num_heads=self.num_heads,
            mlp_dim=self.mlp_dim,
            dropout=self.dropout,
            norm_first=self.norm_first,
            activation=self.activation,
            max_relative_distance=self.max_relative_distance if self.positions == "relative" else 0,
            dtype=self.dtype,
        )
        self.encoder = [TransformerBlock(**block) for _ in range(self.num_layers)]
        self.decoder = [
            TransformerBlock(**block, cross_attention=True) for _ in range(self.num_layers)
        ]
        if self.norm_first:
            self.encoder_norm = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype)
            self.decoder_norm = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype)
        self.drop = nn.Dropout(self.dropout)

    def _check_length(self, length: int, what: str) -> None:
        if self.positions == "learned" and length > self.max_len:
            raise ValueError(
                f"transformer with learned positions: {what} {length} exceeds max_len "
                f"{self.max_len}"
            )

    def _lookup(self, tokens: jax.Array, side: str) -> jax.Array:
        table = self.embed if self.share_embeddings else getattr(self, f"{side}_embed")
        return table(tokens)

    def _add_positions(
        self, x: jax.Array, positions: jax.Array, side: str, train: bool
    ) -> jax.Array:
        x = x * math.sqrt(self.d_model)
        if self.positions == "sinusoidal":
            x = x + sinusoidal_encoding(positions, self.d_model).astype(x.dtype)
        elif self.positions == "learned":
            x = x + getattr(self, f"{side}_positions")(positions)
        return self.drop(x, deterministic=not train)

    def _logits(self, y: jax.Array) -> jax.Array:
        if self.norm_first:
            y = self.decoder_norm(y)
        head = self.embed.attend if self.share_embeddings else self.head
        return head(y).astype(jnp.float32)

    def encode(self, source: jax.Array, *, train: bool = False) -> jax.Array:
        """The encoder output `[B, S, d_model]` of `source` tokens `[B, S]` (the memory)."""
        self._check_length(source.shape[1], "source length")
        positions = jnp.arange(source.shape[1])
        x = self._add_positions(self._lookup(source, "source"), positions, "source", train)
        mask = padding_mask(source)
        for block in self.encoder:
            x, _, _ = block(x, mask=mask, train=train)
        return self.encoder_norm(x) if self.norm_first else x

    def decode_embedded(
        self, embedded: jax.Array, memory: jax.Array, source: jax.Array, *, train: bool = False
    ) -> jax.Array:
        """Teacher-forced logits `[B, T, V]` from the target tokens' embedding vectors
        `[B, T, d_model]` (rows of the embedding table, before the sqrt(d_model) scale): the
        decoder as a function of continuous inputs (tests differentiate it)."""
        self._check_length(embedded.shape[1], "target length")
        positions = jnp.arange(embedded.shape[1])
        y = self._add_positions(embedded, positions, "target", train)
        mask, memory_mask = causal_mask(y.shape[1]), padding_mask(source)
        for block in self.decoder:
            y, _, _ = block(y, mask=mask, memory=memory, memory_mask=memory_mask, train=train)
        return self._logits(y)

    def decode(
        self, target_in: jax.Array, memory: jax.Array, source: jax.Array, *, train: bool = False
    ) -> jax.Array:
        """Teacher-forced logits `[B, T, V]` of decoder inputs `target_in` given the memory."""
        embedded = self._lookup(target_in, "target")
        return self.decode_embedded(embedded, memory, source, train=train)

    def __call__(self, source: jax.Array, target_in: jax.Array, *, train: bool) -> jax.Array:
        """Teacher-forced logits `[B, T, V]` (float32) of `target_in` given `source`."""
        return self.decode(target_in, self.encode(source, train=train), source, train=train)

    def init_decode_state(
        self, memory: jax.Array, source: jax.Array, max_length: int
    ) -> dict[str, Any]:
        """Decoding state for up to `max_length` target steps: `self`, one empty `KVCache` per
        decoder layer, and `cross`, each layer's cross-attention keys and values of `memory`
        (every leaf batch-first)."""
        del source  # the padding mask is rebuilt from it at each step
        self._check_length(max_length, "max_length")
        batch_size = memory.shape[0]
        return {
            "self": tuple(block.init_cache(batch_size, max_length) for block in self.decoder),
            "cross": tuple(block.project_memory(memory) for block in self.decoder),
        }

    def decode_step(
        self, token: jax.Array, state: dict[str, Any], memory: jax.Array, source: jax.Array
    ) -> tuple[jax.Array, dict[str, Any], jax.Array]:
        """One decoder step (no dropout): the logits `[B, V]` after `token` `[B]`, the state
        with it appended, and the last layer's cross-attention weights averaged over heads
        `[B, S]`."""
        del memory  # its keys and values are in the state
        positions = state["self"][0].index[:, None]  # [B, 1]
        y = self._add_positions(self._lookup(token[:, None], "target"), positions, "target", False)
        memory_mask = padding_mask(source)
        caches, weights = [], None
        for block, cache, kv in zip(self.decoder, state["self"], state["cross"], strict=True):
            y, weights, cache = block(y, cache=cache, memory_kv=kv, memory_mask=memory_mask)
            caches.append(cache)
        state = {"self": tuple(caches), "cross": state["cross"]}
        return self._logits(y)[:, 0], state, jnp.mean(weights, axis=1)[:, 0]
