"""DCGAN (Radford, Metz & Chintala, 2016): a generator of transposed convolutions and a
discriminator of strided convolutions, as the task `gan` (jaxlab/tasks/gan.py) trains them.

Generator: latent z [N, D] -> Dense to `base x base x widths[0]` ("project and reshape"),
batch norm, ReLU -> for each further width: 4x4 transposed convolution with stride 2
(`nn.ConvTranspose`, 'SAME': the side doubles), batch norm, ReLU -> a last stride-2
transposed convolution to the image's channels (no norm) and the output nonlinearity:
`tanh` (DCGAN's, images in [-1, 1]) or `sigmoid` (images in [0, 1]). The image side is
`base * 2**len(widths)`, so `widths` fixes the base: (64, 32) gives 2 -> 4 -> 8 (gen_digits),
(128, 64) gives 7 -> 14 -> 28 (MNIST), (256, 128, 64) gives 4 -> 8 -> 16 -> 32 (CIFAR-10).

Discriminator: for each width a 4x4 convolution with stride 2 (padding 1 each side, as
DCGAN's PyTorch code: the side halves, 7 -> 3 for odd sides), batch norm on all but the
first layer, LeakyReLU(0.2) -> flatten -> Dense to one logit per image (DCGAN's last 4x4
valid convolution to 1x1 is this Dense when the last map is 4x4; the Dense works for any).

Initialization (DCGAN, section 4): every convolution and dense kernel ~ N(0, 0.02^2), biases
0, batch-norm scales ~ N(1, 0.02^2) (the PyTorch reference's `weights_init`) and offsets 0.
Layers followed by a norm have no bias (the norm's offset takes its place).

`DCGAN` (registry name `dcgan`) holds both networks' fields; `generator()` and
`discriminator()` return them as separate modules, so that the task keeps two variable
trees and two optimizers. Its own `__call__(z, x)` runs both (for parameter tables; the
variables it creates are `{'generator': ..., 'discriminator': ...}` of those trees).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError, check_choice
from jaxlab.nn.norms import get_norm

OUTPUTS = ("tanh", "sigmoid")


def _normal(mean: float, std: float) -> nn.initializers.Initializer:
    """N(mean, std^2) (flax's `normal` has mean 0; batch-norm scales are centred at 1)."""

    def init(key: jax.Array, shape: Sequence[int], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        return mean + std * jax.random.normal(key, shape, dtype)

    return init


def generator_base_size(image_size: int, num_widths: int) -> int:
    """The side of the generator's projected map: `image_size / 2**num_widths`; ConfigError
    when it is not a whole number (naming the numbers of widths that fit)."""
    if num_widths < 1:
        raise ConfigError("model.generator_widths needs at least one width")
    factor = 2**num_widths
    if image_size % factor:
        fits = [n for n in range(1, 6) if image_size % 2**n == 0]
        raise ConfigError(
            f"model.generator_widths: {num_widths} width(s) double the side {num_widths} "
            f"time(s), which needs an image side divisible by {factor}, got {image_size}; "
            f"give {' or '.join(map(str, fits)) or 'no'} width(s)"
        )
    return image_size // factor


def to_model_range(images: jax.Array, output: str) -> jax.Array:
    """[0, 1] images -> the generator's output range ([-1, 1] for tanh, [0, 1] for sigmoid)."""
    return images * 2.0 - 1.0 if output == "tanh" else images


def to_unit_range(images: jax.Array, output: str) -> jax.Array:
    """The generator's output range -> [0, 1] (the inverse of `to_model_range`)."""
    return (images + 1.0) * 0.5 if output == "tanh" else images


class DCGANGenerator(nn.Module):
    """The DCGAN generator (see the module docstring): z [N, D] -> images [N, H, W, C] in
    the range of `output`.

    Attributes:
      image_shape: (H, W, C) of the images (H == W), from the dataset.
      widths: channels of the projected map and of each hidden transposed convolution.
      kernel_size: side of the transposed-convolution kernels.
      output: 'tanh' (values in [-1, 1]) or 'sigmoid' (in [0, 1]).
      norm: the norm after the projection and the hidden layers ('batch' in DCGAN).
      init_std: standard deviation of the normal kernel initializer.
      bn_axis_name: the pmap axis for synchronized batch statistics.
    """

    image_shape: tuple[int, int, int] | None = None
    widths: Sequence[int] = (256, 128, 64)
    kernel_size: int = 4
    output: str = "tanh"
    norm: str = "batch"
    init_std: float = 0.02
    bn_axis_name: str | None = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool) -> jax.Array:
        if self.image_shape is None:
            raise ConfigError("the DCGAN generator needs image_shape (H, W, C)")
        check_choice("model.output", self.output, OUTPUTS)
        height, width, channels = self.image_shape
        if height != width:
            raise ConfigError(f"the DCGAN generator makes square images, got {self.image_shape}")
        base = generator_base_size(height, len(self.widths))
        kernel_init = nn.initializers.normal(self.init_std)
        norm_extra = {"scale_init": _normal(1.0, self.init_std)} if self.norm == "batch" else {}
        norm = get_norm(self.norm, train=train, axis_name=self.bn_axis_name, dtype=self.dtype)
        k = (self.kernel_size, self.kernel_size)

        x = nn.Dense(
            base * base * self.widths[0],
            use_bias=self.norm == "none",
            kernel_init=kernel_init,
            dtype=self.dtype,
            name="project",
        )(z.astype(self.dtype))
        x = x.reshape(z.shape[0], base, base, self.widths[0])
        x = nn.relu(norm(name="norm0", **norm_extra)(x))
        for i, w in enumerate(self.widths[1:], start=1):
            x = nn.ConvTranspose(
                w,
                k,
                strides=(2, 2),
                padding="SAME",
                use_bias=self.norm == "none",
                kernel_init=kernel_init,
                dtype=self.dtype,
                name=f"deconv{i}",
            )(x)
            x = nn.relu(norm(name=f"norm{i}", **norm_extra)(x))
        x = nn.ConvTranspose(
            channels,
            k,
            strides=(2, 2),
            padding="SAME",
            kernel_init=kernel_init,
            dtype=self.dtype,
            name="to_image",
        )(x)
        x = x.astype(jnp.float32)
        return jnp.tanh(x) if self.output == "tanh" else jax.nn.sigmoid(x)


class DCGANDiscriminator(nn.Module):
    """The DCGAN discriminator (see the module docstring): images [N, H, W, C] (in the
    generator's output range) -> logits [N] of "real".

    Attributes:
      widths: channels of each stride-2 convolution.
      kernel_size: side of the convolution kernels.
      negative_slope: the LeakyReLU slope (0.2 in DCGAN).
      norm: the norm of every layer but the first ('batch' in DCGAN).
      init_std: standard deviation of the normal kernel initializer.
      bn_axis_name: the pmap axis for synchronized batch statistics.
    """

    widths: Sequence[int] = (64, 128, 256)
    kernel_size: int = 4
    negative_slope: float = 0.2
    norm: str = "batch"
    init_std: float = 0.02
    bn_axis_name: str | None = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        kernel_init = nn.initializers.normal(self.init_std)
        norm_extra = {"scale_init": _normal(1.0, self.init_std)} if self.norm == "batch" else {}
        norm = get_norm(self.norm, train=train, axis_name=self.bn_axis_name, dtype=self.dtype)
        pad = (self.kernel_size - 1) // 2  # 4x4 (and 3x3) kernels: padding 1, the side halves
        x = x.astype(self.dtype)
        for i, w in enumerate(self.widths):
            x = nn.Conv(
                w,
                (self.kernel_size, self.kernel_size),
                strides=(2, 2),
                padding=((pad, pad), (pad, pad)),
                use_bias=i == 0 or self.norm == "none",
                kernel_init=kernel_init,
                dtype=self.dtype,
                name=f"conv{i}",
            )(x)
            if i > 0:
                x = norm(name=f"norm{i}", **norm_extra)(x)
            x = nn.leaky_relu(x, self.negative_slope)
        x = x.reshape(x.shape[0], -1)
        logits = nn.Dense(1, kernel_init=kernel_init, dtype=self.dtype, name="logit")(x)
        return logits[:, 0].astype(jnp.float32)


class DCGAN(nn.Module):
    """Both DCGAN networks' fields (registry name `dcgan`); `generator()` and
    `discriminator()` build them as separate modules. `image_shape` comes from the dataset
    (the task passes it), so a config sets only the widths for its image size.

    Attributes:
      image_shape: (H, W, C) of the images.
      generator_widths: see `DCGANGenerator.widths` (their count fixes the base side).
      discriminator_widths: see `DCGANDiscriminator.widths`.
      kernel_size: side of every (transposed) convolution kernel.
      output: the generator's output nonlinearity, 'tanh' or 'sigmoid'.
      norm: the norm of both networks ('batch' in DCGAN; 'none' to compare).
      negative_slope: the discriminator's LeakyReLU slope.
      init_std: standard deviation of the normal kernel initializer.
      bn_axis_name: the pmap axis for synchronized batch statistics.
    """

    image_shape: tuple[int, int, int] | None = None
    generator_widths: Sequence[int] = (256, 128, 64)
    discriminator_widths: Sequence[int] = (64, 128, 256)
    kernel_size: int = 4
    output: str = "tanh"
    norm: str = "batch"
    negative_slope: float = 0.2
    init_std: float = 0.02
    bn_axis_name: str | None = None
    dtype: jnp.dtype = jnp.float32

    @nn.nowrap
    def generator(self, **overrides: object) -> DCGANGenerator:
        """The generator as a module of its own (`overrides`: fields to replace). Not
        wrapped by flax, so that outside a forward pass it builds a top-level module."""
        fields = dict(
            image_shape=self.image_shape,
            widths=tuple(self.generator_widths),
            kernel_size=self.kernel_size,
            output=self.output,
            norm=self.norm,
            init_std=self.init_std,
            bn_axis_name=self.bn_axis_name,
            dtype=self.dtype,
        )
        return DCGANGenerator(**{**fields, **overrides})

    @nn.nowrap
    def discriminator(self, **overrides: object) -> DCGANDiscriminator:
        """The discriminator as a module of its own (`overrides`: fields to replace)."""
        fields = dict(
            widths=tuple(self.discriminator_widths),
            kernel_size=self.kernel_size,
            negative_slope=self.negative_slope,
            norm=self.norm,
            init_std=self.init_std,
            bn_axis_name=self.bn_axis_name,
            dtype=self.dtype,
        )
        return DCGANDiscriminator(**{**fields, **overrides})

    @nn.compact
    def __call__(self, z: jax.Array, x: jax.Array, *, train: bool) -> tuple[jax.Array, jax.Array]:
        """(G(z), D(x)): both networks once, under the names 'generator' and 'discriminator'."""
        images = self.generator(name="generator")(z, train=train)
        return images, self.discriminator(name="discriminator")(x, train=train)
