"""The U-Net of DDPM (Ho et al., 2020): a noise-prediction network `eps(x_t, t)`.

Layout (Ho et al.'s appendix B, itself PixelCNN++'s U-Net with Wide-ResNet blocks):

- the timestep t (int or float [B]) -> sinusoidal embedding of width `channels`
  (Transformer positions, Vaswani et al.) -> Dense(4 ch) -> SiLU -> Dense(4 ch);
- a 3x3 input conv to `channels`;
- down path: per level l, `num_res_blocks` residual blocks of width `channels *
  channel_mults[l]` (self-attention after each where the map's height is in
  `attention_resolutions`, as the paper's `attn_resolutions`),
  then (except on the last level) a stride-2 3x3 conv; every output is kept as a skip;
- middle: residual block, self-attention, residual block;
- up path: per level from the last, `num_res_blocks + 1` residual blocks, each on the
  concatenation with one skip (attention as on the way down), then (except on level 0) a
  nearest-neighbour 2x upsampling to the skip's size and a 3x3 conv;
- GroupNorm, SiLU and a zero-initialized 3x3 conv to `out_channels` (default: the input's).

A residual block is GroupNorm -> SiLU -> conv3x3 -> + Dense(SiLU(t_emb)) (per channel) ->
GroupNorm -> SiLU -> dropout -> conv3x3 (zero-initialized, so each block starts as the
identity), plus a 1x1 conv on the shortcut when the width changes. Self-attention is
`jaxlab.nn.attention.MultiHeadAttention` over the H*W positions as tokens (GroupNorm before,
residual after, zero-initialized output projection).

Upsampling is `jax.image.resize` (nearest) to the skip's spatial shape followed by a conv
rather than `nn.ConvTranspose`: it is the paper's choice, and resizing to the skip's shape
lets odd sizes work (28 -> 14 -> 7 -> 14 -> 28 with 7 downsampled to 4 by the 'SAME' stride).

Group counts: `gcd(num_groups, max(1, width // 4))` (32 groups of 4 channels at the paper's
width 128): every group spans at least 4 channels where the width allows, because a
one-channel group would normalize away the per-channel shift that carries the time
embedding (the network would not see t); small widths (4-16) work.

Sizes: `channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2, dropout=0.1` with
attention at 16x16 (`attention_resolutions=(16,)`) on 32x32x3 is the paper's CIFAR-10
model: 35,746,307 parameters (the paper: 35.7M; `tests/models/test_unet.py` checks it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError
from jaxlab.nn.attention import MultiHeadAttention


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
    """float32 [B, dim]: `[sin(t w_0..w_{h-1}), cos(t w_0..w_{h-1})]` with `h = dim // 2`
    and `w_i = max_period ** (-i / h)` (geometric frequencies from 1 down to
    1/max_period; a zero column pads an odd `dim`)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None, :]
    emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
    if dim % 2:
        emb = jnp.pad(emb, ((0, 0), (0, 1)))
    return emb


