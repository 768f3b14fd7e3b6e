"""Heads of the self-supervised methods: SimCLR's / MoCo v2's projection MLP and the
encoder-with-projection pair that they train.

The encoder is any zoo model built with `num_classes = feature_dim` (its classifier layer
becomes a linear map to the `feature_dim`-wide representation h); the projection head maps
h to the space where the contrastive loss is computed, z = g(h). Chen et al. (SimCLR,
2020) show that the representation before the head is the better one for downstream
tasks, so the linear probe and kNN read h.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class ProjectionHead(nn.Module):
    """`depth` x (Dense(hidden) - BatchNorm - ReLU), then Dense(out_dim) (SimCLR's g; MoCo
    v2's MLP head with `use_bn=False`)."""

    hidden_dim: int = 256
    out_dim: int = 64
    depth: int = 1
    use_bn: bool = True
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, h: jax.Array, *, train: bool) -> jax.Array:
        x = h
        for i in range(self.depth):
            x = nn.Dense(self.hidden_dim, use_bias=not self.use_bn, name=f"dense{i}")(x)
            if self.use_bn:
                x = nn.BatchNorm(
                    use_running_average=not train,
                    momentum=0.9,
                    axis_name=self.bn_axis_name,
                    name=f"bn{i}",
                )(x)
            x = nn.relu(x)
        return nn.Dense(self.out_dim, name="out")(x)


class EncoderWithProjection(nn.Module):
    """(h, z): the encoder's representation h = f(x) [N, feature_dim] and its projection
    z = g(h) [N, out_dim]."""

    encoder: nn.Module
    head: nn.Module

    def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, jax.Array]:
        h = self.encoder(x, train=train).astype(jnp.float32)
        return h, self.head(h, train=train)

    def represent(self, x: jax.Array) -> jax.Array:
        """The representation h of x in inference mode (the probe's features)."""
        return self.encoder(x, train=False).astype(jnp.float32)
