"""Transformer-XL (Dai et al. 2019): a causal Transformer LM with segment-level recurrence
and relative positional encodings.

Recurrence: every layer n keeps a memory m^{n-1} of the last `mem_len` hidden states that
entered it (its inputs over the previous windows, under stop-gradient); a window's keys and
values are computed over [m^{n-1}; h^{n-1}], its queries over h^{n-1} only.

Relative attention (the paper's decomposition), per head, for query i and key j at distance
i - j (both indexed in the key sequence [memory; window]):

    A_ij = q_i.k_j  +  q_i.W_r R_{i-j}  +  u.k_j  +  v.W_r R_{i-j}
         =  (a)          (b)              (c)        (d)
         = (q_i + u).k_j  +  (q_i + v).W_r R_{i-j}

with R the sinusoid of a distance, W_r a per-layer projection and u, v learned global biases
(one per head, shared by the layers here: the paper's code shares them too). The position
term is computed for every query against the distances K-1, ..., 0 and aligned by the
relative shift (`rel_shift`: pad one zero column, reshape, drop a row), the paper's O(TK)
trick, tested against a direct gather. Scores are scaled by 1/sqrt(d_head); key j is seen
by query i when j <= i + M (causal) and its memory slot holds a state.

flax has no relative attention, hence this module; its projections are flax `DenseGeneral`s.
Blocks are post-LN as in the paper's code: h = LN(h + Attn(h)); h = LN(h + FF(h)).

Contract 1 (language models): `__call__(tokens, carry=None, *, train) -> (logits, carry)`.
The carry is a `Memory`: `mems` f32 [B, L, M, D] (layer n's memory) and `valid` bool [B, M]
(which slots hold a state). `initial_carry(B)` is the empty memory (zeros, nothing valid), so
`carry=None` and a fresh carry are the same; after a window of T tokens the memory holds the
last M of the (old memory, window) states, right-aligned. Decoding uses the same code with a
memory of `max_length` slots (`init_decode_state`), so every earlier token stays visible and
chunked decoding equals `__call__` over the whole sequence.
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

NEG_INF = -1e30


@flax.struct.dataclass
class Memory:
    """Transformer-XL's carry: per-layer memories [B, L, M, D] and slot validity [B, M]."""

    mems: jax.Array
    valid: jax.Array


def rel_shift(x: jax.Array) -> jax.Array:
    """Aligns position scores: `x` [..., T, K] whose column c is for distance K - 1 - c, to
    [..., T, K] whose entry (i, j) is for the distance i + (K - T) - j between query i (the
    last T of the K keys) and key j: out[i, j] = x[i, j + T - 1 - i] wherever j <= i + K - T
    (entries above that are unspecified; attention masks them)."""
    *lead, t, k = x.shape
    padded = jnp.pad(x, [(0, 0)] * len(lead) + [(0, 0), (1, 0)])  # [..., T, K + 1]
    padded = padded.reshape(*lead, k + 1, t)[..., 1:, :]  # drop the first row
    return padded.reshape(*lead, t, k)


def sinusoid(positions: jax.Array, dim: int) -> jax.Array:
    """[N, dim] sinusoidal encodings of (float) positions: sin then cos halves, frequencies
    1 / 10000^(2i/dim) (Vaswani et al.; Transformer-XL's order)."""
    inv_freq = 1.0 / (10000 ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim))
    angles = positions[:, None].astype(jnp.float32) * inv_freq[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class RelativeAttention(nn.Module):
    """Multi-head relative attention with biases u, v (see the module docstring).

    `h` [B, T, D] (queries), `mem` [B, M, D], `mask` bool [B, T, M + T] (True: visible),
    `r` [M + T, D] the sinusoids of distances M + T - 1, ..., 0; `u`, `v` [H, d_head].
    """

    num_heads: int
    head_dim: int
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        h: jax.Array,
        mem: jax.Array,
        mask: jax.Array,
        r: jax.Array,
        u: jax.Array,
        v: jax.Array,
        *,
        train: bool,
    ) -> jax.Array:
        features = (self.num_heads, self.head_dim)
        dense = lambda name: nn.DenseGeneral(  # noqa: E731
            features, use_bias=False, dtype=self.dtype, name=name
        )
        cat = jnp.concatenate([mem.astype(h.dtype), h], axis=1)  # [B, K, D]
        q = dense("query")(h)  # [B, T, H, d]
        k = dense("key")(cat)  # [B, K, H, d]
        val = dense("value")(cat)
        rk = dense("pos")(r)  # [K, H, d]
        ac = jnp.einsum("bthd,bkhd->bhtk", q + u, k)
        bd = rel_shift(jnp.einsum("bthd,khd->bhtk", q + v, rk))
        scores = (ac + bd) / jnp.sqrt(self.head_dim).astype(ac.dtype)
        # the softmax in at least float32 (float64 stays float64: the gradient check)
        wide = jnp.promote_types(scores.dtype, jnp.float32)
        scores = jnp.where(mask[:, None], scores.astype(wide), NEG_INF)
        probs = jax.nn.softmax(scores, axis=-1).astype(self.dtype)
        probs = nn.Dropout(self.dropout)(probs, deterministic=not train)
        out = jnp.einsum("bhtk,bkhd->bthd", probs, val)
        return nn.DenseGeneral(
            h.shape[-1], axis=(-2, -1), use_bias=False, dtype=self.dtype, name="out"
        )(out)