def _group_norm(channels: int, num_groups: int, dtype: jnp.dtype, name: str) -> nn.GroupNorm:
    groups = math.gcd(num_groups, max(1, channels // 4))  # >= 4 channels a group (module doc)
    return nn.GroupNorm(num_groups=groups, dtype=dtype, name=name)


class ResBlock(nn.Module):
    """A Wide-ResNet block of width `features` conditioned on the time embedding (see the
    module doc)."""

    features: int
    dropout: float = 0.0
    num_groups: int = 32
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, temb: jax.Array, *, train: bool) -> jax.Array:
        conv = lambda name, **kw: nn.Conv(  # noqa: E731
            self.features, (3, 3), padding="SAME", dtype=self.dtype, name=name, **kw
        )
        h = nn.silu(_group_norm(x.shape[-1], self.num_groups, self.dtype, "norm1")(x))
        h = conv("conv1")(h)
        h = h + nn.Dense(self.features, dtype=self.dtype, name="temb")(nn.silu(temb))[:, None, None]
        h = nn.silu(_group_norm(self.features, self.num_groups, self.dtype, "norm2")(h))
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        h = conv("conv2", kernel_init=nn.initializers.zeros)(h)
        if x.shape[-1] != self.features:
            x = nn.Conv(self.features, (1, 1), dtype=self.dtype, name="shortcut")(x)
        return x + h


class AttentionBlock(nn.Module):
    """Residual self-attention over the H*W positions of a feature map."""

    num_heads: int = 1
    num_groups: int = 32
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, hgt, wid, c = x.shape
        h = _group_norm(c, self.num_groups, self.dtype, "norm")(x).reshape(b, hgt * wid, c)
        h, _, _ = MultiHeadAttention(
            num_heads=self.num_heads,
            features=c,
            out_kernel_init=nn.initializers.zeros,
            dtype=self.dtype,
            name="attention",
        )(h)
        return x + h.reshape(b, hgt, wid, c)


class UNet(nn.Module):
    """DDPM's noise-prediction U-Net (see the module doc); called as `model(x, t, train=...)`
    with x [B, H, W, C] and t [B] (int or float timesteps); returns [B, H, W, out_channels]
    (out_channels 0: C).

    Attributes:
      channels: the base width (level 0).
      channel_mults: the width multiplier of each resolution level (its length is the
        number of levels; the resolution halves between levels).
      num_res_blocks: residual blocks per level on the way down (one more on the way up).
      attention_resolutions: the feature-map heights at which the residual blocks are
        followed by self-attention (the middle always has it), e.g. (16,) on 32x32.
      num_heads: attention heads.
      dropout: dropout rate inside the residual blocks (train only; 'dropout' rng).
      num_groups: GroupNorm groups (at most width / 4, see the module doc).
      out_channels: output channels (0: the input's).
    """

    channels: int = 64
    channel_mults: Sequence[int] = (1, 2, 2)
    num_res_blocks: int = 2
    attention_resolutions: Sequence[int] = (16,)
    num_heads: int = 1
    dropout: float = 0.1
    num_groups: int = 32
    out_channels: int = 0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, *, train: bool) -> jax.Array:
        levels = len(self.channel_mults)
        if levels == 0:
            raise ConfigError("model.channel_mults must name at least one level, got ()")
        block = lambda f, name: ResBlock(  # noqa: E731
            f, self.dropout, self.num_groups, self.dtype, name=name
        )
        attention = lambda name: AttentionBlock(  # noqa: E731
            self.num_heads, self.num_groups, self.dtype, name=name
        )
        conv3 = lambda f, name, **kw: nn.Conv(  # noqa: E731
            f, (3, 3), padding="SAME", dtype=self.dtype, name=name, **kw
        )
        temb = timestep_embedding(jnp.broadcast_to(t, x.shape[:1]), self.channels)
        temb = nn.Dense(4 * self.channels, dtype=self.dtype, name="temb_dense0")(temb)
        temb = nn.Dense(4 * self.channels, dtype=self.dtype, name="temb_dense1")(nn.silu(temb))

        h = conv3(self.channels, "conv_in")(x)
        skips = [h]
        for level, mult in enumerate(self.channel_mults):
            for i in range(self.num_res_blocks):
                h = block(self.channels * mult, f"down{level}_block{i}")(h, temb, train=train)
                if h.shape[1] in self.attention_resolutions:
                    h = attention(f"down{level}_attention{i}")(h)
                skips.append(h)
            if level < levels - 1:
                h = conv3(h.shape[-1], f"down{level}_downsample", strides=(2, 2))(h)
                skips.append(h)

        width = h.shape[-1]
        h = block(width, "mid_block0")(h, temb, train=train)
        h = attention("mid_attention")(h)
        h = block(width, "mid_block1")(h, temb, train=train)

        for level in reversed(range(levels)):
            for i in range(self.num_res_blocks + 1):
                h = jnp.concatenate([h, skips.pop()], axis=-1)
                features = self.channels * self.channel_mults[level]
                h = block(features, f"up{level}_block{i}")(h, temb, train=train)
                if h.shape[1] in self.attention_resolutions:
                    h = attention(f"up{level}_attention{i}")(h)
            if level > 0:
                target = skips[-1].shape
                h = jax.image.resize(h, (h.shape[0], target[1], target[2], h.shape[-1]), "nearest")
                h = conv3(h.shape[-1], f"up{level}_upsample")(h)

        h = nn.silu(_group_norm(h.shape[-1], self.num_groups, self.dtype, "norm_out")(h))
        out = self.out_channels or x.shape[-1]
        return conv3(out, "conv_out", kernel_init=nn.initializers.zeros)(h).astype(jnp.float32)
