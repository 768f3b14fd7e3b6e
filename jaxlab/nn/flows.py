"""Normalizing-flow layers: bijections with a tractable log-determinant (RealNVP, Glow).

Every layer is a Linen module with two methods (call them through `apply(..., method=...)`
or from a parent module):

    forward(x) -> (y, logdet)   logdet [B]: log|det dy/dx| per example
    inverse(y) -> x

Images are NHWC. The layers:

- `AffineCoupling` (Dinh et al. 2017, RealNVP): with a binary mask m,
  `y = m*x + (1-m)*(x*exp(s) + t)`, `(s, t) = net(m*x [, context])`, logdet `sum((1-m)*s)`.
  Masks `'checkerboard'` (spatial parity) and `'channel'` (the first or second half of the
  channels), `parity` flips them. The log-scale is a soft clamp `s = scale * tanh(raw /
  scale)` with a learned per-channel `scale` (initialized to 1): unbounded `exp(raw)` lets
  one step of a deep flow blow up early in training, the clamp keeps |s| <= scale while
  being the identity near 0 (RealNVP's `scale * tanh` parameterization). The last conv of
  the net is zero-initialized, so every coupling starts as the identity.
- `ActNorm` (Kingma & Dhariwal 2018, Glow): `y = (x + loc) * exp(log_scale)` per channel,
  logdet `H*W*sum(log_scale)`. Data-dependent initialization is explicit: run the model
  with the `'actnorm_init'` collection mutable (`actnorm_data_init`), each ActNorm then
  computes its parameters from the batch it sees (so that batch comes out with zero mean and
  unit variance per channel) and writes them there; `actnorm_data_init` returns the params
  tree with them in place. No state flag is carried in the params and nothing mutable runs
  inside the jitted steps.
- `InvConv1x1` (Glow's invertible 1x1 convolution), LU-parameterized: `W = P L (U +
  diag(sign * exp(log_s)))` with P a fixed permutation, L unit lower triangular, U strictly
  upper triangular, sign fixed; logdet `H*W*sum(log_s)`. P, sign and the initial L, U,
  log_s come from the LU decomposition of a random rotation drawn with numpy from the
  layer's static `seed` (constants of the graph: nothing to train, nothing to store).
- `Squeeze`: space-to-depth 2x2, [B, H, W, C] -> [B, H/2, W/2, 4C], logdet 0.
- `Split` (Glow's multi-scale factoring-out): keeps the first half of the channels, and the
  second half `x2` leaves the flow as a latent with a standard Gaussian prior; with
  `learned_prior`, `x2 ~ N(mu(x1), exp(log_sigma(x1))^2)` (a zero-initialized conv of the
  kept half), written as the bijection `z2 = (x2 - mu) * exp(-log_sigma)` (logdet
  `-sum(log_sigma)`), so that every latent the flow outputs is standard normal.
- `Flow`: a sequence of the layers; `forward(x) -> (zs, logdet)` with `zs` the tuple of the
  factored-out latents and the final one (each standard normal), `inverse(zs) -> x`.

flax has no flows, hence this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from jaxlab.config import check_choice

ACTNORM_INIT = "actnorm_init"  # the collection ActNorm writes its data-dependent params to
MASK_TYPES = ("checkerboard", "channel")


def _sum_per_example(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1).sum(axis=1)


def coupling_mask(shape: tuple[int, int, int], mask_type: str, parity: int) -> np.ndarray:
    """float32 [H, W, C] binary mask: 1 where the coupling passes x through unchanged.

    'checkerboard': 1 where (i + j) % 2 == parity; 'channel': 1 on the first C // 2
    channels (parity 0) or on the others (parity 1).
    """
    check_choice("coupling mask", mask_type, MASK_TYPES)
    h, w, c = shape
    if mask_type == "checkerboard":
        ij = np.add.outer(np.arange(h), np.arange(w)) % 2
        mask = np.broadcast_to((ij == parity)[:, :, None], (h, w, c))
    else:
        if c < 2:
            raise ValueError(f"a channel mask needs >= 2 channels, got {c} (squeeze first)")
        first = np.arange(c) < c // 2
        mask = np.broadcast_to(first if parity == 0 else ~first, (h, w, c))
    return mask.astype(np.float32)


class CouplingNet(nn.Module):
    """The (s, t) network of a coupling: conv3x3 - ReLU - conv1x1 - ReLU - conv3x3 (zero
    init, so the coupling starts as the identity), 2*C outputs."""

    hidden: int
    out_channels: int

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        h = nn.relu(nn.Conv(self.hidden, (3, 3), padding="SAME")(h))
        h = nn.relu(nn.Conv(self.hidden, (1, 1))(h))
        return nn.Conv(
            2 * self.out_channels,
            (3, 3),
            padding="SAME",
            kernel_init=nn.initializers.zeros,
            bias_init=nn.initializers.zeros,
        )(h)


class AffineCoupling(nn.Module):
    """RealNVP affine coupling with a checkerboard or channel mask (see the module doc);
    `context` (optional, [B, H, W, *]) is concatenated to the net's input (conditional
    flows, e.g. the variational dequantizer)."""

    mask_type: str = "checkerboard"
    parity: int = 0
    hidden: int = 64

    def _scale_shift(
        self, x: jax.Array, context: jax.Array | None
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        c = x.shape[-1]
        mask = jnp.asarray(coupling_mask(x.shape[1:], self.mask_type, self.parity))
        h = jnp.concatenate([x * mask, jnp.broadcast_to(mask, x.shape)], axis=-1)
        if context is not None:
            h = jnp.concatenate([h, context], axis=-1)
        raw_s, t = jnp.split(CouplingNet(self.hidden, c, name="net")(h), 2, axis=-1)
        bound = self.param("scale", nn.initializers.ones, (c,))
        s = bound * jnp.tanh(raw_s / bound)  # soft clamp: |s| <= bound, s ~ raw_s near 0
        return mask, (1.0 - mask) * s, (1.0 - mask) * t

    @nn.compact
    def __call__(self, x: jax.Array, context: jax.Array | None = None, *, reverse: bool = False):
        """forward (y, logdet), or with `reverse` the inverse x of y = `x`."""
        _, s, t = self._scale_shift(x, context)  # s, t depend on m*x = m*y only
        if reverse:
            return (x - t) * jnp.exp(-s)
        return x * jnp.exp(s) + t, _sum_per_example(s)

    def forward(
        self, x: jax.Array, context: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """y = m*x + (1-m)*(x*exp(s) + t); logdet = sum((1-m)*s)."""
        return self(x, context)

    def inverse(self, y: jax.Array, context: jax.Array | None = None) -> jax.Array:
        """x = m*y + (1-m)*(y - t)*exp(-s)."""
        return self(y, context, reverse=True)


class ActNorm(nn.Module):
    """Per-channel affine `y = (x + loc) * exp(log_scale)` with data-dependent init (see the
    module doc and `actnorm_data_init`)."""

    eps: float = 1e-6

    @nn.compact
    def __call__(self, x: jax.Array, *, reverse: bool = False):
        """forward (y, logdet), or with `reverse` the inverse x of y = `x`."""
        c = x.shape[-1]
        loc = self.param("loc", nn.initializers.zeros, (c,))
        log_scale = self.param("log_scale", nn.initializers.zeros, (c,))
        if reverse:
            return x * jnp.exp(-log_scale) - loc
        if self.is_mutable_collection(ACTNORM_INIT) and not self.is_initializing():
            mean = x.mean(axis=(0, 1, 2))
            std = jnp.sqrt(((x - mean) ** 2).mean(axis=(0, 1, 2)))
            loc, log_scale = -mean, -jnp.log(std + self.eps)
            self.put_variable(ACTNORM_INIT, "loc", loc)
            self.put_variable(ACTNORM_INIT, "log_scale", log_scale)
        hw = x.shape[1] * x.shape[2]
        return (x + loc) * jnp.exp(log_scale), jnp.full(x.shape[:1], hw * log_scale.sum())

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """y = (x + loc) * exp(log_scale); logdet = H*W*sum(log_scale)."""
        return self(x)

    def inverse(self, y: jax.Array) -> jax.Array:
        """x = y * exp(-log_scale) - loc."""
        return self(y, reverse=True)


def actnorm_data_init(
    module: nn.Module, variables: dict[str, Any], *args: Any, method: Any = None, **kwargs: Any
) -> dict[str, Any]:
    """The `variables` with every ActNorm's params replaced by those computed from the data:
    runs `module.apply(variables, *args, method=method, **kwargs)` with the ActNorm init
    collection mutable (each ActNorm normalizes the batch it sees, after the layers before
    it were initialized in the same pass) and writes the result into `variables['params']`.
    Pure; call it once, outside the train step (the task's `init_from_data`)."""
    _, written = module.apply(variables, *args, method=method, mutable=[ACTNORM_INIT], **kwargs)
    init = flax.traverse_util.flatten_dict(flax.core.unfreeze(written.get(ACTNORM_INIT, {})))
    params = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables["params"]))
    missing = sorted("/".join(k) for k in init if k not in params)
    if missing:
        raise KeyError(f"ActNorm init wrote params the model lacks: {missing}")
    params.update(init)
    return {**variables, "params": flax.traverse_util.unflatten_dict(params)}


