"""A decoder-only GPT (Radford et al., 2018/2019) as nanoGPT builds it: token embeddings plus
learned position embeddings (`block_size` of them), dropout, pre-LN blocks (causal
self-attention, GELU MLP of `mlp_ratio * d_model`), a final LayerNorm and a linear head
without bias, tied to the token embedding with `tie_weights`. `bias=False` drops the biases
of every Dense and LayerNorm. Initialization as GPT-2: normal(0.02) everywhere, the residual
output projections normal(0.02 / sqrt(2 * num_layers)), zero biases; LayerNorm epsilon 1e-5.

Parameters (nanoGPT's count, with biases and tied weights):
`V*d + block_size*d + num_layers*(12*d^2 + 13*d) + 2*d` (4 layers, 4 heads, d = 128,
context 64, V = 65, nanoGPT's CPU shakespeare_char setting: 809,856; GPT-2 small: 124,439,808).

`positions` may also be `sinusoidal` (no parameters) or `relative` (Shaw et al.'s clipped
relative keys in every layer, `max_relative_distance`); learned positions limit sequences to
`block_size`, the others do not.

Language-model contract (contract 1): `__call__(tokens, carry=None, *, train)` returns
`(logits, None)` (GPT carries nothing between windows); `initial_carry` is None;
`init_decode_state(batch_size, max_length)` gives one empty `KVCache` per layer (keys, values
of `max_length` positions and the per-row position counter) and `decode(tokens, state)` runs
t >= 1 new tokens against it, so generation compiles two shapes: the prompt, then one token.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import check_choice, check_positive
from jaxlab.models.transformer import TransformerBlock
from jaxlab.nn.attention import KVCache, causal_mask
from jaxlab.nn.positional import POSITIONS, LearnedPositions, sinusoidal_encoding


class GPT(nn.Module):
    """Decoder-only transformer LM (see the module doc); defaults are the nanoGPT CPU
    shakespeare_char model. `vocab_size` comes from the dataset (0 = unset)."""

    vocab_size: int = 0
    num_layers: int = 4
    num_heads: int = 4
    d_model: int = 128
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    block_size: int = 64
    bias: bool = True
    tie_weights: bool = True
    positions: str = "learned"
    max_relative_distance: int = 16
    dtype: jnp.dtype = jnp.float32

    def setup(self) -> None:
        check_positive("model.vocab_size", self.vocab_size, integer=True)
        check_choice("gpt positions", self.positions, POSITIONS)
        init = nn.initializers.normal(0.02)
        self.token_embed = nn.Embed(
            self.vocab_size, self.d_model, embedding_init=init, dtype=self.dtype
        )
        if self.positions == "learned":
            self.position_embed = LearnedPositions(self.block_size, self.d_model, self.dtype)
        self.blocks = [
            TransformerBlock(
                features=self.d_model,
                num_heads=self.num_heads,
                mlp_dim=int(self.mlp_ratio * self.d_model),
                dropout=self.dropout,
                norm_first=True,
                activation="gelu",
                use_bias=self.bias,
                max_relative_distance=self.max_relative_distance
                if self.positions == "relative"
                else 0,
                kernel_init=init,
                out_kernel_init=nn.initializers.normal(0.02 / math.sqrt(2 * self.num_layers)),
                dtype=self.dtype,
            )
            for _ in range(self.num_layers)
        ]
        self.final_norm = nn.LayerNorm(epsilon=1e-5, use_bias=self.bias, dtype=self.dtype)
        if not self.tie_weights:
            self.head = nn.Dense(
                self.vocab_size, use_bias=False, kernel_init=init, dtype=self.dtype
            )
        self.drop = nn.Dropout(self.dropout)

    def _check_length(self, length: int, what: str) -> None:
        if self.positions == "learned" and length > self.block_size:
            raise ValueError(
                f"gpt with learned positions: {what} {length} exceeds block_size {self.block_size}"
            )

    def _inputs(self, embedded: jax.Array, positions: jax.Array, train: bool) -> jax.Array:
        if self.positions == "learned":
            embedded = embedded + self.position_embed(positions)
        elif self.positions == "sinusoidal":
            embedded = embedded + sinusoidal_encoding(positions, self.d_model).astype(
                embedded.dtype
            )
        return self.drop(embedded, deterministic=not train)

    def _logits(self, x: jax.Array) -> jax.Array:
        x = self.final_norm(x)
        head = self.token_embed.attend if self.tie_weights else self.head
        return head(x).astype(jnp.float32)

    def logits_from_embeddings(self, embedded: jax.Array, *, train: bool = False) -> jax.Array:
        """Logits `[B, T, V]` from token embedding vectors `[B, T, d_model]` (rows of the
        embedding table): the model as a function of continuous inputs."""
        length = embedded.shape[1]
        self._check_length(length, "sequence length")
        x = self._inputs(embedded, jnp.arange(length), train)
        mask = causal_mask(length)
        for block in self.blocks:
            x, _, _ = block(x, mask=mask, train=train)
        return self._logits(x)

    def __call__(
        self, tokens: jax.Array, carry: None = None, *, train: bool
    ) -> tuple[jax.Array, None]:
        """`(logits f32[B, T, V], None)` for `tokens` int32 `[B, T]`; `carry` is ignored."""
        del carry
        return self.logits_from_embeddings(self.token_embed(tokens), train=train), None

    def initial_carry(self, batch_size: int) -> None:
        """GPT carries no state between windows: None."""
        del batch_size

    def init_decode_state(self, batch_size: int, max_length: int) -> tuple[KVCache, ...]:
        """One empty `KVCache` of `max_length` positions per layer."""
        self._check_length(max_length, "max_length")
        return tuple(block.init_cache(batch_size, max_length) for block in self.blocks)

    def decode(
        self, tokens: jax.Array, state: tuple[KVCache, ...]
    ) -> tuple[jax.Array, tuple[KVCache, ...]]:
        """Logits `[B, t, V]` of t >= 1 new `tokens` `[B, t]` following those in `state`
        (no dropout), and the state with them appended."""
        positions = state[0].index[:, None] + jnp.arange(tokens.shape[1])  # [B, t]
        x = self._inputs(self.token_embed(tokens), positions, False)
        caches = []
        for block, cache in zip(self.blocks, state, strict=True):
            x, _, cache = block(x, cache=cache)
            caches.append(cache)
        return self._logits(x), tuple(caches)
