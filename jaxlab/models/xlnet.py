"""XLNet (Yang et al. 2019) at small scale: permutation language modelling with two-stream
self-attention.

For a factorization order z of the positions (given as `rank` [B, T]: rank[t] is the place
of position t in the order), the model predicts each token from the tokens before it in the
order. Two streams run through the same layers (shared weights):

- the content stream h_t (initialised with the token embedding plus the position
  embedding) attends to the positions j with rank[j] <= rank[t]: it sees its own token;
- the query stream g_t (initialised with a learned vector w plus the position embedding of
  t: it knows where it is, not what is there) attends to the content stream at the
  positions j with rank[j] < rank[t].

Each layer is post-LN: s = LN(s + Attn(q from s, keys and values from h, mask)), then
s = LN(s + FF(s)), for s = h (content mask) and s = g (query mask). A query row with no
visible key (the first position of the order) gets a zero attention output. The logits
are read from the query stream: `logits[:, t]` is the distribution of the token at t given
the tokens before it in the order, so the output at t does not depend on the token at t
nor on any token after it in the order (tests/models/test_lm_zoo.py checks that the
gradient is exactly zero).

Simplifications at this scale (documented deviations from the paper): absolute learned
position embeddings instead of Transformer-XL's relative encodings and memory, and no
segment recurrence. The attention is flax's `MultiHeadDotProductAttention`, one module
called twice per layer (queries from h or g, keys and values from h), so the two streams
share its weights.

Interface (the `permutation_lm` task's, not contract 1): `__call__(tokens, rank=None, *,
train) -> logits f32 [B, T, V]`; `rank` None is the identity order (left to right: the
query stream is then a causal LM whose output at t predicts the token at t).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class TwoStreamLayer(nn.Module):
    """One XLNet layer applied to both streams with shared weights (see the module doc)."""

    num_heads: int
    head_dim: int
    d_inner: int
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        h: jax.Array,
        g: jax.Array,
        content_mask: jax.Array,
        query_mask: jax.Array,
        *,
        train: bool,
    ) -> tuple[jax.Array, jax.Array]:
        d = h.shape[-1]
        # One flax attention module called for both streams: the streams share its weights.
        attn = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            qkv_features=self.num_heads * self.head_dim,
            out_features=d,
            dtype=self.dtype,
            name="attn",
        )
        ln_attn = nn.LayerNorm(dtype=self.dtype, name="ln_attn")
        ff_in = nn.Dense(self.d_inner, dtype=self.dtype, name="ff_in")
        ff_out = nn.Dense(d, dtype=self.dtype, name="ff_out")
        ln_ff = nn.LayerNorm(dtype=self.dtype, name="ln_ff")
        drop = nn.Dropout(self.dropout)

        def stream(s: jax.Array, mask: jax.Array) -> jax.Array:
            attended = attn(s, h, mask=mask[:, None], deterministic=True)
            # A row that sees nothing (the first position of the order): zero output, not
            # flax's uniform average over all keys (its own token among them).
            attended = attended * jnp.any(mask, axis=-1, keepdims=True).astype(attended.dtype)
            s = ln_attn(s + drop(attended, deterministic=not train))
            f = ff_out(nn.gelu(ff_in(s)))
            return ln_ff(s + drop(f, deterministic=not train))

        return stream(h, content_mask), stream(g, query_mask)


class XLNet(nn.Module):
    """Small XLNet for permutation language modelling (see the module docstring).

    Attributes:
      vocab_size: token ids (filled by the task from the dataset).
      d_model, num_heads, head_dim, d_inner, depth: sizes.
      max_len: positions with an embedding.
      dropout: on embeddings, attention outputs and FF outputs (train only).
    """

    vocab_size: int = 0
    d_model: int = 64
    num_heads: int = 4
    head_dim: int = 16
    d_inner: int = 256
    depth: int = 2
    max_len: int = 512
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, tokens: jax.Array, rank: jax.Array | None = None, *, train: bool
    ) -> jax.Array:
        if self.vocab_size <= 0:
            raise ValueError(f"xlnet needs vocab_size > 0, got {self.vocab_size}")
        b, t = tokens.shape
        if t > self.max_len:
            raise ValueError(f"sequence length {t} exceeds xlnet max_len {self.max_len}")
        if rank is None:
            rank = jnp.broadcast_to(jnp.arange(t), (b, t))
        init = nn.initializers.normal(0.02)
        pos = self.param("pos_embed", init, (self.max_len, self.d_model))[:t].astype(self.dtype)
        w = self.param("query_embed", init, (self.d_model,)).astype(self.dtype)
        embed = nn.Embed(self.vocab_size, self.d_model, embedding_init=init, dtype=self.dtype)
        drop = nn.Dropout(self.dropout)
        h = drop(embed(tokens) + pos, deterministic=not train)
        g = drop(jnp.broadcast_to(w + pos, h.shape), deterministic=not train)
        content_mask = rank[:, None, :] <= rank[:, :, None]  # [B, query, key]
        query_mask = rank[:, None, :] < rank[:, :, None]
        for i in range(self.depth):
            h, g = TwoStreamLayer(
                self.num_heads,
                self.head_dim,
                self.d_inner,
                self.dropout,
                self.dtype,
                name=f"layer_{i}",
            )(h, g, content_mask, query_mask, train=train)
        return nn.Dense(self.vocab_size, dtype=self.dtype, name="head")(g).astype(jnp.float32)
