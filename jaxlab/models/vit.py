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
from jaxlab.nn.blocks import MlpBlock, patch_embedding, pre_norm_residual
from jaxlab.nn.conv import check_input_size
from jaxlab.nn.regularizers import stochastic_depth_rates

CLASSIFIERS = ("token", "gap")


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
        def attention(y: jax.Array) -> jax.Array:
            y = nn.MultiHeadDotProductAttention(
                self.num_heads,
                dropout_rate=self.attention_dropout,
                deterministic=not train,
                dtype=self.dtype,
                name="attention",
            )(y, y)
            return nn.Dropout(self.dropout, deterministic=not train)(y)

        def mlp(y: jax.Array) -> jax.Array:
            return MlpBlock(self.mlp_dim, self.dropout, self.dtype, name="mlp")(y, train=train)

        kw = dict(drop_path=self.drop_path, train=train, dtype=self.dtype)
        x = pre_norm_residual(x, attention, norm_name="ln1", **kw)
        return pre_norm_residual(x, mlp, norm_name="ln2", **kw)


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
        x = patch_embedding(x, self.hidden_size, self.patch_size, dtype=self.dtype)
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
