"""FCN-8s-style segmentation (Long, Shelhamer & Darrell, 2015) on the zoo's ResNets: the
baseline that DeepLab improves on.

`FCN8s` subclasses `ResNet` (backbone parameters named as the classifier's, so
`init_from` loads them; the score layers are `head_*`). A 1x1 score conv (with bias) maps
each of the last three stages' outputs (strides 8, 16, 32 on the ImageNet ResNets; 1, 2, 4
on the CIFAR ones) to `num_classes` scores; the coarsest scores are upsampled to the next
stage's size and added to its scores, twice, and the sum upsampled to the input size.

Upsampling is the fixed bilinear `upsample_bilinear` of `jaxlab.models.deeplab` (the same
convention as DeepLab) instead of FCN's learned deconvolutions initialized to bilinear
(they barely move from that initialization in the paper's experiments, and a fixed resize
works for any input size).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.models.deeplab import upsample_bilinear
from jaxlab.models.resnet import ResNet


class FCN8s(ResNet):
    """FCN-8s-style skips on a ResNet; `__call__(x, train=...)` returns logits
    [N, H, W, num_classes] at the input's size."""

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        feats: dict[str, jax.Array] = {}
        self.backbone_features(x, train=train, features=feats)
        stages = sorted(k for k in feats if k.startswith("stage"))[-3:][::-1]
        scores = None
        for name in stages:  # coarsest first
            s = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name=f"head_score_{name}")(
                feats[name]
            )
            scores = s if scores is None else s + upsample_bilinear(scores, s.shape[1:3])
        return upsample_bilinear(scores, x.shape[1:3]).astype(jnp.float32)
