"""Multi-layer perceptrons, including the linear softmax classifier (depth 0)."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

# Activations live in jaxlab.nn; re-exported here, where the first models looked them up.
from jaxlab.nn.activations import ACTIVATIONS, get_activation
from jaxlab.nn.regularizers import DropConnectDense

__all__ = ["ACTIVATIONS", "MLP", "get_activation"]


class MLP(nn.Module):
    """Flattens the input, then `depth` hidden Dense+activation(+dropout) layers and a head.

    `depth=0` is the linear softmax classifier. `drop_connect` > 0 drops hidden-layer
    weights instead (DropConnect; same parameter names). `activation` is any name of
    `jaxlab.nn.activations` or a callable. `bn_axis_name` is accepted for a uniform model
    signature (the loop passes it under pmap) and unused: the MLP has no batch norm.
    """

    num_classes: int
    depth: int = 2
    width: int = 256
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    dropout: float = 0.0
    drop_connect: float = 0.0
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        act = get_activation(self.activation)
        x = x.reshape((x.shape[0], -1)).astype(self.dtype)
        for i in range(self.depth):
            if self.drop_connect > 0:
                layer = DropConnectDense(
                    self.width, rate=self.drop_connect, dtype=self.dtype, name=f"hidden_{i}"
                )
                x = layer(x, deterministic=not train)
            else:
                x = nn.Dense(self.width, dtype=self.dtype, name=f"hidden_{i}")(x)
            x = act(x)
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
