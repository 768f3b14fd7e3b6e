"""DeepLabv3 (Chen et al., 2017) and DeepLabv3+ (Chen et al., 2018) on the zoo's ResNets
and MobileNetV2.

`DeepLab` subclasses `ResNet`: the backbone is the ResNet's own layers under their own
parameter names (`stem_conv`, `stage1_block1`, ...), so a classifier trained with
`configs/*_resnet*.py` loads into it by path (`config.init_from`; the segmentation layers
are all named `head_*` and re-created by the default `init_head='head'`).

- Output stride: `output_stride` (8 or 16 for the ImageNet ResNets, whose natural stride
  is 32; 1, 2 or 4 for the CIFAR/wide ones, natural 4) replaces the stride of the last
  stages by dilation (`ResNet.replace_stride_with_dilation`).
- ASPP (`head_aspp`): a 1x1 conv, three 3x3 convs dilated at `atrous_rates` (default
  (6, 12, 18) at output stride 16, scaled by 16 / output_stride: (12, 24, 36) at 8), and
  image pooling (global average, 1x1 conv, broadcast back); each conv-BN-ReLU with
  `aspp_features` channels; concatenated, projected by a 1x1 conv-BN-ReLU, dropout.
- DeepLabv3 (`decoder=False`): ASPP, a 3x3 conv-BN-ReLU (`head_conv`), the 1x1 classifier
  (`head_classifier`, with bias), bilinear upsampling to the input size. With depth 50 and
  21 classes this is torchvision's `deeplabv3_resnet50` without its auxiliary head:
  39,638,869 parameters.
- DeepLabv3+ (`decoder=True`): the low-level features (`low_level_stage`, stride 4) reduced
  by a 1x1 conv-BN-ReLU to `low_level_features` (48) channels; the ASPP output upsampled
  bilinearly to their size and concatenated; two depthwise-separable 3x3 convs (depthwise,
  pointwise, BN, ReLU) of `decoder_features` channels; the classifier; bilinear
  upsampling. Its decoder has C_low*48 + 2*48 + sum_i (9*C_i + C_i*F + 2F) parameters with
  C_1 = aspp_features + 48, C_2 = F = decoder_features (`decoder_param_count`).

MobileNetV2 (`DeepLabMobileNetV2`, registered as `deeplabv3_mobilenet_v2` and
`deeplabv3plus_mobilenet_v2`): the same head (`deeplab_head`) on the zoo's MobileNetV2
blocks at `output_stride` (16 or 8 with the ImageNet stem; the later stride-2 blocks
dilated, `MobileNetV2.output_stride`), without its 1x1 conv to 1280 and classifier; the
low-level features are block `low_level_block`'s output (3: stride 4, 24 channels).

Resize convention: `upsample_bilinear` (jax.image.resize, half-pixel centres, i.e.
PyTorch's align_corners=False) everywhere, in training and evaluation alike; label maps
are never resized by the model (logits are upsampled to the label size).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.config import ConfigError
from jaxlab.models.mobilenet import MobileNetV2
from jaxlab.models.resnet import ResNet, dilation_plan
from jaxlab.nn.conv import SeparableConv, conv

ASPP_RATES_OS16 = (6, 12, 18)
NATURAL_STRIDE = {"imagenet": 32, "cifar": 4, "wide": 4}


def upsample_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """NHWC maps resized to `size` (H, W) bilinearly with half-pixel centres (PyTorch's
    align_corners=False): the one resize convention of the segmentation models."""
    if tuple(x.shape[1:3]) == tuple(size):
        return x
    return jax.image.resize(x, (x.shape[0], *size, x.shape[-1]), "bilinear")


def decoder_param_count(low_channels: int, aspp_features: int, low: int, features: int) -> int:
    """Closed form of the DeepLabv3+ decoder's parameters (1x1 reduction without bias + BN,
    two depthwise-separable 3x3 convs without bias + BN; see the module docstring)."""
    reduce = low_channels * low + 2 * low
    c1 = aspp_features + low
    sep1 = 9 * c1 + c1 * features + 2 * features
    sep2 = 9 * features + features * features + 2 * features
    return reduce + sep1 + sep2


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (see the module docstring)."""

    features: int = 256
    rates: tuple[int, ...] = ASPP_RATES_OS16
    dropout: float = 0.5
    norm: Callable[..., nn.Module] = nn.BatchNorm
    act: Callable[[jax.Array], jax.Array] = nn.relu
    kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        def branch(y: jax.Array, kernel: int, rate: int, name: str) -> jax.Array:
            y = conv(
                self.features,
                kernel,
                padding=rate * (kernel // 2),
                dilation=rate,
                use_bias=False,
                kernel_init=self.kernel_init,
                dtype=self.dtype,
                name=f"{name}_conv",
            )(y)
            return self.act(self.norm(name=f"{name}_norm")(y))

        outs = [branch(x, 1, 1, "branch0")]
        outs += [branch(x, 3, r, f"branch{i + 1}") for i, r in enumerate(self.rates)]
        pooled = branch(jnp.mean(x, axis=(1, 2), keepdims=True), 1, 1, "pool")
        outs.append(jnp.broadcast_to(pooled, (*x.shape[:3], self.features)))
        y = branch(jnp.concatenate(outs, axis=-1), 1, 1, "project")
        return nn.Dropout(self.dropout, deterministic=not train)(y)


class DeepLab(ResNet):
    """DeepLabv3 / DeepLabv3+ on a ResNet backbone (see the module docstring).

    `__call__(x, train=...)` returns logits [N, H, W, num_classes] at the input's size.
    The ResNet fields choose the backbone (`depth`, `variant`, `width`, `norm`, ...);
    `replace_stride_with_dilation` must stay empty (`output_stride` sets it).
    """

    output_stride: int = 16
    atrous_rates: tuple[int, ...] | None = None
    aspp_features: int = 256
    aspp_dropout: float = 0.5
    decoder: bool = True
    low_level_stage: int = 1
    low_level_features: int = 48
    decoder_features: int = 256

    def dilation_flags(self) -> tuple[bool, ...]:
        """The backbone's replace_stride_with_dilation flags for `output_stride`, or
        ConfigError listing the strides this variant reaches."""
        natural = NATURAL_STRIDE[self.variant]
        num_later = len(self.plan()[1]) - 1  # stages after the first (each stride 2)
        valid = [natural // 2**k for k in range(num_later + 1)]
        if self.output_stride not in valid:
            raise ConfigError(
                f"deeplab output_stride {self.output_stride!r} is not reachable by the "
                f"{self.variant} resnet; valid: {', '.join(map(str, valid))}"
            )
        k = valid.index(self.output_stride)  # the last k stages are dilated
        return (False,) * (num_later - k) + (True,) * k

    def stage_dilations(self, num_stages: int) -> list[tuple[int, int, int]]:
        if self.replace_stride_with_dilation:
            raise ConfigError(
                "deeplab sets the backbone's dilation from output_stride; leave "
                "replace_stride_with_dilation empty"
            )
        return dilation_plan(self.dilation_flags(), num_stages)

    def rates(self) -> tuple[int, ...]:
        """The ASPP dilation rates (`scaled_rates`)."""
        return scaled_rates(self.atrous_rates, self.output_stride)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        feats: dict[str, jax.Array] = {}
        y, norm, act, _ = self.backbone_features(x, train=train, features=feats)
        low = None
        if self.decoder:
            low = pick_low_level(feats, f"stage{self.low_level_stage}", "low_level_stage")
        return deeplab_head(self, y, low, x.shape[1:3], norm, act, train=train)


def pick_low_level(feats: dict[str, jax.Array], key: str, field: str) -> jax.Array:
    """The backbone feature map `key` for the decoder, or ConfigError listing the valid ones."""
    if key not in feats:
        prefix = key.rstrip("0123456789")
        raise ConfigError(
            f"deeplab {field} {key[len(prefix) :]} does not exist; valid: "
            f"{', '.join(k[len(prefix) :] for k in feats if k.startswith(prefix))}"
        )
    return feats[key]


def deeplab_head(
    m: nn.Module,
    y: jax.Array,
    low: jax.Array | None,
    size: tuple[int, int],
    norm: Callable[..., nn.Module],
    act: Callable[[jax.Array], jax.Array],
    *,
    train: bool,
) -> jax.Array:
    """ASPP, then the v3+ decoder on `low` (or v3's 3x3 conv when `low` is None), the
    classifier and the upsampling to `size`: the layers after the backbone, shared by the
    ResNet and MobileNetV2 DeepLabs. Call it from `m`'s compact `__call__` (the layers,
    all named `head_*`, become `m`'s submodules); `m` has the DeepLab head fields."""
    init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
    y = ASPP(
        m.aspp_features,
        m.rates(),
        m.aspp_dropout,
        norm=norm,
        act=act,
        kernel_init=init,
        dtype=m.dtype,
        name="head_aspp",
    )(y, train=train)
    if low is not None:
        low = conv(
            m.low_level_features,
            1,
            use_bias=False,
            kernel_init=init,
            dtype=m.dtype,
            name="head_decoder_reduce_conv",
        )(low)
        low = act(norm(name="head_decoder_reduce_norm")(low))
        y = jnp.concatenate([upsample_bilinear(y, low.shape[1:3]), low], axis=-1)
        for i in range(2):
            y = SeparableConv(
                m.decoder_features,
                3,
                use_bias=False,
                kernel_init=init,
                dtype=m.dtype,
                name=f"head_decoder_sep{i + 1}",
            )(y)
            y = act(norm(name=f"head_decoder_sep{i + 1}_norm")(y))
    else:
        y = conv(
            m.aspp_features,
            3,
            padding=1,
            use_bias=False,
            kernel_init=init,
            dtype=m.dtype,
            name="head_conv",
        )(y)
        y = act(norm(name="head_conv_norm")(y))
    logits = conv(m.num_classes, 1, dtype=m.dtype, name="head_classifier")(y)
    return upsample_bilinear(logits, size).astype(jnp.float32)


def scaled_rates(atrous_rates: tuple[int, ...] | None, output_stride: int) -> tuple[int, ...]:
    """`atrous_rates`, else the paper's (6, 12, 18) at output stride 16 scaled by
    16 / output_stride (at least 1)."""
    if atrous_rates is not None:
        return tuple(int(r) for r in atrous_rates)
    return tuple(max(1, r * 16 // output_stride) for r in ASPP_RATES_OS16)


class DeepLabMobileNetV2(MobileNetV2):
    """DeepLabv3 / v3+ on the zoo's MobileNetV2 (`stem`, `width_multiplier`, `norm`, ...):
    the backbone's 17 inverted-residual blocks at `output_stride` (later blocks dilated,
    `MobileNetV2.output_stride`; default 16), without its 1x1 conv to 1280 and classifier;
    ASPP on the last block's output (320 * width channels); the decoder's low-level
    features are the output of block `low_level_block` (default 3: the last block at
    stride 4 with the ImageNet stem, 24 channels; stride 1 with the cifar stem). Parameter
    names are the classifier's (`stem`, `block<i>_*`), so `init_from` loads it; the head
    layers are DeepLab's `head_*`. Returns logits [N, H, W, num_classes] at the input size.
    """

    output_stride: int | None = 16
    atrous_rates: tuple[int, ...] | None = None
    aspp_features: int = 256
    aspp_dropout: float = 0.5
    decoder: bool = True
    low_level_block: int = 3
    low_level_features: int = 48
    decoder_features: int = 256

    def rates(self) -> tuple[int, ...]:
        """The ASPP dilation rates (`scaled_rates`)."""
        natural = int(np.prod(self.layer_strides()))
        return scaled_rates(self.atrous_rates, self.output_stride or natural)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        feats: dict[str, jax.Array] = {}
        y, _ = self.backbone_features(x, train=train, features=feats)
        norm, act, _ = self.norm_act_init(train, default_init="kaiming_normal_fan_out")
        low = None
        if self.decoder:
            low = pick_low_level(feats, f"block{self.low_level_block}", "low_level_block")
        return deeplab_head(self, y, low, x.shape[1:3], norm, act, train=train)
