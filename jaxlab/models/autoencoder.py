"""Autoencoders and the variational autoencoder (Kingma & Welling, 2014).

- `MLPAutoencoder` / `ConvAutoencoder`: an encoder to a `code_dim` code and a decoder back
  to the image; `__call__` returns the decoder's per-pixel logits [B, H, W, C] (the task
  reads `sigmoid(logits)` as the reconstruction). The conv encoder halves the resolution with
  each strided conv (SAME padding) and ends in a dense layer to the code; the decoder mirrors
  it: a dense layer, then `nn.ConvTranspose` stride 2 per encoder conv, cropped to the input
  size (8x8, 28x28 and 32x32 come back exactly; odd sizes are cropped).
  Both keep, in the non-trainable collection 'code_stats', an EMA of the codes' mean and
  variance over training batches (updated when called with `train=True` and that collection
  mutable): the task samples images by decoding codes from the Gaussian they describe.
- `VAE`: the same encoders with 2 * latent_dim outputs (mean, log-variance of q(z|x)) and
  the same decoders with one head per likelihood: 'bernoulli' (one logit per pixel
  channel), 'gaussian' (mean and, unless `fixed_log_scale` is a number, a learned log-scale
  per pixel channel), 'categorical' (`num_levels` logits per pixel channel).
  `__call__(x, z_key, train=...)` -> (decoder output, mean, log-variance), with z drawn by
  the reparameterization z = mean + exp(logvar / 2) * eps (eps ~ N(0, I) from `z_key`; the
  mean when `z_key` is None). Methods for `model.apply(..., method=...)`: `encode(x)` ->
  (mean, logvar), `decode(z)` -> the decoder output. The decoder output is [B, H, W, C, P]
  with P parameters per pixel channel (1 bernoulli, 2 or 1 gaussian, K categorical).

`likelihood` and `num_levels` default to None: the `vae` task fills them in from
`task.likelihood` and its levels. `image_shape` (H, W, C) is given by the task; `__call__`
reads it from its input when it is None, `decode` needs it.

`explain_parameter_counts(rows)` explains, for `scripts/inspect.py`, why a decoder layer
that mirrors an encoder layer has the same weights but a different bias count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxlab.config import ConfigError, check_choice
from jaxlab.nn.activations import get_activation

LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
BACKBONES = ("mlp", "conv")
CODE_STATS = "code_stats"
Activation = str | Callable[[jax.Array], jax.Array]


class MLPEncoder(nn.Module):
    """Flatten, Dense+activation per width, Dense to `out_features` (layers `layer_<i>`)."""

    widths: Sequence[int]
    out_features: int
    activation: Activation = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = get_activation(self.activation)
        x = x.reshape((x.shape[0], -1)).astype(self.dtype)
        for i, width in enumerate(self.widths):
            x = act(nn.Dense(width, dtype=self.dtype, name=f"layer_{i}")(x))
        return nn.Dense(self.out_features, dtype=self.dtype, name=f"layer_{len(self.widths)}")(x)


class MLPDecoder(nn.Module):
    """Dense+activation per width (the encoder's widths reversed), Dense to H*W*C*P,
    reshaped to [B, H, W, C, P]."""

    widths: Sequence[int]  # the encoder's widths; used in reverse
    params_per_value: int = 1
    activation: Activation = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, image_shape: Sequence[int]) -> jax.Array:
        act = get_activation(self.activation)
        x = z.astype(self.dtype)
        for i, width in enumerate(reversed(self.widths)):
            x = act(nn.Dense(width, dtype=self.dtype, name=f"layer_{i}")(x))
        out = math.prod(image_shape) * self.params_per_value
        x = nn.Dense(out, dtype=self.dtype, name=f"layer_{len(self.widths)}")(x)
        return x.reshape((z.shape[0], *image_shape, self.params_per_value))


class ConvEncoder(nn.Module):
    """A stride-2 conv+activation per entry of `features` (SAME padding: the size halves,
    rounded up), flatten, Dense to `out_features` (layers `layer_<i>`)."""

    features: Sequence[int]
    out_features: int
    kernel_size: int = 4
    activation: Activation = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = get_activation(self.activation)
        x = x.astype(self.dtype)
        k = (self.kernel_size, self.kernel_size)
        for i, f in enumerate(self.features):
            x = act(
                nn.Conv(f, k, strides=2, padding="SAME", dtype=self.dtype, name=f"layer_{i}")(x)
            )
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(self.out_features, dtype=self.dtype, name=f"layer_{len(self.features)}")(x)


def _downsampled(size: int, times: int) -> int:
    for _ in range(times):
        size = -(-size // 2)
    return size


class ConvDecoder(nn.Module):
    """The mirror of `ConvEncoder`: Dense to the encoder's last feature map, then a stride-2
    `nn.ConvTranspose` per encoder conv (features reversed, the last one to C*P channels),
    cropped to H x W and reshaped to [B, H, W, C, P]."""

    features: Sequence[int]  # the encoder's features; used in reverse
    params_per_value: int = 1
    kernel_size: int = 4
    activation: Activation = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, image_shape: Sequence[int]) -> jax.Array:
        act = get_activation(self.activation)
        height, width, channels = image_shape
        n = len(self.features)
        h, w = _downsampled(height, n), _downsampled(width, n)
        x = nn.Dense(h * w * self.features[-1], dtype=self.dtype, name="layer_0")(
            z.astype(self.dtype)
        )
        x = act(x).reshape((z.shape[0], h, w, self.features[-1]))
        outs = [*reversed(self.features[:-1]), channels * self.params_per_value]
        k = (self.kernel_size, self.kernel_size)
        for i, f in enumerate(outs):
            x = nn.ConvTranspose(
                f, k, strides=(2, 2), padding="SAME", dtype=self.dtype, name=f"layer_{i + 1}"
            )(x)
            if i < len(outs) - 1:
                x = act(x)
        x = x[:, :height, :width]
        return x.reshape((z.shape[0], height, width, channels, self.params_per_value))


def _backbone(
    kind: str, sizes: Sequence[int], out: int, per_value: int, kernel: int, act: Activation, dtype
) -> tuple[nn.Module, nn.Module]:
    check_choice("model.backbone", kind, BACKBONES)
    if kind == "mlp":
        return (
            MLPEncoder(sizes, out, act, dtype, name="encoder"),
            MLPDecoder(sizes, per_value, act, dtype, name="decoder"),
        )
    return (
        ConvEncoder(sizes, out, kernel, act, dtype, name="encoder"),
        ConvDecoder(sizes, per_value, kernel, act, dtype, name="decoder"),
    )


class Autoencoder(nn.Module):
    """Encoder to a `code_dim` code, decoder back to per-pixel logits (see the module doc).

    `sizes`: the MLP's hidden widths or the conv encoder's features (the decoder mirrors
    them). `code_momentum`: the EMA decay of the 'code_stats' mean and variance.
    """

    backbone: str = "mlp"
    sizes: tuple[int, ...] = (256, 64)
    code_dim: int = 16
    kernel_size: int = 4
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    code_momentum: float = 0.99
    image_shape: tuple[int, int, int] | None = None
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.encoder, self.decoder = _backbone(
            self.backbone,
            self.sizes,
            self.code_dim,
            1,
            self.kernel_size,
            self.activation,
            self.dtype,
        )
        zeros = lambda: jnp.zeros((self.code_dim,), jnp.float32)  # noqa: E731
        self.code_mean = self.variable(CODE_STATS, "mean", zeros)
        self.code_var = self.variable(CODE_STATS, "var", lambda: jnp.ones((self.code_dim,)))

    def encode(self, x: jax.Array) -> jax.Array:
        """The codes [B, code_dim] of images [B, H, W, C]."""
        return self.encoder(x)

    def decode(self, code: jax.Array) -> jax.Array:
        """Per-pixel logits [B, H, W, C] of codes [B, code_dim] (needs `image_shape`)."""
        if self.image_shape is None:
            raise ConfigError("Autoencoder.decode needs image_shape (the task sets it)")
        return self.decoder(code, self.image_shape)[..., 0]

    def code_distribution(self) -> tuple[jax.Array, jax.Array]:
        """(mean, variance) [code_dim] of the training codes (EMA over batches)."""
        return self.code_mean.value, self.code_var.value

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """Reconstruction logits [B, H, W, C]; with `train` and 'code_stats' mutable, the
        codes' batch mean and variance update the EMA."""
        code = self.encoder(x)
        if train and self.is_mutable_collection(CODE_STATS) and not self.is_initializing():
            step = 1.0 - self.code_momentum
            code32 = jax.lax.stop_gradient(code).astype(jnp.float32)
            self.code_mean.value = optax.incremental_update(
                code32.mean(0), self.code_mean.value, step
            )
            self.code_var.value = optax.incremental_update(code32.var(0), self.code_var.value, step)
        return self.decoder(code, self.image_shape or x.shape[1:])[..., 0]


class VAE(nn.Module):
    """A Gaussian-encoder VAE with an MLP or conv backbone and a decoder head per likelihood
    (see the module doc). `fixed_log_scale` (gaussian only): None learns a per-pixel
    log-scale, a number fixes log(sigma)."""

    backbone: str = "mlp"
    sizes: tuple[int, ...] = (500,)
    latent_dim: int = 20
    likelihood: str | None = None
    num_levels: int | None = None
    fixed_log_scale: float | None = None
    kernel_size: int = 4
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    image_shape: tuple[int, int, int] | None = None
    dtype: Any = jnp.float32

    def params_per_value(self) -> int:
        """P: decoder outputs per pixel channel (ConfigError for a missing likelihood)."""
        if self.likelihood is None:
            raise ConfigError(
                "VAE.likelihood is None: the vae task sets it from task.likelihood "
                f"({', '.join(LIKELIHOODS)})"
            )
        check_choice("model.likelihood", self.likelihood, LIKELIHOODS)
        if self.likelihood == "categorical":
            if not self.num_levels or self.num_levels < 2:
                raise ConfigError(f"VAE.num_levels must be >= 2, got {self.num_levels!r}")
            return self.num_levels
        return 2 if self.likelihood == "gaussian" and self.fixed_log_scale is None else 1

    def setup(self) -> None:
        self.encoder, self.decoder = _backbone(
            self.backbone,
            self.sizes,
            2 * self.latent_dim,
            self.params_per_value(),
            self.kernel_size,
            self.activation,
            self.dtype,
        )

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """q(z|x): (mean, log-variance), each [B, latent_dim] float32."""
        h = self.encoder(x).astype(jnp.float32)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def _decode(self, z: jax.Array, image_shape: Sequence[int]) -> jax.Array:
        out = self.decoder(z, image_shape).astype(jnp.float32)
        if self.likelihood == "gaussian" and self.fixed_log_scale is not None:
            scale = jnp.full_like(out, self.fixed_log_scale)
            out = jnp.concatenate([out, scale], axis=-1)
        return out

    def decode(self, z: jax.Array) -> jax.Array:
        """The decoder output [B, H, W, C, P] of latents [B, latent_dim] (gaussian: P = 2,
        mean then log-scale, the fixed one included)."""
        if self.image_shape is None:
            raise ConfigError("VAE.decode needs image_shape (the task sets it)")
        return self._decode(z, self.image_shape)

    def __call__(
        self, x: jax.Array, z_key: jax.Array | None = None, *, train: bool = False
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(decoder output at z ~ q(z|x) (the mean when `z_key` is None), mean, logvar)."""
        del train  # no dropout or batch norm
        mean, logvar = self.encode(x)
        z = mean
        if z_key is not None:
            z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(z_key, mean.shape)
        return self._decode(z, self.image_shape or x.shape[1:]), mean, logvar


# --- parameter counts (scripts/inspect.py) -----------------------------------------------


def _layer_sizes(shapes: dict[str, tuple[int, ...]]) -> tuple[int, int, int, int] | None:
    """(weights, bias, in, out) of a dense, conv or transposed-conv layer."""
    kernel, bias = shapes.get("kernel"), shapes.get("bias")
    if kernel is None or len(kernel) < 2:
        return None
    return math.prod(kernel), math.prod(bias) if bias else 0, kernel[-2], kernel[-1]


def explain_parameter_counts(rows: Sequence[Any]) -> list[str]:
    """Lines explaining an autoencoder's encoder/decoder parameter counts, for the rows of a
    `jaxlab.analysis.ParamTable` (anything with `.path` and `.shapes`); [] when the rows
    have no 'encoder/layer_<i>' and 'decoder/layer_<j>' layers.

    Decoder layer j mirrors encoder layer n-1-j: its kernel maps the encoder layer's output
    size back to its input size, so the weights are as many (in*out, or k*k*in*out), but its
    bias has one entry per output of its own, so the counts differ by (decoder out - decoder
    in) = (encoder in - encoder out). A head that is no mirror (2 * latent outputs, K logits
    per pixel) is reported as such.
    """

    def layers(prefix: str) -> list[tuple[str, tuple[int, int, int, int]]]:
        found = []
        for row in rows:
            parts = row.path.split("/")
            if len(parts) == 2 and parts[0] == prefix and parts[1].startswith("layer_"):
                sizes = _layer_sizes(row.shapes)
                if sizes is not None:
                    found.append((int(parts[1][6:]), row.path, sizes))
        return [(p, s) for _, p, s in sorted(found)]

    encoder, decoder = layers("encoder"), layers("decoder")
    if not encoder or len(encoder) != len(decoder):
        return []
    lines = [
        "encoder/decoder parameter counts: decoder layer j mirrors encoder layer n-1-j; the "
        "weights match, the biases have each layer's own output size (difference = out - in)"
    ]
    for (dec_path, dec), (enc_path, enc) in zip(decoder, reversed(encoder), strict=True):
        (ew, eb, ein, eout), (dw, db, din, dout) = enc, dec
        enc_total, dec_total = ew + eb, dw + db
        head = f"  {enc_path} {ew:,} + {eb:,} = {enc_total:,} vs {dec_path} {dw:,} + {db:,} = "
        if ew == dw and (din, dout) == (eout, ein):
            lines.append(
                f"{head}{dec_total:,}: same weights, biases differ by its out - in = "
                f"{dout} - {din} = {dec_total - enc_total:+,}"
            )
        else:
            lines.append(
                f"{head}{dec_total:,}: not a mirror (encoder {ein}->{eout}, decoder "
                f"{din}->{dout}: a head with its own output size)"
            )
    enc_sum = sum(w + b for _, (w, b, _, _) in encoder)
    dec_sum = sum(w + b for _, (w, b, _, _) in decoder)
    lines.append(
        f"  encoder {enc_sum:,} vs decoder {dec_sum:,} parameters ({dec_sum - enc_sum:+,}: the "
        "sum of the bias differences; for an MLP, input size - code size)"
    )
    return lines
