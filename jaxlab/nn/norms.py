"""Normalization layers by name: batch, layer, instance, group, none; and local response
normalization (the LRN of AlexNet and GoogLeNet papers, which flax does not provide).

`get_norm(spec, train=...)` returns a factory: `norm(name="bn1")(x)` builds and applies one
layer. Specs: `"batch"`, `"layer"`, `"instance"`, `"group"` (32 groups, the default of Wu &
He, 2018) or `"group:8"`, `"none"`, or a callable used as the factory itself. Every norm
has a per-channel scale and bias (the parameters), and normalizes NHWC maps over:

- batch:    N, H, W for each channel (running statistics in `batch_stats`, updated only
            when train=True and used when train=False);
- layer:    H, W, C for each sample (all of a sample's features; also works on [N, C]);
- instance: H, W for each sample and channel;
- group:    H, W and the C/G channels of each group, for each sample;
- none:     nothing (identity, no parameters).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError
from jaxlab.nn._spec import parse_number, split_spec

NORMS = ("batch", "layer", "instance", "group", "none")
NormFactory = Callable[..., nn.Module]


class Identity(nn.Module):
    """Returns its input; the `"none"` norm (no parameters, no statistics)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return x


class GroupNorm(nn.GroupNorm):
    """flax's GroupNorm with a ConfigError (naming the valid group counts) when the channels
    do not divide into `num_groups`."""

    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        if self.num_groups is not None and c % self.num_groups:
            valid = [g for g in range(1, c + 1) if c % g == 0]
            raise ConfigError(
                f"group norm with {self.num_groups} groups needs channels divisible by it, got "
                f"{c} channels; use 'group:G' with G one of {', '.join(map(str, valid))}"
            )
        return super().__call__(x)


def get_norm(
    spec: str | NormFactory,
    *,
    train: bool,
    axis_name: str | None = None,
    dtype: jnp.dtype = jnp.float32,
    momentum: float = 0.9,
    epsilon: float = 1e-5,
) -> NormFactory:
    """Returns a factory `norm(name=..., **overrides) -> nn.Module` for the norm `spec`.

    `momentum` is the running-average decay of batch norm (flax convention: 0.9 is PyTorch's
    momentum=0.1); `axis_name` synchronizes batch statistics across a pmap axis. Raises
    ConfigError naming the valid choices for an unknown name.
    """
    if callable(spec):
        return spec
    name, arg = split_spec(spec, "norm")
    if name not in NORMS:
        raise ConfigError(f"unknown norm {spec!r}; valid choices: {', '.join(NORMS)} (group:G)")
    if arg is not None and name != "group":
        raise ConfigError(f"norm {name!r} takes no argument, got {spec!r}; only 'group:G' does")
    if name == "batch":
        return functools.partial(
            nn.BatchNorm,
            use_running_average=not train,
            momentum=momentum,
            epsilon=epsilon,
            axis_name=axis_name,
            dtype=dtype,
        )
    if name == "layer":  # one group: statistics over every non-batch axis, per-channel affine
        return functools.partial(nn.GroupNorm, num_groups=1, epsilon=epsilon, dtype=dtype)
    if name == "instance":
        return functools.partial(nn.InstanceNorm, epsilon=epsilon, dtype=dtype)
    if name == "group":
        groups = 32 if arg is None else parse_number(arg, f"norm {spec!r}", "groups", int)
        if groups < 1:
            raise ConfigError(f"group norm needs at least 1 group, got {spec!r}")
        return functools.partial(GroupNorm, num_groups=groups, epsilon=epsilon, dtype=dtype)
    return Identity


def local_response_norm(
    x: jax.Array, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> jax.Array:
    """Local response normalization across channels, with PyTorch's convention:
    `x / (k + alpha / size * sum of x^2 over `size` neighbouring channels) ** beta`
    (the window is zero-padded at the channel ends). No parameters."""
    sq = jnp.square(x)
    pad = [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)]
    window = (1,) * (x.ndim - 1) + (size,)
    summed = jax.lax.reduce_window(sq, 0.0, jax.lax.add, window, (1,) * x.ndim, pad)
    return x / jnp.power(k + alpha / size * summed, beta)
