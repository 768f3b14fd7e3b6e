"""MLP-Mixer (Tolstikhin et al., 2021): a patch-embedding conv, then blocks that alternate
an MLP across patches (token mixing) and an MLP across channels (channel mixing), each
pre-norm with a residual connection; a final LayerNorm, global average over the patches
and a zero-initialized linear head. Defaults are Mixer-S/16.

The token-mixing MLP's width is the number of patches, so its parameters follow the input
size used at init; apply at that size. Inputs need sides of at least `patch_size`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.nn.blocks import MlpBlock, patch_embedding, pre_norm_residual
from jaxlab.nn.conv import check_input_size
from jaxlab.nn.regularizers import stochastic_depth_rates


class MixerBlock(nn.Module):
    """x + TokenMLP(LN(x)^T)^T, then x + ChannelMLP(LN(x)), on [B, patches, channels]."""

    tokens_mlp_dim: int
    channels_mlp_dim: int
    drop_path: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        def token_mixing(y: jax.Array) -> jax.Array:
            mlp = MlpBlock(self.tokens_mlp_dim, dtype=self.dtype, name="token_mixing")
            return jnp.swapaxes(mlp(jnp.swapaxes(y, 1, 2), train=train), 1, 2)

        def channel_mixing(y: jax.Array) -> jax.Array:
            mlp = MlpBlock(self.channels_mlp_dim, dtype=self.dtype, name="channel_mixing")
            return mlp(y, train=train)

        kw = dict(drop_path=self.drop_path, train=train, dtype=self.dtype)
        x = pre_norm_residual(x, token_mixing, norm_name="ln1", **kw)
        return pre_norm_residual(x, channel_mixing, norm_name="ln2", **kw)


class MlpMixer(nn.Module):
    """MLP-Mixer; defaults are Mixer-S/16 (hidden 512, 8 blocks, MLPs 256 and 2048)."""

    num_classes: int = 1000
    patch_size: int = 16
    hidden_size: int = 512
    depth: int = 8
    tokens_mlp_dim: int = 256
    channels_mlp_dim: int = 2048
    stochastic_depth: float = 0.0
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None  # uniform signature; Mixer has no batch norm

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        check_input_size(x, self.patch_size, f"mlp_mixer (patch_size {self.patch_size})")
        x = patch_embedding(x, self.hidden_size, self.patch_size, dtype=self.dtype)
        for i, rate in enumerate(stochastic_depth_rates(self.depth, self.stochastic_depth)):
            x = MixerBlock(
                self.tokens_mlp_dim, self.channels_mlp_dim, rate, self.dtype, name=f"block{i + 1}"
            )(x, train=train)
        x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="final_norm")(x)
        return nn.Dense(
            self.num_classes, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="head"
        )(jnp.mean(x, axis=1))
