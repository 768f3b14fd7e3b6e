"""Layer sequences that several models repeat: conv - norm - activation, the transformer MLP,
the pre-norm residual branch and the patch embedding of ViT and MLP-Mixer.

The functions create their layers as submodules of the module whose compact method calls
them, under the names passed in, so they add no level to the parameter paths: a model that
calls `conv_norm_act(x, ..., conv_name="conv1", norm_name="norm1")` has `conv1/kernel` and
`norm1/scale`, exactly as if it had written the layers out. `ConvNormAct` and `MlpBlock` are
modules, for the models whose parameter paths have that level (`stem/conv/kernel`).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.nn.activations import Activation
from jaxlab.nn.conv import Padding, conv
from jaxlab.nn.initializers import Initializer
from jaxlab.nn.norms import Identity, NormFactory
from jaxlab.nn.regularizers import StochasticDepth


def conv_norm_act(
    x: jax.Array,
    features: int,
    kernel_size: int,
    *,
    strides: int = 1,
    padding: Padding | None = None,
    groups: int = 1,
    norm: NormFactory | None = None,
    act: Activation | None = None,
    use_bias: bool | None = None,
    kernel_init: str | Initializer | None = None,
    dtype: jnp.dtype = jnp.float32,
    conv_name: str = "conv",
    norm_name: str = "norm",
) -> jax.Array:
    """conv -> norm -> activation, applied to `x`; call it inside a compact method.

    `padding` None is `kernel_size // 2` on every side (PyTorch's usual padding: "same" at
    stride 1). `norm` is a factory from `jaxlab.nn.get_norm`; None or the "none" norm
    (`Identity`) adds no norm layer. `use_bias` None gives the conv a bias exactly when there
    is no norm (a norm's own bias makes it redundant). `act` None leaves the output linear.
    The conv is named `conv_name` and the norm `norm_name` in the calling module.
    """
    has_norm = norm is not None and norm is not Identity
    x = conv(
        features,
        kernel_size,
        strides=strides,
        padding=kernel_size // 2 if padding is None else padding,
        groups=groups,
        use_bias=not has_norm if use_bias is None else use_bias,
        kernel_init=kernel_init,
        dtype=dtype,
        name=conv_name,
    )(x)
    if has_norm:
        x = norm(name=norm_name)(x)  # type: ignore[misc]
    return act(x) if act is not None else x


class ConvNormAct(nn.Module):
    """`conv_norm_act` as a module: its layers are `conv` and `norm` under the module's name
    (GoogLeNet's and MobileNet's parameter paths, `inception3a/b1/conv/kernel`)."""

    features: int
    kernel_size: int
    strides: int = 1
    groups: int = 1
    norm: NormFactory | None = None
    act: Activation | None = None
    use_bias: bool | None = None
    kernel_init: str | Initializer | None = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return conv_norm_act(
            x,
            self.features,
            self.kernel_size,
            strides=self.strides,
            groups=self.groups,
            norm=self.norm,
            act=self.act,
            use_bias=self.use_bias,
            kernel_init=self.kernel_init,
            dtype=self.dtype,
        )


class MlpBlock(nn.Module):
    """Dense(mlp_dim) - GELU (exact) - dropout - Dense(back to the input width) - dropout: the
    MLP of a transformer block (ViT) and the token / channel mixing of MLP-Mixer."""

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


def pre_norm_residual(
    x: jax.Array,
    branch: Callable[[jax.Array], jax.Array],
    *,
    norm_name: str,
    drop_path: float,
    train: bool,
    dtype: jnp.dtype = jnp.float32,
) -> jax.Array:
    """`x + StochasticDepth(branch(LayerNorm(x)))`: the residual sub-block of pre-norm
    transformers and MLP-Mixer (LayerNorm epsilon 1e-6, named `norm_name`; the branch dropped
    per sample with probability `drop_path` at train time). Call it inside a compact method."""
    y = branch(nn.LayerNorm(epsilon=1e-6, dtype=dtype, name=norm_name)(x))
    return x + StochasticDepth(drop_path)(y, deterministic=not train)


def patch_embedding(
    x: jax.Array, hidden_size: int, patch_size: int, *, dtype: jnp.dtype = jnp.float32
) -> jax.Array:
    """Cuts NHWC images into non-overlapping `patch_size` squares (a remainder that does not
    fill a patch is cropped) and projects each linearly to `hidden_size`: a conv with kernel
    = stride = patch size named `patch_embed`. Returns tokens [B, patches, hidden_size]."""
    x = conv(
        hidden_size,
        patch_size,
        strides=patch_size,
        padding="valid",
        dtype=dtype,
        name="patch_embed",
    )(x.astype(dtype))
    return x.reshape(x.shape[0], -1, hidden_size)
