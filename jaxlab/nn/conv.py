"""Convolution and pooling helpers: padding modes (valid, same, full, or PyTorch's symmetric
integer padding), output sizes, grouped and depthwise-separable convolutions, adaptive and
global average pooling, a global-average-pooling classifier head, and the input-size check
that every conv net runs first.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError
from jaxlab.nn.initializers import Initializer, get_initializer

PADDING_MODES = ("valid", "same", "full")
Padding = str | int | Sequence[tuple[int, int]]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def conv_padding(
    padding: Padding, kernel_size: int | Sequence[int], dilation: int | Sequence[int] = 1
) -> str | list[tuple[int, int]]:
    """Translates a padding spec into flax's: `"valid"` (none: out = in - k_eff + 1),
    `"same"` (out = ceil(in / stride)), `"full"` (k_eff - 1 on each side: every partial
    overlap, out = in + k_eff - 1), an int p (PyTorch's padding=p on every side) or explicit
    (low, high) pairs. k_eff = (k - 1) * dilation + 1."""
    if isinstance(padding, int):
        return [(padding, padding)] * len(_pair(kernel_size))
    if not isinstance(padding, str):
        return [tuple(p) for p in padding]  # type: ignore[misc]
    mode = padding.lower()
    if mode == "valid":
        return "VALID"
    if mode == "same":
        return "SAME"
    if mode == "full":
        eff = [(k - 1) * d + 1 for k, d in zip(_pair(kernel_size), _pair(dilation), strict=True)]
        return [(e - 1, e - 1) for e in eff]
    raise ConfigError(
        f"unknown padding {padding!r}; valid choices: {', '.join(PADDING_MODES)}, an int"
    )


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: str | int = "valid", dilation: int = 1
) -> int:
    """The output length of a convolution or pooling along one axis, for a padding mode or a
    symmetric integer padding."""
    eff = (kernel_size - 1) * dilation + 1
    if padding == "same":
        return -(-size // stride)
    pad = (
        {"valid": 0, "full": 2 * (eff - 1)}.get(padding)
        if isinstance(padding, str)
        else 2 * padding
    )
    if pad is None:
        raise ConfigError(
            f"unknown padding {padding!r}; valid choices: {', '.join(PADDING_MODES)}, an int"
        )
    return (size + pad - eff) // stride + 1


def conv(
    features: int,
    kernel_size: int | Sequence[int],
    *,
    strides: int | Sequence[int] = 1,
    padding: Padding = "same",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    use_bias: bool = True,
    kernel_init: str | Initializer | None = None,
    dtype: jnp.dtype = jnp.float32,
    name: str | None = None,
) -> nn.Conv:
    """A 2-D `nn.Conv` from PyTorch-like arguments: a padding mode or int, dilation (atrous),
    `groups` (grouped convolution: each of `groups` slices of the input channels feeds its
    own slice of the outputs; groups = channels is depthwise). Must be called inside a
    compact method (the conv becomes a submodule there)."""
    if groups < 1 or features % groups:
        raise ConfigError(
            f"grouped conv: {features} output channels do not divide into {groups} groups"
        )
    return nn.Conv(
        features,
        _pair(kernel_size),
        strides=_pair(strides),
        padding=conv_padding(padding, kernel_size, dilation),
        kernel_dilation=_pair(dilation),
        feature_group_count=groups,
        use_bias=use_bias,
        kernel_init=get_initializer(kernel_init),
        dtype=dtype,
        name=name,
    )


class SeparableConv(nn.Module):
    """Depthwise-separable convolution (Chollet, 2017; MobileNet): a k x k depthwise conv
    (one filter per input channel, times `depth_multiplier`) then a 1x1 pointwise conv to
    `features`. Parameters k*k*C*m + C*m*features (+ biases), against k*k*C*features for a
    full conv. No norm or activation in between (MobileNet adds them itself)."""

    features: int
    kernel_size: int = 3
    strides: int = 1
    padding: Padding = "same"
    dilation: int = 1
    depth_multiplier: int = 1
    use_bias: bool = True
    kernel_init: str | Initializer | None = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        kw = dict(kernel_init=self.kernel_init, dtype=self.dtype, use_bias=self.use_bias)
        x = conv(
            c * self.depth_multiplier,
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation=self.dilation,
            groups=c,
            name="depthwise",
            **kw,
        )(x)
        return conv(self.features, 1, name="pointwise", **kw)(x)


def global_avg_pool(x: jax.Array) -> jax.Array:
    """Averages NHWC maps over H and W: [N, H, W, C] -> [N, C]."""
    return jnp.mean(x, axis=(1, 2))


def adaptive_avg_pool(x: jax.Array, output_size: int | Sequence[int]) -> jax.Array:
    """PyTorch's AdaptiveAvgPool2d on NHWC: output cell i averages input rows
    floor(i*H/out) .. ceil((i+1)*H/out) - 1 (likewise for columns), for any H, W (smaller
    inputs repeat cells). The identity when the input already has the output size."""
    oh, ow = _pair(output_size)
    h, w = x.shape[1:3]
    if (h, w) == (oh, ow):
        return x

    def bins(n: int, out: int) -> list[tuple[int, int]]:
        return [((i * n) // out, -(-((i + 1) * n) // out)) for i in range(out)]

    if h % oh == 0 and w % ow == 0:
        return jnp.mean(x.reshape(x.shape[0], oh, h // oh, ow, w // ow, x.shape[3]), axis=(2, 4))
    rows = [jnp.mean(x[:, a:b], axis=1, keepdims=True) for a, b in bins(h, oh)]
    x = jnp.concatenate(rows, axis=1)
    cols = [jnp.mean(x[:, :, a:b], axis=2, keepdims=True) for a, b in bins(w, ow)]
    return jnp.concatenate(cols, axis=2)


class GlobalAvgPoolHead(nn.Dense):
    """Classifier head: global average pooling over H, W, inverted dropout (`dropout` rate,
    'dropout' rng, train only), then a dense layer to `features` classes. Its parameters are
    the dense layer's own (`kernel`, `bias`), so `name="head"` gives `head/kernel`."""

    dropout: float = 0.0

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:  # type: ignore[override]
        from jaxlab.nn.regularizers import dropout

        x = global_avg_pool(x) if x.ndim == 4 else x
        rng = self.make_rng("dropout") if train and self.dropout > 0 else None
        x = dropout(x, self.dropout, rng=rng, deterministic=not train)
        return super().__call__(x)


def check_input_size(x: jax.Array, min_size: int, model: str) -> None:
    """Raises ConfigError unless `x` is NHWC with H and W at least `min_size` (the smallest
    input that the model's downsampling can take)."""
    if x.ndim != 4 or min(x.shape[1:3]) < min_size:
        raise ConfigError(
            f"{model} needs NHWC inputs of at least {min_size}x{min_size}, got shape "
            f"{tuple(x.shape)}; upscale the images or pick a model for small inputs "
            "(resnet20, small_cnn, vit with a smaller patch_size)"
        )
