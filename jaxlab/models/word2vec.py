"""Word2vec's two tables and its two models: skip-gram and CBOW (Mikolov et al., 2013).

Both hold an input table `input_embed` [V, D] (the word vectors one keeps, gensim's
`wv.vectors`, word2vec.c's syn0) and an output table `output_embed` [V, D] (syn1neg), and
score a hidden vector `h` against output rows by their dot product:

- `skipgram`: every context slot is one pair; `h` is the context word's input vector and
  the candidates are the center word (the positive) and its negatives. As in word2vec.c and
  gensim, the *context* word's input vector predicts the *center* word's output vector.
- `cbow`: `h` is the mean of the input vectors of the unmasked context words (gensim's
  `cbow_mean=1`), scored against the center word and its negatives.

Initialization follows gensim: input vectors uniform in [-0.5, 0.5) / D, output vectors zero
(so every first score is 0 and every first gradient reaches the output vectors only).

`__call__(context, context_mask, candidates)` gathers the rows and scores them; the two
steps are also exposed (`hidden`, `scores`, which read no parameters) so that the word2vec
task can differentiate with respect to the gathered rows and update only those rows
(jaxlab.tasks.word2vec).

Shapes (B examples, S = 2W context slots, K = 1 + negatives candidates):
  context, context_mask  [B, S]
  candidates             skipgram [B, S, K] (one set per pair); cbow [B, K]
  scores                 skipgram [B, S, K]; cbow [B, K]
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import check_choice

MODES = ("skipgram", "cbow")
INPUT_TABLE, OUTPUT_TABLE = "input_embed", "output_embed"


def scaled_uniform(dim: int) -> nn.initializers.Initializer:
    """gensim's input-vector init: uniform in [-0.5, 0.5) divided by the dimension."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return (jax.random.uniform(key, shape, dtype) - 0.5) / dim

    return init


class Word2Vec(nn.Module):
    """Skip-gram or CBOW with negative sampling (see the module docstring).

    Attributes:
      vocab_size: V (filled by the task from the dataset).
      embed_dim: D, the width of both tables.
      mode: 'skipgram' or 'cbow'.
      dtype: the tables' dtype.
    """

    vocab_size: int = 0
    embed_dim: int = 100
    mode: str = "skipgram"
    dtype: Any = jnp.float32

    def setup(self) -> None:
        check_choice("model.mode", self.mode, MODES)
        self.input_embed = nn.Embed(
            self.vocab_size,
            self.embed_dim,
            dtype=self.dtype,
            param_dtype=self.dtype,
            embedding_init=scaled_uniform(self.embed_dim),
        )
        self.output_embed = nn.Embed(
            self.vocab_size,
            self.embed_dim,
            dtype=self.dtype,
            param_dtype=self.dtype,
            embedding_init=nn.initializers.zeros,
        )

    def hidden(self, context_rows: jax.Array, context_mask: jax.Array) -> jax.Array:
        """The hidden vectors from the context words' input rows [B, S, D]: the rows
        themselves (skipgram, one per pair) or their mean over the unmasked slots (cbow;
        [B, D], zero when no slot is unmasked)."""
        if self.mode == "skipgram":
            return context_rows
        mask = context_mask.astype(context_rows.dtype)
        total = jnp.einsum("bsd,bs->bd", context_rows, mask)
        return total / jnp.maximum(mask.sum(-1, keepdims=True), 1.0)

    def scores(self, hidden: jax.Array, candidate_rows: jax.Array) -> jax.Array:
        """Dot products of the hidden vectors with their candidates' output rows."""
        return jnp.einsum("...d,...kd->...k", hidden, candidate_rows)

    def __call__(
        self,
        context: jax.Array,
        context_mask: jax.Array,
        candidates: jax.Array,
        *,
        train: bool = False,
    ) -> jax.Array:
        """Scores of the candidates (positive first, then negatives) of every pair (skipgram)
        or example (cbow); see the module docstring for the shapes."""
        del train  # no dropout, nothing differs at train time
        h = self.hidden(self.input_embed(context), context_mask)
        return self.scores(h, self.output_embed(candidates))