class InvConv1x1(nn.Module):
    """Glow's invertible 1x1 convolution, LU-parameterized (see the module doc)."""

    seed: int = 0

    def _constants(self, c: int) -> tuple[np.ndarray, ...]:
        rotation = np.linalg.qr(np.random.default_rng(self.seed).normal(size=(c, c)))[0]
        p, lower, upper = scipy.linalg.lu(rotation)
        diag = np.diag(upper)
        return (
            p.astype(np.float32),
            lower.astype(np.float32),
            np.triu(upper, 1).astype(np.float32),
            np.sign(diag).astype(np.float32),
            np.log(np.abs(diag)).astype(np.float32),
        )

    def weight(self, c: int) -> tuple[jax.Array, jax.Array]:  # called from __call__
        """(W [C, C] with y_pixel = W @ x_pixel, log_s [C])."""
        p, l0, u0, sign, log_s0 = self._constants(c)
        lower = self.param("lower", lambda *_: jnp.asarray(l0))
        upper = self.param("upper", lambda *_: jnp.asarray(u0))
        log_s = self.param("log_s", lambda *_: jnp.asarray(log_s0))
        eye = jnp.eye(c)
        lower = jnp.tril(lower, -1) + eye
        upper = jnp.triu(upper, 1) + jnp.diag(sign * jnp.exp(log_s))
        return jnp.asarray(p) @ lower @ upper, log_s

    @nn.compact
    def __call__(self, x: jax.Array, *, reverse: bool = False):
        """forward (y, logdet), or with `reverse` the inverse x of y = `x`."""
        w, log_s = self.weight(x.shape[-1])
        if reverse:
            return jnp.einsum("dc,bhwc->bhwd", jnp.linalg.inv(w), x)
        hw = x.shape[1] * x.shape[2]
        return jnp.einsum("dc,bhwc->bhwd", w, x), jnp.full(x.shape[:1], hw * log_s.sum())

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """y[b, i, j] = W x[b, i, j]; logdet = H*W*sum(log_s) = H*W*log|det W|."""
        return self(x)

    def inverse(self, y: jax.Array) -> jax.Array:
        """x = W^-1 y."""
        return self(y, reverse=True)


