"""Recurrent models: a language model (`rnn_lm`) and a sequence classifier
(`rnn_classifier`), both on `jaxlab.nn.recurrent.StackedRNN`.

`RNNLM` is the language-model contract: `__call__(tokens, carry=None, *, train) -> (logits,
carry)` with the carry (a tuple of per-layer cell carries, batch axis first) handed from one
window of a stream to the next (truncated BPTT: the task stops its gradient), plus
`initial_carry`, `init_decode_state` and `decode` for generation. `RNNClassifier` is the
sequence-classification contract: `__call__(x, *, train) -> logits [B, num_classes]` for
int32 tokens (PAD = 0 is padding) or float32 features [B, T, D].
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError, check_choice
from jaxlab.data.text import PAD
from jaxlab.nn.recurrent import CELLS, MERGE_MODES, Carry, ScalarMix, StackedRNN

POOLINGS = ("last", "mean", "scalar_mix")


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {rate!r}")


def _embedding_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """U(-0.1, 0.1), as PyTorch's word_language_model example (flax's default, unit variance,
    makes tied output logits far too large at init)."""
    return jax.random.uniform(key, shape, dtype, -0.1, 0.1)


class RNNLM(nn.Module):
    """Embedding -> `num_layers` recurrent layers of `cell` (rnn, lstm, gru, ln_lstm;
    dropout between them) -> dropout -> Dense(vocab_size) (or, with `tie_weights`, the
    embedding matrix transposed plus a bias `head_bias`; needs hidden_size == embed_dim).

    `vocab_size` is filled from the dataset by the task. `learned_init`: the initial carry is
    learned (per layer and carry part), else zeros. `two_biases`: PyTorch's two bias
    vectors per cell; `forget_bias` starts the LSTMs' forget-gate bias (see
    jaxlab.nn.recurrent). Logits are float32 whatever `dtype`.
    """

    vocab_size: int = 0
    embed_dim: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    cell: str = "lstm"
    dropout: float = 0.0
    two_biases: bool = False
    learned_init: bool = False
    tie_weights: bool = False
    forget_bias: float = 1.0
    dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_choice("model.cell", self.cell, CELLS)
        _check_rate(self.dropout)
        if self.tie_weights and self.hidden_size != self.embed_dim:
            raise ConfigError(
                f"model.tie_weights needs hidden_size == embed_dim, got {self.hidden_size} "
                f"and {self.embed_dim}"
            )
        super().__post_init__()

    def setup(self) -> None:
        if self.vocab_size < 1:
            raise ConfigError(
                f"rnn_lm needs model.vocab_size >= 1 (the task fills it from the dataset), "
                f"got {self.vocab_size}"
            )
        self.embed = nn.Embed(
            self.vocab_size, self.embed_dim, embedding_init=_embedding_init, dtype=self.dtype
        )
        self.rnn = StackedRNN(
            self.cell,
            self.hidden_size,
            self.num_layers,
            dropout=self.dropout,
            two_biases=self.two_biases,
            forget_bias=self.forget_bias,
            learned_init=self.learned_init,
            dtype=self.dtype,
        )
        self.drop = nn.Dropout(self.dropout)
        if self.tie_weights:
            self.head_bias = self.param(
                "head_bias", nn.initializers.zeros_init(), (self.vocab_size,)
            )
        else:
            self.head = nn.Dense(self.vocab_size, dtype=self.dtype)

    def initial_carry(self, batch_size: int) -> tuple[Carry, ...]:
        """The carry before a stream's first window: per layer, the cell's carry ((c, h) for
        the LSTMs, h otherwise), each [batch_size, hidden_size], learned or zeros."""
        return self.rnn.initial_carry(batch_size)

    def __call__(
        self, tokens: jax.Array, carry: tuple[Carry, ...] | None = None, *, train: bool
    ) -> tuple[jax.Array, tuple[Carry, ...]]:
        """(logits f32 [B, T, V], carry after the window) for tokens int32 [B, T]; `carry`
        None starts from `initial_carry`. Every id is a real token (no padding mask)."""
        x = self.embed(tokens)
        y, carry = self.rnn(x, None, carry, train=train)
        y = self.drop(y, deterministic=not train)
        if self.tie_weights:
            logits = self.embed.attend(y) + self.head_bias
        else:
            logits = self.head(y)
        return logits.astype(jnp.float32), carry

    def init_decode_state(self, batch_size: int, max_length: int) -> tuple[Carry, ...]:
        """The decoding state: the initial carry (an RNN needs no cache, so `max_length` is
        unused)."""
        del max_length
        return self.initial_carry(batch_size)

    def decode(
        self, tokens: jax.Array, state: tuple[Carry, ...]
    ) -> tuple[jax.Array, tuple[Carry, ...]]:
        """Consumes t >= 1 tokens int32 [B, t] (a prompt, then one per step) in eval mode:
        (logits f32 [B, t, V], the carry after them)."""
        return self(tokens, state, train=False)


class RNNClassifier(nn.Module):
    """A recurrent sequence classifier: tokens int32 [B, T] through an Embedding (PAD = 0
    marks padding: padded steps change neither outputs nor state) or float32 features
    [B, T, D] as they are (every step real) -> `num_layers` layers of `cell` (optionally
    `bidirectional`, merged by `merge`) -> pooling -> dropout -> Dense(num_classes) `head`.

    pooling: 'last' (the final hidden state after the last real step; bidirectional: merged
    with the backward direction's after the first step), 'mean' (of the last layer's outputs
    over the real steps), 'scalar_mix' (ELMo: a learned softmax-weighted mix, scaled by gamma,
    of every recurrent layer's outputs, then the mean over the real steps; ELMo's token layer
    is left out of the mix, its width differing from the recurrent layers').
    """

    num_classes: int = 2
    vocab_size: int = 0  # 0: the input is float features
    embed_dim: int = 64
    hidden_size: int = 64
    num_layers: int = 1
    cell: str = "lstm"
    bidirectional: bool = False
    merge: str = "concat"
    pooling: str = "last"
    dropout: float = 0.0
    two_biases: bool = False
    learned_init: bool = False
    forget_bias: float = 1.0
    dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_choice("model.cell", self.cell, CELLS)
        check_choice("model.merge", self.merge, MERGE_MODES)
        check_choice("model.pooling", self.pooling, POOLINGS)
        _check_rate(self.dropout)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Logits f32 [B, num_classes]."""
        if jnp.issubdtype(x.dtype, jnp.integer):
            if self.vocab_size < 1:
                raise ConfigError(
                    "rnn_classifier got tokens but model.vocab_size is 0 (set it, or give "
                    "float features [B, T, D])"
                )
            mask = x != PAD
            x = nn.Embed(
                self.vocab_size, self.embed_dim, embedding_init=_embedding_init, dtype=self.dtype
            )(x)
        else:
            mask = jnp.ones(x.shape[:2], bool)
        rnn = StackedRNN(
            self.cell,
            self.hidden_size,
            self.num_layers,
            bidirectional=self.bidirectional,
            merge=self.merge,
            dropout=self.dropout,
            two_biases=self.two_biases,
            forget_bias=self.forget_bias,
            learned_init=self.learned_init,
            dtype=self.dtype,
            name="rnn",
        )
        layers, carry = rnn(x, mask, train=train, all_layers=True)
        if self.pooling == "last":
            pooled = rnn.final_output(carry)
        else:
            y = ScalarMix(name="scalar_mix")(layers) if self.pooling == "scalar_mix" else layers[-1]
            weights = mask[..., None].astype(y.dtype)
            pooled = jnp.sum(y * weights, 1) / jnp.maximum(jnp.sum(weights, 1), 1.0)
        pooled = nn.Dropout(self.dropout)(pooled, deterministic=not train)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(pooled).astype(jnp.float32)
