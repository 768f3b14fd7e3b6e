"""DenseNet-121/161/169/201 (Huang et al., 2017) as torchvision builds them: BN-ReLU-1x1
bottleneck (bn_size * growth channels) then BN-ReLU-3x3 (growth channels), each layer's
output concatenated to its input; transitions BN-ReLU-1x1 conv (halving the channels) and
2x2 average pooling. densenet121 has 7,978,856 parameters at 1000 classes.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import check_choice
from jaxlab.models.base import ConvClassifier, check_depth
from jaxlab.nn.conv import check_input_size, conv

# depth -> (growth rate, layers per dense block); the stem has 2 * growth channels.
DENSENET_DEPTHS: dict[int, tuple[int, tuple[int, ...]]] = {
    121: (32, (6, 12, 24, 16)),
    161: (48, (6, 12, 36, 24)),
    169: (32, (6, 12, 32, 32)),
    201: (32, (6, 12, 48, 32)),
}
STEMS = ("imagenet", "cifar")


class DenseLayer(nn.Module):
    """norm-act-conv1x1(bn_size * growth)-norm-act-conv3x3(growth) [-dropout], whose output
    is concatenated to the input's channels."""

    growth_rate: int
    bn_size: int
    dropout: float
    norm: Callable[..., nn.Module]
    act: Callable[[jax.Array], jax.Array]
    kernel_init: Callable[..., jax.Array]
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        kw = dict(use_bias=False, kernel_init=self.kernel_init, dtype=self.dtype)
        y = self.act(self.norm(name="norm1")(x))
        y = conv(self.bn_size * self.growth_rate, 1, name="conv1", **kw)(y)
        y = self.act(self.norm(name="norm2")(y))
        y = conv(self.growth_rate, 3, padding=1, name="conv2", **kw)(y)
        if self.dropout > 0:
            y = nn.Dropout(self.dropout, deterministic=not train)(y)
        return jnp.concatenate([x, y], axis=-1)


class DenseNet(ConvClassifier):
    """DenseNet-`depth` (121, 161, 169, 201); `growth_rate` None takes the preset's.

    `stem="imagenet"`: 7x7/2 conv and 3x3/2 max pool (inputs of at least 32x32);
    `stem="cifar"`: one 3x3 conv, no pooling (inputs of at least 8x8, total stride 8).
    """

    depth: int = 121
    growth_rate: int | None = None
    bn_size: int = 4
    compression: float = 0.5
    stem: str = "imagenet"

    def __post_init__(self) -> None:
        check_depth("densenet", self.depth, DENSENET_DEPTHS)
        check_choice("densenet stem", self.stem, STEMS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        imagenet = self.stem == "imagenet"
        check_input_size(x, 32 if imagenet else 8, f"densenet{self.depth} ({self.stem} stem)")
        preset_growth, blocks = DENSENET_DEPTHS[self.depth]
        growth = self.growth_rate or preset_growth
        norm, act, init = self.norm_act_init(train, default_init="kaiming_normal")
        kw = dict(use_bias=False, kernel_init=init, dtype=self.dtype)
        x = x.astype(self.dtype)
        k, s = (7, 2) if imagenet else (3, 1)
        x = conv(2 * growth, k, strides=s, padding=k // 2, name="stem_conv", **kw)(x)
        if imagenet:
            x = act(norm(name="stem_norm")(x))
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=[(1, 1), (1, 1)])
        for b, n in enumerate(blocks):
            for i in range(n):
                x = DenseLayer(
                    growth,
                    self.bn_size,
                    self.dropout,
                    norm,
                    act,
                    init,
                    self.dtype,
                    name=f"block{b + 1}_layer{i + 1}",
                )(x, train=train)
            if b < len(blocks) - 1:
                x = act(norm(name=f"transition{b + 1}_norm")(x))
                features = int(x.shape[-1] * self.compression)
                x = conv(features, 1, name=f"transition{b + 1}_conv", **kw)(x)
                x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = act(norm(name="final_norm")(x))
        return self.gap_head(x, train=train, bias_init=nn.initializers.zeros)
