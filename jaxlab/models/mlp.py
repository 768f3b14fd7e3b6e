"""Multi-layer perceptrons, including the linear softmax classifier (depth 0)."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "gelu": nn.gelu,
    "elu": nn.elu,
    "swish": nn.swish,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Returns the activation function called `name`; ConfigError lists the valid names."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; valid choices: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Flattens the input, then `depth` hidden Dense+activation(+dropout) layers and a head.

    `depth=0` is the linear softmax classifier. `bn_axis_name` is accepted for a uniform
    model signature (the loop passes it under pmap) and unused: the MLP has no batch norm.
    """

    num_classes: int
    depth: int = 2
    width: int = 256
    activation: str = "relu"
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        act = get_activation(self.activation)
        x = x.reshape((x.shape[0], -1)).astype(self.dtype)
        for i in range(self.depth):
            x = nn.Dense(self.width, dtype=self.dtype, name=f"hidden_{i}")(x)
            x = act(x)
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
