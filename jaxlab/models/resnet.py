"""Residual networks: ImageNet ResNet-18..152 (He et al., 2015) with ResNeXt (Xie et al.,
2017) and wide (Zagoruyko & Komodakis, 2016) variants, the CIFAR ResNets of He et al. (2015,
sec. 4.2) with their plain twins, pre-activation ResNets (He et al., 2016) and Fixup
(Zhang et al., 2019) for training without normalization.

One `ResNet` class; `variant` picks the stem, the stage widths and the rule that maps
`depth` to blocks:

- `imagenet`: 7x7/2 conv, 3x3/2 max pool, four stages of width 64..512 (x4 for bottleneck
  blocks); depth 18, 34 (basic) or 50, 101, 152 (bottleneck); projection (1x1 conv + norm)
  shortcuts where the shape changes. Layout and parameter counts equal torchvision's
  (stride on the 3x3 conv of the bottleneck, "v1.5").
- `cifar`: 3x3 conv, three stages of width 16/32/64; depth 6n+2 (basic blocks) or 9n+2
  (`block="bottleneck"`); option-A shortcuts by default (stride-2 subsampling plus
  zero-padded channels: no parameters). `shortcut="none"` gives the plain nets.
- `wide`: WRN-d-k: pre-activation basic blocks of width 16k/32k/64k, depth 6n+4,
  `widen_factor` k, optional `dropout` between the two convolutions.

`kernel_init="fixup"` (with `norm="none"`) builds Fixup: scalar biases around every conv
and activation, a scalar multiplier per branch, the last conv of each branch and the
classifier zero-initialized, the other branch convs He-initialized and scaled by
L^(-1/(2m-2)). At initialization every residual block is then the identity.

Dense prediction: `replace_stride_with_dilation` turns the stride of later stages into
dilation of their 3x3 convs (output stride 8 or 16 instead of 32, as torchvision), and
`backbone_features` returns the stem and stage outputs (DeepLab, `jaxlab.models.deeplab`).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError, check_choice
from jaxlab.models.base import ConvClassifier, check_depth
from jaxlab.nn.conv import check_input_size, conv
from jaxlab.nn.initializers import FixupBias, FixupScale, fixup_kernel_init, kaiming
from jaxlab.nn.regularizers import StochasticDepth, stochastic_depth_rates

IMAGENET_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
VARIANTS = ("imagenet", "cifar", "wide")
SHORTCUTS = ("projection", "zero_pad", "none")
BLOCKS = ("basic", "bottleneck")


def zero_pad_shortcut(x: jax.Array, features: int, strides: int) -> jax.Array:
    """Option-A shortcut (He et al., 2015): subsample by `strides`, then zero-pad the channels
    (half on each side, as the reference CIFAR code) up to `features`. No parameters."""
    x = x[:, ::strides, ::strides, :]
    extra = features - x.shape[-1]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


class ResidualBlock(nn.Module):
    """A basic (3x3, 3x3) or bottleneck (1x1, 3x3 grouped, 1x1 to 4x) residual block,
    post-activation (conv-norm-act, add, act) or pre-activation (norm-act-conv, add).

    `norm` is a factory from `jaxlab.nn.get_norm`; `fixup_branches` (the number of residual
    branches L in the net) switches on Fixup's scalar biases and scale and its init.
    """

    features: int  # "planes": the output width is features (basic) or 4 * features
    strides: int = 1
    bottleneck: bool = False
    shortcut: str = "projection"
    preact: bool = False
    groups: int = 1
    width_per_group: int = 64
    dropout: float = 0.0
    drop_path: float = 0.0
    dilation: int = 1  # of the 3x3 convs (atrous; `ResNet.replace_stride_with_dilation`)
    norm: Callable[..., nn.Module] = nn.BatchNorm
    act: Callable[[jax.Array], jax.Array] = nn.relu
    kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
    fixup_branches: int | None = None
    dtype: jnp.dtype = jnp.float32

    def _plan(self) -> list[tuple[int, int, int, int]]:
        """(kernel, features, strides, groups) of each conv of the branch."""
        if not self.bottleneck:
            return [(3, self.features, self.strides, 1), (3, self.features, 1, 1)]
        width = int(self.features * (self.width_per_group / 64.0)) * self.groups
        if width < 1:
            raise ConfigError(
                f"bottleneck width int({self.features} * {self.width_per_group} / 64) * "
                f"{self.groups} "
                "is 0; raise width or width_per_group"
            )
        return [
            (1, width, 1, 1),
            (3, width, self.strides, self.groups),
            (1, 4 * self.features, 1, 1),
        ]

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        plan = self._plan()
        out_features = plan[-1][1]
        fixup = self.fixup_branches is not None
        branch_init = (
            fixup_kernel_init(self.fixup_branches, len(plan)) if fixup else self.kernel_init
        )
        y = shortcut_in = x
        for i, (k, f, s, g) in enumerate(plan):
            last = i == len(plan) - 1
            if self.preact:
                y = self.act(self.norm(name=f"norm{i + 1}")(y))
            if fixup:
                y = FixupBias(name=f"bias{i + 1}a")(y)
            if i == 0 and (self.preact or fixup):
                shortcut_in = y  # projections see the pre-activated (or Fixup-biased) input
            if i > 0 and self.dropout > 0:
                y = nn.Dropout(self.dropout, deterministic=not train)(y)
            init = nn.initializers.zeros if fixup and last else branch_init
            rate = self.dilation if k > 1 else 1
            y = conv(
                f,
                k,
                strides=s,
                padding=rate * (k // 2),
                dilation=rate,
                groups=g,
                use_bias=False,
                kernel_init=init,
                dtype=self.dtype,
                name=f"conv{i + 1}",
            )(y)
            if not self.preact:
                y = self.norm(name=f"norm{i + 1}")(y)
                if fixup and last:
                    y = FixupScale(name="scale")(y)
                if fixup:
                    y = FixupBias(name=f"bias{i + 1}b")(y)
                if not last:
                    y = self.act(y)
        if self.shortcut == "none":
            return y if self.preact else self.act(y)
        if self.strides != 1 or x.shape[-1] != out_features:
            if self.shortcut == "zero_pad":
                residual = zero_pad_shortcut(shortcut_in, out_features, self.strides)
            else:
                residual = conv(
                    out_features,
                    1,
                    strides=self.strides,
                    use_bias=False,
                    kernel_init=self.kernel_init,
                    dtype=self.dtype,
                    name="shortcut_conv",
                )(shortcut_in)
                if not self.preact:
                    residual = self.norm(name="shortcut_norm")(residual)
        else:
            residual = x
        if self.drop_path > 0:
            y = StochasticDepth(self.drop_path)(y, deterministic=not train)
        y = y + residual
        return y if self.preact else self.act(y)


def dilation_plan(flags: tuple[bool, ...], num_stages: int) -> list[tuple[int, int, int]]:
    """(stride of the first block, dilation of the first block, dilation of the others) per
    stage from one flag per stage after the first (() = no dilation): a flagged stage keeps
    the resolution and multiplies the dilation by the stride it drops; its first block keeps
    the previous dilation (torchvision's replace_stride_with_dilation rule)."""
    if flags and len(flags) != num_stages - 1:
        raise ConfigError(
            f"resnet replace_stride_with_dilation needs {num_stages - 1} flags (one per "
            f"stage after the first), got {flags!r}"
        )
    out, dilation = [], 1
    for i, dilate in enumerate((False, *(flags or (False,) * (num_stages - 1)))):
        stride, previous = (1 if i == 0 else 2), dilation
        if dilate:
            dilation, stride = dilation * stride, 1
        out.append((stride, previous, dilation))
    return out


class ResNet(ConvClassifier):
    """A residual network (see the module docstring for the variants and depth rules).

    Fields: `width` is the stem and first-stage width (None: 64 imagenet, 16 cifar/wide),
    doubled per stage and multiplied by `widen_factor`; `groups`/`width_per_group` make
    bottlenecks ResNeXt (32 and 4 for resnext50_32x4d); `stochastic_depth` is the drop rate
    of the last block (linearly less for earlier ones); `dropout` sits between a block's
    convs (WRN). `kernel_init` None is PyTorch's ResNet init (Kaiming normal, fan_out).
    """

    depth: int = 50
    variant: str = "imagenet"
    block: str | None = None
    shortcut: str | None = None
    preact: bool = False
    width: int | None = None
    widen_factor: int = 1
    groups: int = 1
    width_per_group: int = 64
    stochastic_depth: float = 0.0
    # One flag per stage after the first (3 imagenet, 2 cifar/wide): that stage keeps the
    # resolution and dilates its 3x3 convs instead of striding (torchvision's
    # replace_stride_with_dilation; output stride 8 with (False, True, True)). () = none.
    replace_stride_with_dilation: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        self.plan()  # fail at construction (get_model) on a bad depth, variant, block, shortcut
        super().__post_init__()

    def plan(self) -> tuple[bool, tuple[int, ...], str]:
        """Returns (bottleneck?, blocks per stage, shortcut kind) or raises ConfigError."""
        check_choice("resnet variant", self.variant, VARIANTS)
        if self.block is not None:
            check_choice("resnet block", self.block, BLOCKS)
        shortcut = self.shortcut or ("zero_pad" if self.variant == "cifar" else "projection")
        check_choice("resnet shortcut", shortcut, SHORTCUTS)
        if self.kernel_init == "fixup" and (self.norm != "none" or shortcut == "none"):
            raise ConfigError(
                "kernel_init 'fixup' is for residual networks without normalization; set "
                f"norm='none' and keep the shortcuts, got norm={self.norm!r}, shortcut={shortcut!r}"
            )
        if self.stochastic_depth > 0 and shortcut == "none":
            raise ConfigError(
                "stochastic_depth needs residual shortcuts; the plain net (shortcut='none') "
                "has none"
            )
        d = self.depth
        if self.variant == "imagenet":
            check_depth("resnet", d, IMAGENET_DEPTHS)
            block, stages = IMAGENET_DEPTHS[d]
            return (self.block or block) == "bottleneck", stages, shortcut
        if self.variant == "wide":
            if d < 10 or (d - 4) % 6:
                raise ConfigError(
                    f"wide resnet depth {d} has no preset; valid depths: 6n+4 (10, 16, 22, 28, 40)"
                )
            return False, ((d - 4) // 6,) * 3, shortcut
        if self.block == "bottleneck":
            if d < 11 or (d - 2) % 9:
                raise ConfigError(
                    f"cifar resnet depth {d} with bottleneck blocks has no preset; "
                    "valid depths: 9n+2 (164, 1001)"
                )
            return True, ((d - 2) // 9,) * 3, shortcut
        if d < 8 or (d - 2) % 6:
            raise ConfigError(
                f"cifar resnet depth {d} has no preset; "
                "valid depths: 6n+2 (20, 32, 44, 56, 110, 1202)"
            )
        return False, ((d - 2) // 6,) * 3, shortcut

    def stage_dilations(self, num_stages: int) -> list[tuple[int, int, int]]:
        """`dilation_plan` of the `replace_stride_with_dilation` flags."""
        return dilation_plan(tuple(self.replace_stride_with_dilation), num_stages)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x, norm, act, fixup = self.backbone_features(x, train=train)
        if fixup:
            x = FixupBias(name="head_bias")(x)
        head_init = nn.initializers.zeros if fixup else nn.initializers.lecun_normal()
        return self.gap_head(x, train=train, kernel_init=head_init)

    def backbone_features(
        self, x: jax.Array, *, train: bool, features: dict[str, jax.Array] | None = None
    ) -> tuple[jax.Array, Callable[..., nn.Module], Callable[[jax.Array], jax.Array], bool]:
        """The network up to (not including) the classifier head, with the same parameter
        names as `__call__` (call it from a compact method: dense-prediction heads such as
        DeepLab subclass ResNet so a classifier's parameters load by path). Returns (last
        feature map, norm factory, activation, fixup?); when `features` is a dict, the
        outputs of the stem ('stem') and of each stage ('stage1'...) are written into it."""
        bottleneck, stages, shortcut = self.plan()
        imagenet = self.variant == "imagenet"
        check_input_size(x, 32 if imagenet else 4, f"resnet ({self.variant}, depth {self.depth})")
        fixup = self.kernel_init == "fixup"
        preact = self.preact or self.variant == "wide"
        norm, act, init = self.norm_act_init(
            train,
            default_init="kaiming_normal_fan_out",
            kernel_init=kaiming("fan_in") if fixup else None,
        )
        base = self.width or (64 if imagenet else 16)

        x = x.astype(self.dtype)
        k, s = (7, 2) if imagenet else (3, 1)
        x = conv(
            base,
            k,
            strides=s,
            padding=k // 2,
            use_bias=False,
            kernel_init=init,
            dtype=self.dtype,
            name="stem_conv",
        )(x)
        if not preact:
            x = norm(name="stem_norm")(x)
            x = act(FixupBias(name="stem_bias")(x) if fixup else x)
        if imagenet:
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=[(1, 1), (1, 1)])
        if features is not None:
            features["stem"] = x

        num_blocks = sum(stages)
        rates = stochastic_depth_rates(num_blocks, self.stochastic_depth)
        dilations = self.stage_dilations(len(stages))
        index = 0
        for i, n in enumerate(stages):
            first_stride, first_dilation, dilation = dilations[i]
            for j in range(n):
                x = ResidualBlock(
                    features=base * self.widen_factor * 2**i,
                    strides=first_stride if j == 0 else 1,
                    dilation=first_dilation if j == 0 else dilation,
                    bottleneck=bottleneck,
                    shortcut=shortcut,
                    preact=preact,
                    groups=self.groups,
                    width_per_group=self.width_per_group,
                    dropout=self.dropout,
                    drop_path=rates[index],
                    norm=norm,
                    act=act,
                    kernel_init=init,
                    fixup_branches=num_blocks if fixup else None,
                    dtype=self.dtype,
                    name=f"stage{i + 1}_block{j + 1}",
                )(x, train=train)
                index += 1
            if features is not None:
                features[f"stage{i + 1}"] = x
        if preact:
            x = act(norm(name="final_norm")(x))
        return x, norm, act, fixup
