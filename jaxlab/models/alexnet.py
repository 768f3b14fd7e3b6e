"""AlexNet (Krizhevsky et al., 2012) in torchvision's single-tower form (Krizhevsky, 2014,
"one weird trick"): 64-192-384-256-256 convolutions, no LRN, adaptive 6x6 average pooling,
then 4096-4096 dense layers with dropout. 61,100,840 parameters at 1000 classes.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax

from jaxlab.models.base import ConvClassifier
from jaxlab.nn.blocks import conv_norm_act
from jaxlab.nn.conv import adaptive_avg_pool, check_input_size

# (features, kernel, stride, padding, max-pool after)
_FEATURES = (
    (64, 11, 4, 2, True),
    (192, 5, 1, 2, True),
    (384, 3, 1, 1, False),
    (256, 3, 1, 1, False),
    (256, 3, 1, 1, True),
)
MIN_INPUT_SIZE = 63  # the smallest side whose three 3x3/2 max pools still fit


class AlexNet(ConvClassifier):
    """AlexNet; any input of at least 63x63 (adaptive pooling before the classifier).

    `norm` (default "none", as the original) goes after each conv, which then drops its bias.
    """

    dropout: float = 0.5
    norm: str | Callable[..., nn.Module] = "none"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        check_input_size(x, MIN_INPUT_SIZE, "alexnet")
        norm, act, init = self.norm_act_init(train)
        x = x.astype(self.dtype)
        for i, (f, k, s, p, pool) in enumerate(_FEATURES):
            x = conv_norm_act(
                x,
                f,
                k,
                strides=s,
                padding=p,
                norm=norm,
                act=act,
                kernel_init=init,
                dtype=self.dtype,
                conv_name=f"conv{i + 1}",
                norm_name=f"norm{i + 1}",
            )
            if pool:
                x = nn.max_pool(x, (3, 3), strides=(2, 2))
        x = adaptive_avg_pool(x, 6).reshape(x.shape[0], -1)
        for i in (6, 7):
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
            x = act(nn.Dense(4096, kernel_init=init, dtype=self.dtype, name=f"fc{i}")(x))
        return nn.Dense(self.num_classes, kernel_init=init, dtype=self.dtype, name="head")(x)
