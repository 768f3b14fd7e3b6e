"""MobileNet v1 (Howard et al., 2017: depthwise-separable convolutions) and v2 (Sandler et
al., 2018: inverted residuals with linear bottlenecks, laid out as torchvision's, 3,504,872
parameters at 1000 classes). v1 has 4,231,976 (with its batch norms) at 1000 classes.

`stem="cifar"` keeps stride 1 in the stem conv and in the first downsampling stage (total
stride 8 instead of 32), the usual adaptation to 32x32 images.

Dense prediction (v2): `output_stride` (None: the natural 32, or 8 with the cifar stem)
replaces the stride of every later stride-2 block by dilation of its 3x3 depthwise conv,
as for the ResNets (DeepLabv3, sec. 3.1; TF-slim's `mobilenet_base(output_stride=...)`): a
block whose stride is dropped keeps the current rate, the blocks after it use the rate
multiplied by 2. Dilation adds no parameters. `backbone_features` returns the output of
the 17 inverted-residual blocks (and each block's output by name: DeepLab's low-level
features, `jaxlab.models.deeplab.DeepLabMobileNetV2`).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax

from jaxlab.config import ConfigError, check_choice
from jaxlab.models.base import ConvClassifier
from jaxlab.nn.blocks import ConvNormAct
from jaxlab.nn.conv import check_input_size, conv
from jaxlab.nn.norms import Identity

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


class AtrousConvNormAct(ConvNormAct):
    """`ConvNormAct` with a dilated kernel (padding `dilation * (kernel // 2)`: the map size
    of the undilated conv) and the same layer names (`conv`, `norm`), so a dilated
    backbone loads a classifier's parameters by path. jaxlab.nn's `ConvNormAct` has no
    dilation argument, hence this subclass."""

    dilation: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        has_norm = self.norm is not None and self.norm is not Identity
        x = conv(
            self.features,
            self.kernel_size,
            strides=self.strides,
            padding=self.dilation * (self.kernel_size // 2),
            dilation=self.dilation,
            groups=self.groups,
            use_bias=not has_norm if self.use_bias is None else self.use_bias,
            kernel_init=self.kernel_init,
            dtype=self.dtype,
            name="conv",
        )(x)
        if has_norm:
            x = self.norm(name="norm")(x)  # type: ignore[misc]
        return self.act(x) if self.act is not None else x


def atrous_plan(strides: tuple[int, ...], output_stride: int | None) -> list[tuple[int, int]]:
    """(stride, dilation) of each layer from the layers' natural `strides` (1 or 2) so that
    the total stride stops at `output_stride` (None: never): a layer that would pass it
    runs at stride 1 with the current rate, and the rate doubles for the layers after it.
    ConfigError when `output_stride` is not a total stride the layers reach."""
    reached = [1]
    for s in strides:
        reached.append(reached[-1] * s)
    if output_stride is not None and output_stride not in reached:
        raise ConfigError(
            f"mobilenet_v2 output_stride {output_stride!r} is not reachable; valid: "
            f"{', '.join(map(str, sorted(set(reached))))}"
        )
    out, total, rate = [], 1, 1
    for s in strides:
        if output_stride is not None and s > 1 and total >= output_stride:
            out.append((1, rate))
            rate *= s
        else:
            out.append((s, rate))
            total *= s
    return out


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
    dropout 0.2 and the classifier. ReLU6 activations as in the paper. `output_stride`
    (None: natural) dilates the later blocks instead of striding (module docstring)."""

    dropout: float = 0.2
    activation: str | Callable[[jax.Array], jax.Array] = "relu6"
    output_stride: int | None = None

    def layer_strides(self) -> tuple[int, ...]:
        """The natural stride of the stem and of each of the 17 blocks (the stem's own
        stride-2 layer and the first stride-2 block are stride 1 with the cifar stem)."""
        strides, first_down = [1 if self.stem == "cifar" else 2], True
        for _, _, n, s in V2_BLOCKS:
            for j in range(n):
                stride = s if j == 0 else 1
                if stride == 2 and self.stem == "cifar" and first_down:
                    stride, first_down = 1, False
                strides.append(stride)
        return tuple(strides)

    def backbone_features(
        self, x: jax.Array, *, train: bool, features: dict[str, jax.Array] | None = None
    ) -> tuple[jax.Array, Callable[..., nn.Module]]:
        """The stem and the 17 blocks (call it from a compact method; the parameter names
        are `__call__`'s). Returns (the last block's output, the conv-norm-act factory);
        when `features` is a dict, each block's output is written into it as 'block<i>'."""
        block = self._setup(x, train, "mobilenet_v2")
        norm, act, init = self.norm_act_init(train, default_init="kaiming_normal_fan_out")
        plan = atrous_plan(self.layer_strides(), self.output_stride)
        x = x.astype(self.dtype)
        c = make_divisible(32 * self.width_multiplier)
        x = block(c, 3, plan[0][0], 1, True, "stem")(x)
        index = 0
        for t, f, n, _ in V2_BLOCKS:
            out = make_divisible(f * self.width_multiplier)
            for _ in range(n):
                index += 1
                strides, rate = plan[index]
                y = x
                if t != 1:
                    y = block(c * t, 1, 1, 1, True, f"block{index}_expand")(y)
                name = f"block{index}_depthwise"
                if rate == 1:
                    y = block(c * t, 3, strides, c * t, True, name)(y)
                else:
                    y = AtrousConvNormAct(
                        c * t,
                        3,
                        strides,
                        c * t,
                        norm=norm,
                        act=act,
                        use_bias=False,
                        kernel_init=init,
                        dtype=self.dtype,
                        dilation=rate,
                        name=name,
                    )(y)
                y = block(out, 1, 1, 1, False, f"block{index}_project")(y)
                x = x + y if strides == 1 and c == out else y
                c = out
                if features is not None:
                    features[f"block{index}"] = x
        return x, block

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x, block = self.backbone_features(x, train=train)
        x = block(make_divisible(1280 * max(1.0, self.width_multiplier)), 1, 1, 1, True, "last")(x)
        return self.gap_head(
            x, train=train, dropout=self.dropout, kernel_init=nn.initializers.normal(0.01)
        )
