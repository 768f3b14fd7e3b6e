"""Heads of the self-supervised methods and the networks that put a backbone under them.

- `ProjectionHead` and `EncoderWithProjection`: SimCLR's / MoCo v2's projection MLP g and the
  (h, z) pair they train. Chen et al. (SimCLR, 2020) show that the representation h before
  the head is the better one downstream, so the linear probe and kNN read h.
- `MLPHead`: BYOL's projector and predictor (Dense - norm - ReLU blocks, then a Dense).
- `DinoHead`: DINO's head: an MLP down to a bottleneck, L2-normalized, then a linear layer
  onto `out_dim` prototypes whose weight columns are L2-normalized (DINO's weight-normalized
  last layer with its gain fixed at 1), giving logits in [-1, 1] that the temperatures scale.
- `SSLNetwork`: backbone -> features -> head (-> predictor), for BYOL and DINO.
- `PretextNetwork`: backbone -> features -> an MLP output head (the pretext tasks' classifier
  or pixel decoder); `tiles` > 0 runs the backbone on each of that many tiles and
  concatenates their features before the head (jigsaw's siamese network).

The backbone is any registry model built with `num_classes = feature_dim` (its
classification layer becomes the feature layer), so every backbone of jaxlab serves.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import check_choice

HEAD_NORMS = ("batch", "layer", "none")


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
    """`x / max(||x||, eps)` along `axis` (safe at 0)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), eps)


class MLPHead(nn.Module):
    """`num_layers` Dense layers: each but the last followed by the norm and a ReLU.

    Attributes:
      hidden_dim: width of the hidden layers.
      out_dim: width of the output.
      num_layers: Dense layers (>= 1; 1 is a linear map).
      norm: 'batch' (BYOL's projector), 'layer' or 'none' after each hidden Dense.
      bn_axis_name: the pmap axis for synchronized batch statistics.
    """

    hidden_dim: int
    out_dim: int
    num_layers: int = 2
    norm: str = "batch"
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        check_choice("head norm", self.norm, HEAD_NORMS)
        for i in range(self.num_layers - 1):
            x = nn.Dense(self.hidden_dim, name=f"dense{i}")(x)
            if self.norm == "batch":
                x = nn.BatchNorm(
                    use_running_average=not train, axis_name=self.bn_axis_name, name=f"bn{i}"
                )(x)
            elif self.norm == "layer":
                x = nn.LayerNorm(name=f"ln{i}")(x)
            x = nn.relu(x)
        return nn.Dense(self.out_dim, name=f"dense{self.num_layers - 1}")(x)


class DinoHead(nn.Module):
    """DINO's projection head: MLP to `bottleneck_dim`, L2 normalization, then cosine
    similarities with `out_dim` unit-norm prototypes (logits in [-1, 1])."""

    hidden_dim: int
    bottleneck_dim: int
    out_dim: int
    num_layers: int = 3
    norm: str = "none"
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = MLPHead(
            self.hidden_dim,
            self.bottleneck_dim,
            self.num_layers,
            self.norm,
            self.bn_axis_name,
            name="mlp",
        )(x, train=train)
        prototypes = self.param(
            "prototypes", nn.initializers.lecun_normal(), (self.bottleneck_dim, self.out_dim)
        )
        return l2_normalize(x) @ l2_normalize(prototypes, axis=0)


class SSLNetwork(nn.Module):
    """backbone -> `features`; head -> `projection`; predictor -> `prediction` (when there
    is a predictor and `predict`). Parameters live under 'backbone', 'head', 'predictor'."""

    backbone: nn.Module
    head: nn.Module
    predictor: nn.Module | None = None

    def __call__(self, x: jax.Array, *, train: bool, predict: bool = True) -> dict[str, jax.Array]:
        features = self.backbone(x, train=train)
        out = {"features": features, "projection": self.head(features, train=train)}
        if self.predictor is not None and predict:
            out["prediction"] = self.predictor(out["projection"], train=train)
        return out

    def embed(self, x: jax.Array) -> jax.Array:
        """The backbone's features in inference mode (float32 [N, D])."""
        return self.backbone(x, train=False).astype(jnp.float32)


class PretextNetwork(nn.Module):
    """backbone -> features -> `head`; with `tiles` > 0 the input is [N, tiles, h, w, C] and
    the head sees the concatenated features of the tiles (one backbone, shared weights)."""

    backbone: nn.Module
    head: nn.Module
    tiles: int = 0

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        if self.tiles:
            n = x.shape[0]
            features = self.backbone(x.reshape(n * self.tiles, *x.shape[2:]), train=train)
            features = features.reshape(n, -1)
        else:
            features = self.backbone(x, train=train)
        return self.head(features, train=train)

    def embed(self, x: jax.Array) -> jax.Array:
        """The backbone's features of whole images in inference mode (float32 [N, D])."""
        return self.backbone(x, train=False).astype(jnp.float32)


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
