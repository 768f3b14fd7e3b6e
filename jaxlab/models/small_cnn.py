"""A small convolutional classifier: conv-BN-ReLU-pool blocks and global average pooling."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class SmallCNN(nn.Module):
    """Blocks of `convs_per_block` x (3x3 conv - BatchNorm - ReLU), then 2x2 max pooling
    ('SAME', so it never shrinks a side below 1), one block per entry of `widths`; global
    average pooling and a dense head, so any input size works.

    `bn_axis_name` names the mapped axis for synchronized batch-norm statistics under pmap
    (under jit with a sharded batch the statistics are global already).
    """

    num_classes: int
    widths: Sequence[int] = (32, 64, 128)
    convs_per_block: int = 2
    dropout: float = 0.0
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = x.astype(self.dtype)
        for b, width in enumerate(self.widths):
            for c in range(self.convs_per_block):
                x = nn.Conv(width, (3, 3), use_bias=False, dtype=self.dtype, name=f"conv{b}_{c}")(x)
                x = nn.BatchNorm(
                    use_running_average=not train,
                    momentum=self.bn_momentum,
                    axis_name=self.bn_axis_name,
                    dtype=self.dtype,
                    name=f"bn{b}_{c}",
                )(x)
                x = nn.relu(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
        x = jnp.mean(x, axis=(1, 2))
        if self.dropout > 0:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
