"""VGG-11/13/16/19 (Simonyan & Zisserman, 2014), with or without batch norm, laid out as
torchvision's (3x3 convs with biases, 2x2 max pools, adaptive 7x7 average pooling, a
4096-4096 classifier with dropout), so vgg16 has 138,357,544 parameters at 1000 classes.

`classifier="gap"` replaces the 7x7 pooling and the two 4096 layers by global average
pooling and one dense layer, the usual head for 32x32 CIFAR images (the "fc" head would
copy a 1x1 map 49 times into a 25088-wide input).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax

from jaxlab.config import check_choice
from jaxlab.models.base import ConvClassifier, check_depth
from jaxlab.nn.blocks import conv_norm_act
from jaxlab.nn.conv import adaptive_avg_pool, check_input_size

# Convs per stage (a 2x2 max pool ends each stage); stage widths are width * (1, 2, 4, 8, 8).
VGG_DEPTHS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
CLASSIFIERS = ("fc", "gap")


class VGG(ConvClassifier):
    """VGG-`depth`; inputs of at least 32x32 (five 2x2 max pools). `norm="batch"` gives the
    `_bn` variants (BN after each conv, the conv keeping its bias as in torchvision).
    `kernel_init` None is torchvision's (Kaiming normal, fan_out)."""

    dropout: float = 0.5
    norm: str | Callable[..., nn.Module] = "none"
    depth: int = 16
    width: int = 64
    classifier: str = "fc"
    fc_width: int = 4096

    def __post_init__(self) -> None:
        check_depth("vgg", self.depth, VGG_DEPTHS)
        check_choice("vgg classifier", self.classifier, CLASSIFIERS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        check_input_size(x, 32, f"vgg{self.depth}")
        norm, act, init = self.norm_act_init(train, default_init="kaiming_normal_fan_out")
        x = x.astype(self.dtype)
        for s, n in enumerate(VGG_DEPTHS[self.depth]):
            for c in range(n):
                x = conv_norm_act(
                    x,
                    self.width * min(2**s, 8),
                    3,
                    norm=norm,
                    act=act,
                    use_bias=True,
                    kernel_init=init,
                    dtype=self.dtype,
                    conv_name=f"conv{s + 1}_{c + 1}",
                    norm_name=f"norm{s + 1}_{c + 1}",
                )
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        if self.classifier == "gap":
            return self.gap_head(x, train=train, dropout=self.dropout)
        x = adaptive_avg_pool(x, 7).reshape(x.shape[0], -1)
        for i in (1, 2):
            x = act(nn.Dense(self.fc_width, dtype=self.dtype, name=f"fc{i}")(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