def squeeze2x2(x: jax.Array) -> jax.Array:
    """Space-to-depth: [B, H, W, C] -> [B, H/2, W/2, 4C] (each 2x2 block to channels)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze2x2(y: jax.Array) -> jax.Array:
    """The inverse of `squeeze2x2`."""
    b, h, w, c4 = y.shape
    c = c4 // 4
    y = y.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, c)


class Squeeze(nn.Module):
    """Space-to-depth 2x2 as a flow layer (a permutation: logdet 0)."""

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """[B, H, W, C] -> [B, H/2, W/2, 4C]."""
        if x.shape[1] % 2 or x.shape[2] % 2:
            raise ValueError(f"squeeze needs even height and width, got {x.shape[1:3]}")
        return squeeze2x2(x), jnp.zeros(x.shape[:1])

    def inverse(self, y: jax.Array) -> jax.Array:
        """[B, H, W, 4C] -> [B, 2H, 2W, C]."""
        return unsqueeze2x2(y)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.forward(x)


class Split(nn.Module):
    """Glow's multi-scale split (see the module doc): forward(x) -> ((x1, z2), logdet)."""

    learned_prior: bool = False

    def _prior(self, x1: jax.Array, c2: int) -> tuple[jax.Array, jax.Array]:
        if not self.learned_prior:
            return jnp.zeros(()), jnp.zeros(())
        h = nn.Conv(
            2 * c2,
            (3, 3),
            padding="SAME",
            kernel_init=nn.initializers.zeros,
            bias_init=nn.initializers.zeros,
            name="prior",
        )(x1)
        mean, log_sigma = jnp.split(h, 2, axis=-1)
        return mean, log_sigma

    @nn.compact
    def __call__(self, x: Any, *, reverse: bool = False):
        """forward ((x1, z2), logdet), or with `reverse` the x of (x1, z2) = `x`."""
        if reverse:
            x1, z2 = x
            mean, log_sigma = self._prior(x1, z2.shape[-1])
            return jnp.concatenate([x1, mean + jnp.exp(log_sigma) * z2], axis=-1)
        c = x.shape[-1]
        if c < 2:
            raise ValueError(f"split needs >= 2 channels, got {c} (squeeze first)")
        x1, x2 = x[..., : c // 2], x[..., c // 2 :]
        mean, log_sigma = self._prior(x1, x2.shape[-1])
        z2 = (x2 - mean) * jnp.exp(-log_sigma)
        logdet = -_sum_per_example(jnp.broadcast_to(log_sigma, x2.shape))
        return (x1, z2), logdet

    def forward(self, x: jax.Array) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        """x -> (x1 (kept), z2 = (x2 - mu(x1)) * exp(-log_sigma(x1))); logdet
        -sum(log_sigma)."""
        return self(x)

    def inverse(self, y: tuple[jax.Array, jax.Array]) -> jax.Array:
        """(x1, z2) -> concat(x1, mu(x1) + exp(log_sigma(x1)) * z2)."""
        return self(y, reverse=True)


class Flow(nn.Module):
    """A sequence of flow layers; a `Split` factors half of the channels out as a latent.

    forward(x) -> (zs, logdet): zs is the tuple of latents (those the splits factored out,
    in order, then the output of the last layer), each standard normal under the model.
    inverse(zs) -> x.
    """

    layers: Sequence[nn.Module]

    def forward(self, x: jax.Array) -> tuple[tuple[jax.Array, ...], jax.Array]:
        """The latents of `x` and log|det dz/dx| per example."""
        logdet = jnp.zeros(x.shape[:1])
        zs = []
        for layer in self.layers:
            x, ld = layer.forward(x)
            if isinstance(layer, Split):
                x, z = x
                zs.append(z)
            logdet = logdet + ld
        return (*zs, x), logdet

    def inverse(self, zs: Sequence[jax.Array]) -> jax.Array:
        """The `x` whose latents are `zs` (as `forward` returns them)."""
        zs = list(zs)
        x = zs.pop()
        for layer in reversed(self.layers):
            x = layer.inverse((x, zs.pop()) if isinstance(layer, Split) else x)
        return x

    def __call__(self, x: jax.Array) -> tuple[tuple[jax.Array, ...], jax.Array]:
        return self.forward(x)


def standard_normal_logpdf(zs: Sequence[jax.Array]) -> jax.Array:
    """sum over all latents of log N(z; 0, 1), per example [B]."""
    return sum(
        _sum_per_example(-0.5 * z**2) - 0.5 * np.log(2 * np.pi) * np.prod(z.shape[1:]) for z in zs
    )


class VariationalDequantizer(nn.Module):
    """Flow++'s variational dequantization (Ho et al. 2019): noise `u in (0, 1)^D` from a
    conditional flow `q(u | x)`: eps ~ N(0, I) (drawn by the caller), then `num_couplings`
    affine couplings (alternating checkerboard masks) conditioned on features of the data
    x, then a sigmoid. Returns (u, log q(u | x)) per example, to enter the bound
    `-log P(x) <= E_q[-log p(x + u) + log q(u | x)]`."""

    num_couplings: int = 2
    hidden: int = 16

    @nn.compact
    def __call__(self, x: jax.Array, eps: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x: the data in the model scale [B, H, W, C]; eps: standard normal, x's shape."""
        context = nn.relu(nn.Conv(self.hidden, (3, 3), padding="SAME", name="context")(x))
        log_q = standard_normal_logpdf([eps])
        h = eps
        for i in range(self.num_couplings):
            coupling = AffineCoupling("checkerboard", i % 2, self.hidden, name=f"coupling_{i}")
            h, ld = coupling(h, context)
            log_q = log_q - ld
        u = jax.nn.sigmoid(h)
        # log|du/dh| = log sigmoid(h) + log sigmoid(-h)
        log_q = log_q - _sum_per_example(jax.nn.log_sigmoid(h) + jax.nn.log_sigmoid(-h))
        return u, log_q
