"""MobileNet v1 (Howard et al., 2017: depthwise-separable convolutions) and v2 (Sandler et
al., 2018: inverted residuals with linear bottlenecks, laid out as torchvision's, 3,504,872
parameters at 1000 classes). v1 has 4,231,976 (with its batch norms) at 1000 classes.

`stem="cifar"` keeps stride 1 in the stem conv and in the first downsampling stage (total
stride 8 instead of 32), the usual adaptation to 32x32 images.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax

from jaxlab.config import check_choice
from jaxlab.models.base import ConvClassifier
from jaxlab.nn.blocks import ConvNormAct
from jaxlab.nn.conv import check_input_size

STEMS = ("imagenet", "cifar")
# MobileNet v1: (output channels, stride) of each depthwise-separable block.
V1_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *[(512, 1)] * 5,
    (1024, 2),
    (1024, 1),
)
# MobileNet v2: (expansion t, output channels c, repeats n, first stride s).
V2_BLOCKS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Rounds a width to the nearest multiple of `divisor`, never below 90% of `v`
    (torchvision's `_make_divisible`, so width multipliers give the same layers)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class _MobileNetBase(ConvClassifier):
    """The fields and the conv - norm - act unit of both versions."""

    stem: str = "imagenet"
    width_multiplier: float = 1.0

    def _setup(self, x: jax.Array, train: bool, model: str) -> Callable[..., nn.Module]:
        check_choice(f"{model} stem", self.stem, STEMS)
        check_input_size(x, 32 if self.stem == "imagenet" else 8, f"{model} ({self.stem} stem)")
        norm, act, init = self.norm_act_init(train, default_init="kaiming_normal_fan_out")

        def block(features: int, kernel: int, strides: int, groups: int, act_: bool, name: str):
            """conv (no bias, symmetric padding) - norm - activation if `act_`."""
            return ConvNormAct(
                features,
                kernel,
                strides,
                groups,
                norm=norm,
                act=act if act_ else None,
                use_bias=False,
                kernel_init=init,
                dtype=self.dtype,
                name=name,
            )

        return block


class MobileNetV1(_MobileNetBase):
    """MobileNet v1: a 3x3/2 conv then 13 depthwise-separable blocks (3x3 depthwise - norm -
    act - 1x1 pointwise - norm - act); `width_multiplier` (alpha) scales every width."""

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        block = self._setup(x, train, "mobilenet_v1")
        cifar = self.stem == "cifar"
        x = x.astype(self.dtype)
        c = int(32 * self.width_multiplier)
        x = block(c, 3, 1 if cifar else 2, 1, True, "stem")(x)
        first_down = True
        for i, (f, s) in enumerate(V1_BLOCKS):
            if s == 2 and cifar and first_down:
                s, first_down = 1, False
            x = block(c, 3, s, c, True, f"block{i + 1}_depthwise")(x)
            c = int(f * self.width_multiplier)
            x = block(c, 1, 1, 1, True, f"block{i + 1}_pointwise")(x)
        return self.gap_head(x, train=train, dropout=self.dropout)


class MobileNetV2(_MobileNetBase):
    """MobileNet v2: a 3x3/2 conv, 17 inverted residual blocks (1x1 expand by t - 3x3
    depthwise - 1x1 linear projection; residual when the shape is kept), a 1x1 conv to 1280,
    dropout 0.2 and the classifier. ReLU6 activations as in the paper."""

    dropout: float = 0.2
    activation: str | Callable[[jax.Array], jax.Array] = "relu6"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        block = self._setup(x, train, "mobilenet_v2")
        cifar = self.stem == "cifar"
        x = x.astype(self.dtype)
        c = make_divisible(32 * self.width_multiplier)
        x = block(c, 3, 1 if cifar else 2, 1, True, "stem")(x)
        index, first_down = 0, True
        for t, f, n, s in V2_BLOCKS:
            out = make_divisible(f * self.width_multiplier)
            for j in range(n):
                strides = s if j == 0 else 1
                if strides == 2 and cifar and first_down:
                    strides, first_down = 1, False
                index += 1
                y = x
                if t != 1:
                    y = block(c * t, 1, 1, 1, True, f"block{index}_expand")(y)
                y = block(c * t, 3, strides, c * t, True, f"block{index}_depthwise")(y)
                y = block(out, 1, 1, 1, False, f"block{index}_project")(y)
                x = x + y if strides == 1 and c == out else y
                c = out
        x = block(make_divisible(1280 * max(1.0, self.width_multiplier)), 1, 1, 1, True, "last")(x)
        return self.gap_head(
            x, train=train, dropout=self.dropout, kernel_init=nn.initializers.normal(0.01)
        )
