"""A U-Net for segmentation (Ronneberger, Fischer & Brox, 2015), the second baseline.

Encoder: per level, two 3x3 conv-norm-activation layers of width `features[l]`, then a 2x2
max pool (not after the last level). Decoder: per level from the second-to-last, the map
upsampled to the skip's size (`upsample_bilinear`, the segmentation models' one resize
convention), concatenated with the skip, two 3x3 conv-norm-activation layers of width
`features[l]`. A 1x1 conv gives the logits [N, H, W, num_classes] at the input's size
("same" padding, so the output is not cropped as in the paper).

`jaxlab.models.unet` is DDPM's noise-prediction U-Net: its blocks take a timestep
embedding, GroupNorm and a zero-initialized last conv, none of which fits a per-pixel
classifier, so this one has its own (plain) blocks.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.models.base import ConvClassifier
from jaxlab.models.deeplab import upsample_bilinear
from jaxlab.nn.conv import conv


class SegUNet(ConvClassifier):
    """The segmentation U-Net (see the module docstring); `features` per level."""

    features: tuple[int, ...] = (16, 32, 64)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        norm, act, init = self.norm_act_init(train, default_init="kaiming_normal_fan_out")

        def double_conv(y: jax.Array, width: int, name: str) -> jax.Array:
            for i in range(2):
                y = conv(
                    width,
                    3,
                    use_bias=False,
                    kernel_init=init,
                    dtype=self.dtype,
                    name=f"{name}_conv{i + 1}",
                )(y)
                y = act(norm(name=f"{name}_norm{i + 1}")(y))
            return y

        y = x.astype(self.dtype)
        skips = []
        for level, width in enumerate(self.features):
            if level:
                y = nn.max_pool(y, (2, 2), strides=(2, 2), padding="SAME")
            y = double_conv(y, width, f"down{level + 1}")
            skips.append(y)
        for level in range(len(self.features) - 2, -1, -1):
            skip = skips[level]
            y = jnp.concatenate([upsample_bilinear(y, skip.shape[1:3]), skip], axis=-1)
            y = double_conv(y, self.features[level], f"up{level + 1}")
        logits = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name="head")(y)
        return logits.astype(jnp.float32)
