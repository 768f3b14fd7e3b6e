"""Position information for attention models: sinusoidal encodings, learned position
embeddings and relative positions.

- Sinusoidal (Vaswani et al., 2017, section 3.5): for position p and feature pair i,
  `PE[p, 2i] = sin(p / 10000^(2i/d))` and `PE[p, 2i+1] = cos(p / 10000^(2i/d))` (sines
  and cosines interleaved, as in the paper). No parameters; defined at any position.
- Learned (GPT, BERT): a table of `max_len` rows, one per absolute position.
- Relative (Shaw et al., 2018, "Self-Attention with Relative Position Representations"):
  the distance `j - i` from query i to key j is clipped to `[-k, k]` and looks up a learned
  vector `a[j - i]` of the head size (shared by the heads, as in the paper), which is added to
  the key: `e_ij = q_i . (k_j + a[clip(j - i)]) / sqrt(d)`. Only the key term `a^K` is used
  (the paper found the value term `a^V` unnecessary for translation). `MultiHeadAttention`
  adds the term through the logit bias; this module gives the clipped index and the term.

Positions are explicit integer arrays (not implied by the sequence length) so that a
key/value cache decodes a chunk starting at any offset with the same code.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError

POSITIONS = ("sinusoidal", "learned", "relative")


def sinusoidal_encoding(
    positions: jax.Array, features: int, *, max_timescale: float = 10000.0
) -> jax.Array:
    """The sinusoidal encodings of integer `positions` (any shape): float32
    `[*positions.shape, features]`, sine at even and cosine at odd features (see the module
    doc). `features` must be even (ConfigError otherwise)."""
    if features % 2:
        raise ConfigError(f"sinusoidal positions need an even width, got {features}")
    rates = max_timescale ** (-jnp.arange(0, features, 2, dtype=jnp.float32) / features)
    angles = jnp.asarray(positions, jnp.float32)[..., None] * rates  # [..., features/2]
    return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(
        *angles.shape[:-1], features
    )


class LearnedPositions(nn.Module):
    """A learned embedding per absolute position `0 .. max_len-1` (parameter `embedding`,
    `[max_len, features]`, normal(0.02) as GPT-2). Called with integer positions of any shape;
    positions must be < max_len (the caller checks: lookups beyond it are clipped by XLA)."""

    max_len: int
    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, positions: jax.Array) -> jax.Array:
        """The embeddings `[*positions.shape, features]` of `positions`."""
        table = self.param("embedding", nn.initializers.normal(0.02), (self.max_len, self.features))
        return jnp.take(table, positions, axis=0).astype(self.dtype)


def relative_position_index(
    query_positions: jax.Array, key_positions: jax.Array, max_distance: int
) -> jax.Array:
    """Shaw et al.'s clipped relative distances as table rows: `clip(k - q, -max_distance,
    max_distance) + max_distance`, int32 `[..., Tq, Tk]` from positions `[..., Tq]` and
    `[..., Tk]` (leading axes broadcast)."""
    distance = key_positions[..., None, :] - query_positions[..., :, None]
    return (jnp.clip(distance, -max_distance, max_distance) + max_distance).astype(jnp.int32)


def relative_key_logits(query: jax.Array, table: jax.Array, index: jax.Array) -> jax.Array:
    """The relative term of the attention logits, `q_i . a[index[i, j]]`: `[B, H, Tq, Tk]` from
    the queries `[B, Tq, H, D]`, the table `[2k+1, D]` and `index` `[Tq, Tk]` or `[B, Tq, Tk]`
    (`relative_position_index`). Computed as the product with every table row, then a gather
    (`Tq * (2k+1)` products per head instead of `Tq * Tk` vectors of the head size)."""
    per_row = jnp.einsum("bqhd,rd->bhqr", query, table.astype(query.dtype))
    if index.ndim == 2:
        index = index[None]
    index = jnp.broadcast_to(index[:, None], (*per_row.shape[:-1], index.shape[-1]))
    return jnp.take_along_axis(per_row, index, axis=-1)
