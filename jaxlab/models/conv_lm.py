"""Gated convolutional language model (Dauphin et al. 2017, "Language Modeling with Gated
Convolutional Networks"): token embeddings, residual blocks of causal 1-D convolutions with
gated linear units, and a linear output layer.

Each GLU layer is `h = (X * W + b) * sigmoid(X * V + c)`: one convolution with 2C output
channels split in two halves `a, b` and combined as `a * sigmoid(b)` (`jax.nn.glu`). The
convolutions are causal: the input of every layer is padded with k - 1 zeros on the left
only, so output t sees inputs t - k + 1 .. t and, through L layers, tokens t - L(k-1) .. t.
A block is `layers_per_block` GLU layers with a residual connection around them (the input
is projected to `width` channels first when the embedding size differs).

Contract 1 of the sequence family (language models): `__call__(tokens, carry=None, *,
train) -> (logits, None)`; the model carries nothing across windows (its receptive field is
finite and each window starts from zero padding), so `initial_carry` is None. Decoding keeps,
for every convolution, the last k - 1 vectors of its input (`init_decode_state`: zeros, the
same as the left padding of `__call__`); `decode` prepends them to the new inputs, runs the
convolution unpadded, and keeps the new last k - 1. Chunked decoding therefore computes the
same sums as `__call__` over the whole sequence, with memory independent of `max_length`.

flax's `nn.Conv` does the convolution (padding 'VALID'); the left padding / history is
written here because flax has no convolution that takes its left context as an argument.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

DecodeState = list[jax.Array]  # per convolution: its last k - 1 input vectors [B, k-1, C]


class CausalConv(nn.Module):
    """A causal 1-D convolution whose left context is explicit: `history` [B, k-1, C] (the
    inputs before `x`; zeros when None) is prepended and the convolution run unpadded.
    Returns (outputs [B, T, features], the new history: the last k - 1 rows of the
    concatenation)."""

    features: int
    kernel_size: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jax.Array, history: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        k = self.kernel_size
        if history is None:
            history = jnp.zeros((x.shape[0], k - 1, x.shape[-1]), x.dtype)
        full = jnp.concatenate([history.astype(x.dtype), x], axis=1)
        y = nn.Conv(self.features, (k,), padding="VALID", dtype=self.dtype, name="conv")(full)
        return y, full[:, full.shape[1] - (k - 1) :]


class ConvLM(nn.Module):
    """The gated convolutional LM (see the module docstring).

    Attributes:
      vocab_size: number of token ids (filled by the task from the dataset).
      embed_dim: token embedding size.
      width: channels of the residual stream (GLU output size).
      kernel_size: convolution width k (k >= 1; k = 1 sees only the current token).
      num_blocks: residual blocks.
      layers_per_block: GLU convolutions inside each residual block.
      dropout: dropout rate on the embeddings and each block's output (train only).
    """

    vocab_size: int = 0
    embed_dim: int = 64
    width: int = 64
    kernel_size: int = 4
    num_blocks: int = 2
    layers_per_block: int = 2
    dropout: float = 0.0
    dtype: Any = jnp.float32

    def setup(self) -> None:
        if self.vocab_size <= 0:
            raise ValueError(f"conv_lm needs vocab_size > 0, got {self.vocab_size}")
        if self.kernel_size < 1:
            raise ValueError(f"conv_lm needs kernel_size >= 1, got {self.kernel_size}")
        self.embed = nn.Embed(self.vocab_size, self.embed_dim, dtype=self.dtype)
        self.proj = nn.Dense(self.width, dtype=self.dtype) if self.embed_dim != self.width else None
        self.convs = [
            CausalConv(2 * self.width, self.kernel_size, dtype=self.dtype, name=f"conv_{i}")
            for i in range(self.num_blocks * self.layers_per_block)
        ]
        self.drop = nn.Dropout(self.dropout)
        self.head = nn.Dense(self.vocab_size, dtype=self.dtype)

    def _run(
        self, tokens: jax.Array, histories: DecodeState | None, train: bool
    ) -> tuple[jax.Array, DecodeState]:
        x = self.drop(self.embed(tokens), deterministic=not train)
        if self.proj is not None:
            x = self.proj(x)
        new = []
        for b in range(self.num_blocks):
            h = x
            for j in range(self.layers_per_block):
                i = b * self.layers_per_block + j
                h, hist = self.convs[i](h, None if histories is None else histories[i])
                h = jax.nn.glu(h, axis=-1)
                new.append(hist)
            x = x + self.drop(h, deterministic=not train)
        return self.head(x).astype(jnp.float32), new

    def __call__(
        self, tokens: jax.Array, carry: None = None, *, train: bool
    ) -> tuple[jax.Array, None]:
        """Logits f32 [B, T, V] of the next token at every position; the carry is None."""
        logits, _ = self._run(tokens, None, train)
        return logits, None

    def initial_carry(self, batch_size: int) -> None:
        """None: the model carries nothing from one window to the next."""
        return None

    def init_decode_state(self, batch_size: int, max_length: int) -> DecodeState:
        """Zeros [B, k-1, C_in] per convolution (the left padding); `max_length` is not
        needed: the state has a fixed size."""
        sizes = [self.width] * len(self.convs)
        return [jnp.zeros((batch_size, self.kernel_size - 1, c), self.dtype) for c in sizes]

    def decode(self, tokens: jax.Array, state: DecodeState) -> tuple[jax.Array, DecodeState]:
        """Logits [B, t, V] of t >= 1 new tokens following those already in `state`, and
        the state after them."""
        return self._run(tokens, state, False)
