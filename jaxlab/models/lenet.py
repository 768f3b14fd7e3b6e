"""LeNet-5 (LeCun et al., 1998) in its common modern form."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError


class LeNet5(nn.Module):
    """conv 6@5x5 (same padding, as for 28x28 MNIST) - avgpool 2 - conv 16@5x5 (valid) -
    avgpool 2 - dense 120 - dense 84 - head, with tanh activations as in the paper.

    Needs inputs of at least 12x12 (the valid 5x5 conv after one 2x pooling).
    """

    num_classes: int
    activation: str = "tanh"
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None  # uniform signature; LeNet has no batch norm

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        from jaxlab.models.mlp import get_activation

        act = get_activation(self.activation)
        if x.ndim != 4 or min(x.shape[1:3]) < 12:
            raise ConfigError(
                f"lenet5 needs NHWC inputs of at least 12x12, got shape {tuple(x.shape)}; "
                "use small_cnn or mlp for smaller images"
            )
        x = x.astype(self.dtype)
        x = act(nn.Conv(6, (5, 5), padding="SAME", dtype=self.dtype, name="conv1")(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = act(nn.Conv(16, (5, 5), padding="VALID", dtype=self.dtype, name="conv2")(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = act(nn.Dense(120, dtype=self.dtype, name="fc1")(x))
        x = act(nn.Dense(84, dtype=self.dtype, name="fc2")(x))
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
