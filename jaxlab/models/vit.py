"""Vision Transformer (Dosovitskiy et al., 2020) as torchvision builds it: a patch-embedding
conv (kernel = stride = patch size), a learned class token, learned position embeddings,
pre-norm encoder blocks (LayerNorm eps 1e-6, multi-head self-attention, GELU MLP), a final
LayerNorm and a linear head on the class token. vit_b16 has 86,567,656 parameters at
1000 classes and 224x224.

The position embeddings have one row per patch plus the class token, so their shape (and
the parameter count) follows the input size used at init; apply at that size. Inputs need
sides of at least `patch_size`; a remainder that does not fill a patch is cropped.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import check_choice
from jaxlab.nn.conv import check_input_size
from jaxlab.nn.regularizers import StochasticDepth, stochastic_depth_rates

CLASSIFIERS = ("token", "gap")


class MlpBlock(nn.Module):
    """Dense(mlp_dim) - GELU (exact) - dropout - Dense(back to the input width) - dropout."""

    mlp_dim: int
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        y = nn.Dense(self.mlp_dim, dtype=self.dtype, name="fc1")(x)
        y = nn.gelu(y, approximate=False)
        y = nn.Dropout(self.dropout, deterministic=not train)(y)
        y = nn.Dense(x.shape[-1], dtype=self.dtype, name="fc2")(y)
        return nn.Dropout(self.dropout, deterministic=not train)(y)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + SA(LN(x)), then x + MLP(LN(x)); each residual branch
    optionally dropped per sample (stochastic depth)."""

    num_heads: int
    mlp_dim: int
    dropout: float = 0.0
    attention_dropout: float = 0.0
    drop_path: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="ln1")(x)
        y = nn.MultiHeadDotProductAttention(
            self.num_heads,
            dropout_rate=self.attention_dropout,
            deterministic=not train,
            dtype=self.dtype,
            name="attention",
        )(y, y)
        y = nn.Dropout(self.dropout, deterministic=not train)(y)
        x = x + StochasticDepth(self.drop_path)(y, deterministic=not train)
        y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="ln2")(x)
        y = MlpBlock(self.mlp_dim, self.dropout, self.dtype, name="mlp")(y, train=train)
        return x + StochasticDepth(self.drop_path)(y, deterministic=not train)


class ViT(nn.Module):
    """ViT; defaults are ViT-B/16. `classifier="gap"` averages the patch tokens instead of
    using a class token (no class token is then created)."""

    num_classes: int = 1000
    patch_size: int = 16
    hidden_size: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    dropout: float = 0.0
    attention_dropout: float = 0.0
    stochastic_depth: float = 0.0
    classifier: str = "token"
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None  # uniform signature; ViT has no batch norm

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        check_choice("vit classifier", self.classifier, CLASSIFIERS)
        check_input_size(x, self.patch_size, f"vit (patch_size {self.patch_size})")
        p = self.patch_size
        x = nn.Conv(
            self.hidden_size,
            (p, p),
            strides=(p, p),
            padding="VALID",
            dtype=self.dtype,
            name="patch_embed",
        )(x.astype(self.dtype))
        x = x.reshape(x.shape[0], -1, self.hidden_size)
        if self.classifier == "token":
            cls = self.param("cls_token", nn.initializers.zeros, (1, 1, self.hidden_size))
            x = jnp.concatenate(
                [jnp.broadcast_to(cls, (x.shape[0], 1, self.hidden_size)).astype(x.dtype), x],
                axis=1,
            )
        pos = self.param("pos_embedding", nn.initializers.normal(0.02), (1, *x.shape[1:]))
        x = nn.Dropout(self.dropout, deterministic=not train)(x + pos.astype(x.dtype))
        for i, rate in enumerate(stochastic_depth_rates(self.depth, self.stochastic_depth)):
            x = EncoderBlock(
                self.num_heads,
                self.mlp_dim,
                self.dropout,
                self.attention_dropout,
                rate,
                self.dtype,
                name=f"block{i + 1}",
            )(x, train=train)
        x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="final_norm")(x)
        x = x[:, 0] if self.classifier == "token" else jnp.mean(x, axis=1)
        return nn.Dense(
            self.num_classes, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="head"
        )(x)
