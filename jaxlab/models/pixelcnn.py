"""PixelCNN: an autoregressive model of images, one categorical per subpixel.

p(x) = prod_i p(x_i | x_<i) over the subpixels in raster order (rows, then columns, then
channels R < G < B). The network maps an image to logits [B, H, W, C, levels] whose entry
(i, j, c) depends only on the subpixels before (i, j, c): masked convolutions
(jaxlab.nn.masked_conv) make every output's receptive field causal, so one forward pass
gives all the conditionals of a training image.

Two architectures (`gated`):

- plain (van den Oord et al. 2016a, "Pixel Recurrent Neural Networks"): a
  `first_kernel_size` type-A masked conv, then `num_layers` type-B `kernel_size` masked
  convs with ReLU and residual connections. Its stacked masks leave a blind spot (the
  pixels up and to the right beyond the kernel's reach, e.g. (i - 1, j + 2) for 3 x 3).
- gated (van den Oord et al. 2016b, "Conditional Image Generation with PixelCNN Decoders"):
  a vertical stack (k x k kernels over the rows <= i, used one row lower, so it holds all
  rows < i) and a horizontal stack (1 x k kernels over the columns <= j of row i, type A in
  the first layer), each layer gated, tanh(a) * sigmoid(b); the vertical stack's
  pre-activations feed the horizontal stack through a 1 x 1 conv after the one-row shift,
  and the horizontal stack is residual. No blind spot.

Both end with ReLU, a type-B 1 x 1 masked conv, ReLU and a type-B 1 x 1 masked conv to
C * levels logits (grouped by channel, so channel c's logits see channels <= c of the
features, i.e. < c of the pixel).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.nn.masked_conv import MaskedConv, shift_down


def gate(x: jax.Array) -> jax.Array:
    """The gated activation: tanh of the first half of the features times the sigmoid of
    the second half ([..., 2F] -> [..., F])."""
    a, b = jnp.split(x, 2, axis=-1)
    return jnp.tanh(a) * jax.nn.sigmoid(b)


class PixelCNN(nn.Module):
    """A PixelCNN (plain or gated; see the module docstring).

    Attributes:
      levels: categories per subpixel (17 for gen_digits, 2 for binarized, 256 for 8-bit).
      features: width of the hidden feature maps (>= the image's channels).
      num_layers: masked layers after the first (plain) / gated blocks (gated).
      gated: gated PixelCNN (vertical and horizontal stacks) or the plain one.
      kernel_size: k of the hidden layers' k x k (plain, vertical) and 1 x k (horizontal)
        kernels; odd.
      first_kernel_size: k of the first (type A) layer; odd.
    """

    levels: int = 256
    features: int = 64
    num_layers: int = 6
    gated: bool = True
    kernel_size: int = 3
    first_kernel_size: int = 7

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """x [B, H, W, C] in [0, 1] (the levels divided by levels - 1) -> logits
        [B, H, W, C, levels]; `train` is unused (no dropout or batch norm)."""
        del train
        channels = x.shape[-1]
        if self.features < channels:
            raise ValueError(f"features ({self.features}) must be >= the channels ({channels})")
        x = 2.0 * x - 1.0
        f, k, k0 = self.features, self.kernel_size, self.first_kernel_size
        if self.gated:
            v = MaskedConv(f, (k0, k0), region="vertical", channels=channels)(x)
            h = MaskedConv(f, (1, k0), region="horizontal", mask_type="A", channels=channels)(x)
            h = h + nn.Conv(f, (1, 1))(shift_down(v))
            for _ in range(self.num_layers):
                v_pre = MaskedConv(2 * f, (k, k), region="vertical", channels=channels)(v)
                h_pre = MaskedConv(
                    2 * f, (1, k), region="horizontal", channels=channels, out_blocks=2
                )(h)
                h_pre = h_pre + nn.Conv(2 * f, (1, 1))(shift_down(v_pre))
                v = gate(v_pre)
                h = h + MaskedConv(f, (1, 1), channels=channels)(gate(h_pre))
        else:
            h = MaskedConv(f, (k0, k0), mask_type="A", channels=channels)(x)
            for _ in range(self.num_layers):
                h = h + MaskedConv(f, (k, k), channels=channels)(nn.relu(h))
        h = MaskedConv(f, (1, 1), channels=channels)(nn.relu(h))
        logits = MaskedConv(channels * self.levels, (1, 1), channels=channels)(nn.relu(h))
        return logits.reshape(*logits.shape[:-1], channels, self.levels)
