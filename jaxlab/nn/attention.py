"""Scaled dot-product and multi-head attention with boolean masks and an explicit key/value
cache for decoding.

`softmax(Q K^T / sqrt(d) + bias) V` per head (Vaswani et al., 2017). Masks are boolean,
True where a query may attend to a key, broadcastable to `[B, heads, Tq, Tk]`; causal and
padding masks are combined with `nn.combine_masks` (logical and). A query row whose keys are
all masked gets zero weights and a zero output (flax alone would give it the uniform average
of the values); no row produces NaN.

Why not flax's `nn.MultiHeadDotProductAttention` as a whole: its decoding cache lives in the
mutable `cache` collection and takes exactly one token per call (its `decode=True` path),
whereas jaxlab's models decode from explicit pytree state (contracts 1 and 3: `decode`
returns the new state) and feed a prompt of any length as one chunk. It also returns no
attention weights (seq2seq models draw them) and has no relative positions. So
`MultiHeadAttention` is written here from flax's pieces: `nn.DenseGeneral` projections (the
same parameter layout as flax's: `query`, `key`, `value` kernels `[D, heads, head_dim]`,
`out` kernel `[heads, head_dim, D]`), `nn.dot_product_attention_weights` (masking with the
dtype's most negative value, softmax, attention dropout) and flax's mask helpers.

The cache (`KVCache`) holds `max_length` key and value slots per layer and, per batch row, the
number of slots filled. A chunk of t >= 1 new queries writes its keys and values at
`index .. index + t - 1` and attends to every cached slot at a position <= its own, so a
prompt and then one token per step give the same outputs as attention over the whole
sequence under a causal mask. Writes beyond `max_length` are dropped: size the cache for
the whole generation.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError
from jaxlab.nn.initializers import Initializer
from jaxlab.nn.positional import relative_key_logits, relative_position_index


@flax.struct.dataclass
class KVCache:
    """One attention layer's decoding cache: `key` and `value` `[B, max_length, heads,
    head_dim]` and `index` int32 `[B]`, the number of positions filled (every leaf batch-first,
    so a beam search can reorder rows with one `tree.map`)."""

    key: jax.Array
    value: jax.Array
    index: jax.Array

    @classmethod
    def zeros(
        cls,
        batch_size: int,
        max_length: int,
        num_heads: int,
        head_dim: int,
        dtype: jnp.dtype = jnp.float32,
    ) -> KVCache:
        """An empty cache of `max_length` positions."""
        shape = (batch_size, max_length, num_heads, head_dim)
        return cls(
            jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros(batch_size, jnp.int32)
        )

    def append(self, key: jax.Array, value: jax.Array) -> KVCache:
        """The cache with the `[B, t, heads, head_dim]` keys and values written at positions
        `index .. index + t - 1` of each row, and `index` advanced by t."""
        t = key.shape[1]
        rows = jnp.arange(key.shape[0])[:, None]
        slots = self.index[:, None] + jnp.arange(t)
        return KVCache(
            self.key.at[rows, slots].set(key.astype(self.key.dtype), mode="drop"),
            self.value.at[rows, slots].set(value.astype(self.value.dtype), mode="drop"),
            self.index + t,
        )


def causal_mask(length: int) -> jax.Array:
    """bool `[1, 1, length, length]`, True where key j <= query i (`nn.make_causal_mask`)."""
    return nn.make_causal_mask(jnp.zeros((1, length)), dtype=jnp.bool_)


def padding_mask(tokens: jax.Array, pad_id: int = 0) -> jax.Array:
    """bool `[B, 1, 1, T]` from tokens `[B, T]`: True at the keys that are not padding (every
    query may attend to every real key)."""
    return (tokens != pad_id)[:, None, None, :]


def scaled_dot_product_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    mask: jax.Array | None = None,
    bias: jax.Array | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    dtype: jnp.dtype | None = None,
) -> tuple[jax.Array, jax.Array]:
    """`softmax(q k^T / sqrt(head_dim) + bias) v` for queries `[B, Tq, H, D]`, keys and values
    `[B, Tk, H, D]`; `mask` boolean and `bias` additive, both broadcastable to
    `[B, H, Tq, Tk]`. Dropout on the weights when `dropout_rng` is given. Returns the output
    `[B, Tq, H, D]` and the weights `[B, H, Tq, Tk]` (after dropout); fully masked rows get zero
    weights (see the module doc)."""
    deterministic = dropout_rng is None or dropout_rate == 0.0
    # Half precision: the softmax in float32 (flax's `force_fp32_for_softmax`). Not for
    # float64, which that flag would round down to float32 (the gradient check runs there).
    compute = jnp.dtype(dtype or jnp.result_type(query, key))
    half = jnp.issubdtype(compute, jnp.floating) and jnp.finfo(compute).bits < 32
    weights = nn.dot_product_attention_weights(
        query,
        key,
        bias=bias,
        mask=mask,
        broadcast_dropout=False,  # an independent mask per example and head
        dropout_rng=dropout_rng,
        dropout_rate=dropout_rate,
        deterministic=deterministic,
        dtype=dtype,
        force_fp32_for_softmax=half,
    )
    if mask is not None:
        any_key = jnp.any(jnp.broadcast_to(mask, weights.shape), axis=-1, keepdims=True)
        weights = jnp.where(any_key, weights, 0.0)
    return jnp.einsum("bhqk,bkhd->bqhd", weights, value.astype(weights.dtype)), weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention of width `features` with `num_heads` heads (see the module doc).

    `max_relative_distance` k > 0 adds Shaw et al.'s relative key term (clipped at distance
    k; parameter `relative_key` `[2k+1, head_dim]`, shared by the heads; jaxlab.nn.positional).
    `out_kernel_init` (default `kernel_init`) initializes the output projection (GPT-2 scales
    the residual projections by `1/sqrt(2 * layers)`).
    """

    num_heads: int
    features: int
    dropout: float = 0.0
    use_bias: bool = True
    max_relative_distance: int = 0
    kernel_init: Initializer = nn.initializers.lecun_normal()
    out_kernel_init: Initializer | None = None
    dtype: jnp.dtype = jnp.float32

    @property
    def head_dim(self) -> int:
        """The width of one head, `features // num_heads`."""
        return self.features // self.num_heads

    def setup(self) -> None:
        if self.num_heads <= 0 or self.features % self.num_heads:
            raise ConfigError(
                f"attention width {self.features} must be a multiple of num_heads "
                f"{self.num_heads} (> 0)"
            )
        project = functools.partial(
            nn.DenseGeneral,
            features=(self.num_heads, self.head_dim),
            use_bias=self.use_bias,
            kernel_init=self.kernel_init,
            dtype=self.dtype,
        )
        self.query = project(name="query")
        self.key = project(name="key")
        self.value = project(name="value")
        self.out = nn.DenseGeneral(
            self.features,
            axis=(-2, -1),
            use_bias=self.use_bias,
            kernel_init=self.out_kernel_init or self.kernel_init,
            dtype=self.dtype,
            name="out",
        )
        if self.max_relative_distance > 0:
            self.relative_key = self.param(
                "relative_key",
                nn.initializers.normal(0.02),
                (2 * self.max_relative_distance + 1, self.head_dim),
            )

    def project_kv(self, inputs_kv: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The keys and values `[B, Tk, heads, head_dim]` of `inputs_kv` `[B, Tk, D]` (computed
        once per source for cross-attention while decoding)."""
        return self.key(inputs_kv), self.value(inputs_kv)

    def init_cache(self, batch_size: int, max_length: int) -> KVCache:
        """An empty `KVCache` of this layer's shape."""
        return KVCache.zeros(batch_size, max_length, self.num_heads, self.head_dim, self.dtype)

    def __call__(
        self,
        inputs_q: jax.Array,
        inputs_kv: jax.Array | None = None,
        *,
        kv: tuple[jax.Array, jax.Array] | None = None,
        mask: jax.Array | None = None,
        cache: KVCache | None = None,
        train: bool = False,
    ) -> tuple[jax.Array, jax.Array, KVCache | None]:
        """Attention of `inputs_q` `[B, Tq, D]` over `inputs_kv` (default: `inputs_q`, self-
        attention) or over precomputed `kv` (`project_kv`). With `cache`, the new keys and
        values are appended to it and the queries attend causally to the cached positions
        (self-attention while decoding). `mask` is boolean, broadcastable to
        `[B, heads, Tq, Tk]` (Tk = the cache length with a cache). Returns the output
        `[B, Tq, D]`, the weights `[B, heads, Tq, Tk]` and the new cache (None without one)."""
        query = self.query(inputs_q)
        if kv is None:
            kv = self.project_kv(inputs_q if inputs_kv is None else inputs_kv)
        key, value = kv
        t = query.shape[1]
        if cache is not None:
            query_positions = cache.index[:, None] + jnp.arange(t)  # [B, t]
            cache = cache.append(key, value)
            key, value = cache.key, cache.value
            key_positions = jnp.arange(key.shape[1])
            filled = key_positions[None, None, :] <= query_positions[:, :, None]  # [B, t, L]
            mask = nn.combine_masks(mask, filled[:, None], dtype=jnp.bool_)
        else:
            query_positions, key_positions = jnp.arange(t), jnp.arange(key.shape[1])
        bias = None
        if self.max_relative_distance > 0:
            index = relative_position_index(
                query_positions, key_positions, self.max_relative_distance
            )
            scaled = query / jnp.sqrt(self.head_dim).astype(query.dtype)
            bias = relative_key_logits(scaled, self.relative_key, index)
        rng = self.make_rng("dropout") if train and self.dropout > 0 else None
        out, weights = scaled_dot_product_attention(
            query,
            key,
            value,
            mask=mask,
            bias=bias,
            dropout_rate=self.dropout,
            dropout_rng=rng,
            dtype=self.dtype,
        )
        return self.out(out), weights, cache