class TransformerXL(nn.Module):
    """Transformer-XL LM (see the module docstring).

    Attributes:
      vocab_size: token ids (filled by the task from the dataset).
      d_model, num_heads, head_dim, d_inner, depth: sizes (d_inner: the ReLU FF width).
      mem_len: memory slots M per layer carried across windows.
      dropout: on embeddings, attention probabilities and residual branches (train only).
    """

    vocab_size: int = 0
    d_model: int = 64
    num_heads: int = 4
    head_dim: int = 16
    d_inner: int = 256
    depth: int = 2
    mem_len: int = 32
    dropout: float = 0.0
    dtype: Any = jnp.float32

    def setup(self) -> None:
        if self.vocab_size <= 0:
            raise ValueError(f"transformer_xl needs vocab_size > 0, got {self.vocab_size}")
        init = nn.initializers.normal(0.02)
        self.embed = nn.Embed(self.vocab_size, self.d_model, embedding_init=init, dtype=self.dtype)
        self.u = self.param("pos_bias_u", nn.initializers.zeros, (self.num_heads, self.head_dim))
        self.v = self.param("pos_bias_v", nn.initializers.zeros, (self.num_heads, self.head_dim))
        self.attn = [
            RelativeAttention(
                self.num_heads, self.head_dim, self.dropout, self.dtype, name=f"attn_{i}"
            )
            for i in range(self.depth)
        ]
        self.ln1 = [nn.LayerNorm(dtype=self.dtype, name=f"ln_attn_{i}") for i in range(self.depth)]
        self.ff_in = [
            nn.Dense(self.d_inner, dtype=self.dtype, name=f"ff_in_{i}") for i in range(self.depth)
        ]
        self.ff_out = [
            nn.Dense(self.d_model, dtype=self.dtype, name=f"ff_out_{i}") for i in range(self.depth)
        ]
        self.ln2 = [nn.LayerNorm(dtype=self.dtype, name=f"ln_ff_{i}") for i in range(self.depth)]
        self.drop = nn.Dropout(self.dropout)
        self.head = nn.Dense(self.vocab_size, dtype=self.dtype)

    def _empty(self, batch_size: int, slots: int) -> Memory:
        return Memory(
            mems=jnp.zeros((batch_size, self.depth, slots, self.d_model), self.dtype),
            valid=jnp.zeros((batch_size, slots), bool),
        )

    def _forward(self, tokens: jax.Array, memory: Memory, train: bool) -> tuple[jax.Array, Memory]:
        b, t = tokens.shape
        m = memory.valid.shape[1]
        k = m + t
        valid = jnp.concatenate([memory.valid, jnp.ones((b, t), bool)], axis=1)  # [B, K]
        causal = jnp.arange(k)[None, :] <= (jnp.arange(t)[:, None] + m)  # [T, K]
        mask = causal[None] & valid[:, None, :]
        r = sinusoid(jnp.arange(k - 1, -1, -1), self.d_model).astype(self.dtype)
        h = self.drop(self.embed(tokens), deterministic=not train)
        mems = jax.lax.stop_gradient(memory.mems)
        new_mems = []
        for n in range(self.depth):
            new_mems.append(jnp.concatenate([mems[:, n], h], axis=1)[:, t:])
            a = self.attn[n](h, mems[:, n], mask, r, self.u, self.v, train=train)
            h = self.ln1[n](h + self.drop(a, deterministic=not train))
            f = self.ff_out[n](nn.relu(self.ff_in[n](h)))
            h = self.ln2[n](h + self.drop(f, deterministic=not train))
        logits = self.head(h).astype(jnp.float32)
        carry = Memory(mems=jax.lax.stop_gradient(jnp.stack(new_mems, axis=1)), valid=valid[:, t:])
        return logits, carry

    def __call__(
        self, tokens: jax.Array, carry: Memory | None = None, *, train: bool
    ) -> tuple[jax.Array, Memory]:
        """Logits f32 [B, T, V] of the next token and the memory after the window."""
        if carry is None:
            carry = self._empty(tokens.shape[0], self.mem_len)
        return self._forward(tokens, carry, train)

    def initial_carry(self, batch_size: int) -> Memory:
        """The empty memory: mem_len zero slots per layer, none valid."""
        return self._empty(batch_size, self.mem_len)

    def init_decode_state(self, batch_size: int, max_length: int) -> Memory:
        """An empty memory of `max_length` slots (every decoded token stays visible)."""
        return self._empty(batch_size, max_length)

    def decode(self, tokens: jax.Array, state: Memory) -> tuple[jax.Array, Memory]:
        """Logits [B, t, V] of t new tokens after those in `state`, and the state after."""
        return self._forward(tokens, state, False)
