"""Masked convolutions for autoregressive image models (PixelCNN, van den Oord et al. 2016).

Pixels are ordered in raster order (row by row, left to right) and, within a pixel, by
channel (R < G < B when the image has C = 3 channels). A network that predicts pixel
(i, j, c) may read only the subpixels before it. Feature maps inside the network are split
into C consecutive channel groups (feature f of F belongs to group `f * C // F`; group c
carries what may be known when predicting channel c), and every convolution's kernel is
multiplied by a constant 0/1 mask:

- `region='raster'` (plain PixelCNN, k x k): the rows above the centre, and the centre row
  left of the centre; at the centre tap, input group gi feeds output group go only if
  gi < go (`mask_type='A'`: the first layer, which reads the image itself, so a pixel never
  sees its own value) or gi <= go (`'B'`: later layers, whose centre features already
  exclude the pixel's own value).
- `region='vertical'` (gated PixelCNN's vertical stack, k x k): the centre row and every row
  above it, all columns, no channel mask. Its output at row i depends on rows <= i, so the
  network only ever uses it shifted down by one row (`shift_down`).
- `region='horizontal'` (gated PixelCNN's horizontal stack, 1 x k): the centre row left of
  and at the centre, with the 'A' / 'B' channel mask at the centre tap.

The masks are built with numpy and passed to flax's `nn.Conv(mask=...)`, which multiplies
them into the kernel at every call: the masked-out weights get zero gradient and never
affect the output, so the causal structure is exact (tests check it with `jax.jacrev`).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.config import check_choice

REGIONS = ("raster", "vertical", "horizontal")
MASK_TYPES = ("A", "B")


def channel_groups(num_features: int, channels: int) -> np.ndarray:
    """int [num_features]: the channel group `f * channels // num_features` of each feature."""
    return np.arange(num_features) * channels // num_features


def conv_mask(
    kernel_size: tuple[int, int],
    in_features: int,
    out_features: int,
    *,
    region: str,
    mask_type: str,
    channels: int = 1,
    out_blocks: int = 1,
) -> np.ndarray:
    """float32 [kh, kw, in_features, out_features]: the 0/1 kernel mask (module docstring).

    Args:
      kernel_size: (kh, kw), both odd (the centre tap is the output's own position).
      in_features, out_features: the convolution's input and output widths.
      region: 'raster', 'vertical' or 'horizontal' (which taps are kept).
      mask_type: 'A' (centre: strictly earlier channel groups) or 'B' (earlier or same
        group); ignored by region='vertical', which has no channel mask.
      channels: the image's channels C (the number of channel groups).
      out_blocks: the output is `out_blocks` concatenated blocks that each carry the groups
        of `out_features // out_blocks` features (the two halves of a gated activation).
    """
    check_choice("masked conv region", region, REGIONS)
    check_choice("masked conv mask_type", mask_type, MASK_TYPES)
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"masked conv kernel sizes must be odd, got {kernel_size}")
    ch, cw = kh // 2, kw // 2
    spatial = np.zeros((kh, kw), np.float32)
    if region == "vertical":
        spatial[: ch + 1, :] = 1.0
    else:
        spatial[:ch, :] = 1.0
        spatial[ch, :cw] = 1.0
    mask = np.broadcast_to(spatial[:, :, None, None], (kh, kw, in_features, out_features)).copy()
    if region == "vertical":
        return mask
    if out_features % out_blocks:
        raise ValueError(f"out_features {out_features} is not a multiple of {out_blocks}")
    g_in = channel_groups(in_features, channels)
    g_out = np.tile(channel_groups(out_features // out_blocks, channels), out_blocks)
    allowed = g_in[:, None] < g_out[None, :] if mask_type == "A" else g_in[:, None] <= g_out
    mask[ch, cw] = allowed.astype(np.float32)
    return mask


class MaskedConv(nn.Module):
    """A 'SAME'-padded convolution whose kernel is multiplied by `conv_mask(...)` (flax's
    `nn.Conv(mask=...)`); see the module docstring for `region` and `mask_type`.

    Attributes:
      features: output width.
      kernel_size: (kh, kw), odd.
      region: 'raster', 'vertical' or 'horizontal'.
      mask_type: 'A' or 'B' (ignored by 'vertical').
      channels: the image's channels C (channel groups).
      out_blocks: concatenated output blocks sharing the group layout (gates).
    """

    features: int
    kernel_size: tuple[int, int]
    region: str = "raster"
    mask_type: str = "B"
    channels: int = 1
    out_blocks: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """x [B, H, W, in] -> [B, H, W, features]."""
        mask = conv_mask(
            tuple(self.kernel_size),
            x.shape[-1],
            self.features,
            region=self.region,
            mask_type=self.mask_type,
            channels=self.channels,
            out_blocks=self.out_blocks,
        )
        conv = nn.Conv(
            self.features, tuple(self.kernel_size), padding="SAME", mask=jnp.asarray(mask)
        )
        return conv(x)


def shift_down(x: jax.Array) -> jax.Array:
    """[B, H, W, F] moved down one row (zeros in row 0): row i then holds row i - 1."""
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]
