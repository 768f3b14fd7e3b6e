"""Contrastive predictive coding's network for images (van den Oord, Li and Vinyals, 2018):
patch encoder, autoregressive context over the patch grid, one linear predictor per step.

An image [B, H, W, C] is cut into a grid of overlapping p x p patches with stride s
(Gh x Gw patches, `patch_grid`); every patch is encoded by the same encoder f (any zoo
model built with `num_classes = feature_dim`), z [B, Gh, Gw, D]. A GRU (jaxlab.nn's
`Recurrent`, `nn.scan` over time) runs down each column of the grid, so the context c_t
of row t has seen rows 0..t of its column only. The prediction of the encoding k rows below
is `W_k c_t` (a separate W_k for each k = 1..K: one [K, C, D] parameter).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.nn.recurrent import Recurrent


def patch_grid(images: jax.Array, patch_size: int, stride: int) -> jax.Array:
    """[B, Gh, Gw, p, p, C]: the p x p patches of `images` [B, H, W, C] at `stride`, in
    row-major grid order (Gh = (H - p) // stride + 1, likewise Gw)."""
    images = jnp.asarray(images)
    b, h, w, c = images.shape
    gh, gw = (h - patch_size) // stride + 1, (w - patch_size) // stride + 1
    rows = (jnp.arange(gh) * stride)[:, None] + jnp.arange(patch_size)[None, :]  # [Gh, p]
    cols = (jnp.arange(gw) * stride)[:, None] + jnp.arange(patch_size)[None, :]  # [Gw, p]
    patches = images[:, rows[:, None, :, None], cols[None, :, None, :], :]
    return patches.reshape(b, gh, gw, patch_size, patch_size, c)


class CPCNet(nn.Module):
    """(z [B, Gh, Gw, D], c [B, Gh, Gw, context_dim], predictions [K, B, Gh, Gw, D]) of a
    batch of images; `represent` gives the probe's features (see the module docstring)."""

    encoder: nn.Module  # built with num_classes = feature_dim
    feature_dim: int
    patch_size: int = 4
    stride: int = 2
    context_dim: int = 64
    prediction_steps: int = 2

    def setup(self) -> None:
        self.context = Recurrent("gru", self.context_dim)
        self.predictors = self.param(
            "predictors",
            nn.initializers.lecun_normal(in_axis=1, out_axis=2, batch_axis=(0,)),
            (self.prediction_steps, self.context_dim, self.feature_dim),
        )

    def encode(self, images: jax.Array, *, train: bool) -> jax.Array:
        """z [B, Gh, Gw, D]: every patch through the encoder (one batch of B*Gh*Gw)."""
        patches = patch_grid(images, self.patch_size, self.stride)
        b, gh, gw = patches.shape[:3]
        z = self.encoder(patches.reshape(b * gh * gw, *patches.shape[3:]), train=train)
        return z.astype(jnp.float32).reshape(b, gh, gw, -1)

    def contexts(self, z: jax.Array) -> jax.Array:
        """c [B, Gh, Gw, context_dim]: the GRU run down each column (rows are time)."""
        b, gh, gw, d = z.shape
        columns = jnp.transpose(z, (0, 2, 1, 3)).reshape(b * gw, gh, d)
        c, _ = self.context(columns)
        return jnp.transpose(c.reshape(b, gw, gh, -1), (0, 2, 1, 3))

    def __call__(self, images: jax.Array, *, train: bool) -> tuple[jax.Array, ...]:
        z = self.encode(images, train=train)
        c = self.contexts(z)
        return z, c, jnp.einsum("bhwc,kcd->kbhwd", c, self.predictors)

    def represent(self, images: jax.Array) -> jax.Array:
        """[B, context_dim]: the context vectors averaged over the grid, inference mode
        (CPC's linear-classification features)."""
        return jnp.mean(self.contexts(self.encode(images, train=False)), axis=(1, 2))
