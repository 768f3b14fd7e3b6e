"""AlexNet (Krizhevsky et al., 2012) in torchvision's single-tower form (Krizhevsky, 2014,
"one weird trick"): 64-192-384-256-256 convolutions, no LRN, adaptive 6x6 average pooling,
then 4096-4096 dense layers with dropout. 61,100,840 parameters at 1000 classes.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.nn.activations import get_activation
from jaxlab.nn.conv import adaptive_avg_pool, check_input_size
from jaxlab.nn.initializers import get_initializer
from jaxlab.nn.norms import get_norm

# (features, kernel, stride, padding, max-pool after)
_FEATURES = (
    (64, 11, 4, 2, True),
    (192, 5, 1, 2, True),
    (384, 3, 1, 1, False),
    (256, 3, 1, 1, False),
    (256, 3, 1, 1, True),
)
MIN_INPUT_SIZE = 63  # the smallest side whose three 3x3/2 max pools still fit


class AlexNet(nn.Module):
    """AlexNet; any input of at least 63x63 (adaptive pooling before the classifier).

    `norm` (default "none", as the original) goes after each conv, which then drops its bias.
    """

    num_classes: int = 1000
    dropout: float = 0.5
    norm: str | Callable[..., nn.Module] = "none"
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    kernel_init: str | Callable[..., jax.Array] | None = None
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        check_input_size(x, MIN_INPUT_SIZE, "alexnet")
        norm = get_norm(
            self.norm,
            train=train,
            axis_name=self.bn_axis_name,
            dtype=self.dtype,
            momentum=self.bn_momentum,
        )
        act = get_activation(self.activation)
        init = get_initializer(self.kernel_init)
        x = x.astype(self.dtype)
        for i, (f, k, s, p, pool) in enumerate(_FEATURES):
            x = nn.Conv(
                f,
                (k, k),
                strides=s,
                padding=[(p, p)] * 2,
                use_bias=self.norm == "none",
                kernel_init=init,
                dtype=self.dtype,
                name=f"conv{i + 1}",
            )(x)
            x = act(norm(name=f"norm{i + 1}")(x))
            if pool:
                x = nn.max_pool(x, (3, 3), strides=(2, 2))
        x = adaptive_avg_pool(x, 6).reshape(x.shape[0], -1)
        for i in (6, 7):
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
            x = act(nn.Dense(4096, kernel_init=init, dtype=self.dtype, name=f"fc{i}")(x))
        return nn.Dense(self.num_classes, kernel_init=init, dtype=self.dtype, name="head")(x)
