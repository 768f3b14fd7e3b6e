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
import jax.numpy as jnp

from jaxlab.config import ConfigError, check_choice
from jaxlab.nn.activations import get_activation
from jaxlab.nn.conv import GlobalAvgPoolHead, adaptive_avg_pool, check_input_size
from jaxlab.nn.initializers import get_initializer
from jaxlab.nn.norms import get_norm

# Convs per stage (a 2x2 max pool ends each stage); stage widths are width * (1, 2, 4, 8, 8).
VGG_DEPTHS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
CLASSIFIERS = ("fc", "gap")


class VGG(nn.Module):
    """VGG-`depth`; inputs of at least 32x32 (five 2x2 max pools). `norm="batch"` gives the
    `_bn` variants (BN after each conv, the conv keeping its bias as in torchvision).
    `kernel_init` None is torchvision's (Kaiming normal, fan_out)."""

    depth: int = 16
    num_classes: int = 1000
    width: int = 64
    classifier: str = "fc"
    fc_width: int = 4096
    dropout: float = 0.5
    norm: str | Callable[..., nn.Module] = "none"
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    kernel_init: str | Callable[..., jax.Array] | None = None
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    def __post_init__(self) -> None:
        if self.depth not in VGG_DEPTHS:
            raise ConfigError(
                f"vgg depth {self.depth} has no preset; "
                f"valid depths: {', '.join(map(str, VGG_DEPTHS))}"
            )
        check_choice("vgg classifier", self.classifier, CLASSIFIERS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        check_input_size(x, 32, f"vgg{self.depth}")
        norm = get_norm(
            self.norm,
            train=train,
            axis_name=self.bn_axis_name,
            dtype=self.dtype,
            momentum=self.bn_momentum,
        )
        act = get_activation(self.activation)
        init = get_initializer(self.kernel_init, default="kaiming_normal_fan_out")
        x = x.astype(self.dtype)
        for s, n in enumerate(VGG_DEPTHS[self.depth]):
            for c in range(n):
                x = nn.Conv(
                    self.width * min(2**s, 8),
                    (3, 3),
                    padding=[(1, 1), (1, 1)],
                    kernel_init=init,
                    dtype=self.dtype,
                    name=f"conv{s + 1}_{c + 1}",
                )(x)
                x = act(norm(name=f"norm{s + 1}_{c + 1}")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        if self.classifier == "gap":
            return GlobalAvgPoolHead(
                self.num_classes, dropout=self.dropout, dtype=self.dtype, name="head"
            )(x, train=train)
        x = adaptive_avg_pool(x, 7).reshape(x.shape[0], -1)
        for i in (1, 2):
            x = act(nn.Dense(self.fc_width, dtype=self.dtype, name=f"fc{i}")(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
