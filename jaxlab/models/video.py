"""Per-frame video classifiers: a CNN encoder shared by all frames, with or without a
recurrent head over time.

    clip [B, T, H, W, C] --encoder (per frame)--> features [B, T, F]
        head 'lstm' / 'gru' / 'rnn': a recurrent layer over T (jaxlab.nn.recurrent.Recurrent,
                                     nn.scan) -> [B, T, hidden] -> Dense -> logits [B, T, K]
        head 'none' (frame by frame): Dense(hidden) + ReLU per frame -> Dense -> [B, T, K]

The encoder runs once on the frames folded into the batch ([B*T, H, W, C]: one batched
convolution, the same weights for every frame). The frame-by-frame head has a hidden layer
of the same width as the recurrent one, so the two models differ by the recurrence (the
hidden-to-hidden weights and gates), not by depth. The recurrent head is causal: the logits
of frame t see frames 0..t only, so it could run online.

The encoder is `widths` blocks of 3x3 conv + ReLU + 2x2 max pooling, then the feature map
flattened (position matters for what is asked of it: which digit is nearest the centre)
and a Dense to `features` + ReLU. No batch norm: frames of one clip are strongly
correlated, which skews batch statistics, and the model then carries no mutable state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import check_choice
from jaxlab.nn.recurrent import CELLS, Recurrent

HEADS = ("none", *CELLS)


class FrameEncoder(nn.Module):
    """A small CNN mapping frames [N, H, W, C] to feature vectors [N, features]."""

    widths: Sequence[int] = (16, 32)
    features: int = 64
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        for i, width in enumerate(self.widths):
            x = nn.Conv(width, (3, 3), dtype=self.dtype, name=f"conv{i}")(x)
            x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2), padding="SAME")
        x = x.reshape(x.shape[0], -1)
        return nn.relu(nn.Dense(self.features, dtype=self.dtype, name="project")(x))


class VideoClassifier(nn.Module):
    """Per-frame logits [B, T, num_classes] of clips [B, T, H, W, C] (see the module doc).

    Attributes:
      num_classes: classes per frame.
      head: 'none' (frame by frame) or a recurrent cell of `jaxlab.nn.recurrent.CELLS`
        ('lstm', 'gru', 'rnn', 'ln_lstm').
      widths, features: the frame encoder's conv widths and output features.
      hidden_size: the recurrent state's width (the frame-by-frame head's hidden layer).
      dropout: on the encoder's features, in training.
    """

    num_classes: int
    head: str = "lstm"
    widths: Sequence[int] = (16, 32)
    features: int = 64
    hidden_size: int = 64
    dropout: float = 0.0
    dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_choice("model.head", self.head, HEADS)
        super().__post_init__()

    @nn.compact
    def __call__(self, clips: jax.Array, *, train: bool) -> jax.Array:
        batch, frames = clips.shape[:2]
        folded = clips.reshape(batch * frames, *clips.shape[2:])
        encoder = FrameEncoder(self.widths, self.features, self.dtype, name="encoder")
        feats = encoder(folded).reshape(batch, frames, -1)
        if self.dropout > 0:
            feats = nn.Dropout(self.dropout, deterministic=not train)(feats)
        if self.head == "none":
            hidden = nn.relu(nn.Dense(self.hidden_size, dtype=self.dtype, name="frame_head")(feats))
        else:
            hidden, _ = Recurrent(self.head, self.hidden_size, dtype=self.dtype, name="rnn")(feats)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(hidden)
