"""Activation functions by name, plus the two that are layers: PReLU (a learned slope) and
maxout (the maximum of k pieces).

A spec is a name, optionally with one argument after a colon (`"leaky_relu:0.2"`: the slope;
`"elu:0.5"`: alpha; `"prelu:0.25"`: the initial slope; `"maxout:3"`: the number of pieces), or
any callable. `get_activation` returns a function `x -> y`; for `prelu` that function creates
a `flax.linen.PReLU` each time it is called, so call it inside a compact method: every call
site then owns its own learned slope (`PReLU_0`, `PReLU_1`, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError
from jaxlab.nn._spec import parse_number, split_spec

Activation = Callable[[jax.Array], jax.Array]


def identity(x: jax.Array) -> jax.Array:
    """Returns `x` unchanged (the `"identity"` / `"linear"` activation)."""
    return x


ACTIVATIONS: dict[str, Activation] = {
    "identity": identity,
    "linear": identity,
    "sigmoid": nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "relu6": nn.relu6,
    "leaky_relu": nn.leaky_relu,  # slope 0.01 unless given: "leaky_relu:0.2"
    "elu": nn.elu,
    "selu": nn.selu,
    "gelu": functools.partial(nn.gelu, approximate=False),  # exact, x * Phi(x)
    "gelu_tanh": functools.partial(nn.gelu, approximate=True),  # the tanh approximation
    "swish": nn.swish,
    "silu": nn.silu,
}
LAYER_ACTIVATIONS = ("prelu", "maxout")


def list_activations() -> list[str]:
    """Returns the names `get_activation` accepts."""
    return [*ACTIVATIONS, *LAYER_ACTIVATIONS]


def maxout(x: jax.Array, pieces: int = 2) -> jax.Array:
    """Maxout over the last axis (Goodfellow et al., 2013): groups of `pieces` consecutive
    features are reduced to their maximum, so the width shrinks from C to C // pieces.

    Use it after a layer `pieces` times wider than the desired output (or use `Maxout`).
    """
    c = x.shape[-1]
    if pieces < 1 or c % pieces:
        raise ConfigError(f"maxout with {pieces} pieces needs a width divisible by it, got {c}")
    return jnp.max(x.reshape(*x.shape[:-1], c // pieces, pieces), axis=-1)


class Maxout(nn.Module):
    """A maxout unit layer: Dense(features * pieces), then the maximum over each group of
    `pieces`, so the output has `features` features and the layer learns a convex piecewise
    linear activation."""

    features: int
    pieces: int = 2
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        z = nn.Dense(self.features * self.pieces, dtype=self.dtype, name="dense")(x)
        return maxout(z, self.pieces)


def _prelu(negative_slope_init: float) -> Activation:
    def apply(x: jax.Array) -> jax.Array:
        return nn.PReLU(negative_slope_init=negative_slope_init)(x)

    return apply


def get_activation(spec: str | Callable[..., jax.Array]) -> Activation:
    """Returns the activation named by `spec` (see the module docstring) or `spec` itself
    when it is callable. Raises ConfigError naming the valid choices for an unknown name."""
    if callable(spec):
        return spec
    name, arg = split_spec(spec, "activation")
    kind = f"activation {name!r}"
    if name == "prelu":
        return _prelu(0.25 if arg is None else parse_number(arg, kind, "negative_slope_init"))
    if name == "maxout":
        return functools.partial(
            maxout, pieces=2 if arg is None else parse_number(arg, kind, "pieces", int)
        )
    if name not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {spec!r}; valid choices: {', '.join(list_activations())}"
        )
    if arg is None:
        return ACTIVATIONS[name]
    if name == "leaky_relu":
        return functools.partial(nn.leaky_relu, negative_slope=parse_number(arg, kind, "slope"))
    if name == "elu":
        return functools.partial(nn.elu, alpha=parse_number(arg, kind, "alpha"))
    raise ConfigError(
        f"activation {name!r} takes no argument, got {spec!r}; "
        "only leaky_relu, elu, prelu and maxout take one (e.g. 'leaky_relu:0.2')"
    )
