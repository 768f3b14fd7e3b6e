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

from jaxlab.config import ConfigError, check_choice
from jaxlab.nn.activations import get_activation
from jaxlab.nn.conv import GlobalAvgPoolHead, check_input_size
from jaxlab.nn.initializers import get_initializer
from jaxlab.nn.norms import get_norm

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
        y = self.act(self.norm(name="norm1")(x))
        y = nn.Conv(
            self.bn_size * self.growth_rate,
            (1, 1),
            use_bias=False,
            kernel_init=self.kernel_init,
            dtype=self.dtype,
            name="conv1",
        )(y)
        y = self.act(self.norm(name="norm2")(y))
        y = nn.Conv(
            self.growth_rate,
            (3, 3),
            padding=[(1, 1), (1, 1)],
            use_bias=False,
            kernel_init=self.kernel_init,
            dtype=self.dtype,
            name="conv2",
        )(y)
        if self.dropout > 0:
            y = nn.Dropout(self.dropout, deterministic=not train)(y)
        return jnp.concatenate([x, y], axis=-1)


class DenseNet(nn.Module):
    """DenseNet-`depth` (121, 161, 169, 201); `growth_rate` None takes the preset's.

    `stem="imagenet"`: 7x7/2 conv and 3x3/2 max pool (inputs of at least 32x32);
    `stem="cifar"`: one 3x3 conv, no pooling (inputs of at least 8x8, total stride 8).
    """

    depth: int = 121
    num_classes: int = 1000
    growth_rate: int | None = None
    bn_size: int = 4
    compression: float = 0.5
    stem: str = "imagenet"
    dropout: float = 0.0
    norm: str | Callable[..., nn.Module] = "batch"
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    kernel_init: str | Callable[..., jax.Array] | None = None
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    def __post_init__(self) -> None:
        if self.depth not in DENSENET_DEPTHS:
            raise ConfigError(
                f"densenet depth {self.depth} has no preset; valid depths: "
                f"{', '.join(map(str, DENSENET_DEPTHS))}"
            )
        check_choice("densenet stem", self.stem, STEMS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        imagenet = self.stem == "imagenet"
        check_input_size(x, 32 if imagenet else 8, f"densenet{self.depth} ({self.stem} stem)")
        preset_growth, blocks = DENSENET_DEPTHS[self.depth]
        growth = self.growth_rate or preset_growth
        norm = get_norm(
            self.norm,
            train=train,
            axis_name=self.bn_axis_name,
            dtype=self.dtype,
            momentum=self.bn_momentum,
        )
        act = get_activation(self.activation)
        init = get_initializer(self.kernel_init, default="kaiming_normal")
        x = x.astype(self.dtype)
        k, s = (7, 2) if imagenet else (3, 1)
        x = nn.Conv(
            2 * growth,
            (k, k),
            strides=s,
            padding=[(k // 2, k // 2)] * 2,
            use_bias=False,
            kernel_init=init,
            dtype=self.dtype,
            name="stem_conv",
        )(x)
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
                x = nn.Conv(
                    int(x.shape[-1] * self.compression),
                    (1, 1),
                    use_bias=False,
                    kernel_init=init,
                    dtype=self.dtype,
                    name=f"transition{b + 1}_conv",
                )(x)
                x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = act(norm(name="final_norm")(x))
        return GlobalAvgPoolHead(
            self.num_classes, bias_init=nn.initializers.zeros, dtype=self.dtype, name="head"
        )(x, train=train)
