"""Stochastic regularizers: inverted dropout, DropConnect and stochastic depth.

All draw from the `'dropout'` rng (the only stochastic stream the training loop provides)
and are the identity at eval (`deterministic=True`). Each is "inverted": what is kept at
train time is scaled by 1/keep, so expectations match eval and nothing changes at eval.
flax's `nn.Dropout` is inverted dropout already; models use it directly. flax has neither
DropConnect nor stochastic depth, hence the two layers here.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError


def _check_rate(rate: float, what: str) -> None:
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"{what} rate must be in [0, 1), got {rate!r}")


def dropout(x: jax.Array, rate: float, *, rng: jax.Array | None, deterministic: bool) -> jax.Array:
    """Inverted dropout as a pure function: zeroes each element with probability `rate` and
    scales the rest by 1/(1 - rate); identity when `deterministic` or `rate == 0`."""
    _check_rate(rate, "dropout")
    if deterministic or rate == 0.0:
        return x
    keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def stochastic_depth_rates(num_blocks: int, max_rate: float) -> list[float]:
    """Per-block drop rates increasing linearly with depth (Huang et al., 2016): block l of L
    (1-based) is dropped with probability l/L * max_rate, so the last has `max_rate`."""
    _check_rate(max_rate, "stochastic depth")
    return [max_rate * (i + 1) / num_blocks for i in range(num_blocks)]


class StochasticDepth(nn.Module):
    """Drops a whole residual branch per sample with probability `rate` (Huang et al., 2016;
    "drop path"): at train time each sample's branch is zeroed or scaled by 1/(1 - rate); at
    eval it is the identity. Apply it to the branch before the residual addition. It is
    flax's `nn.Dropout` with the mask broadcast over every axis but the batch axis."""

    rate: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        _check_rate(self.rate, "stochastic depth")
        if deterministic or self.rate == 0.0:
            return x
        return nn.Dropout(self.rate, broadcast_dims=tuple(range(1, x.ndim)))(x, deterministic=False)


def drop_connect(kernel: jax.Array, rate: float, *, rng: jax.Array) -> jax.Array:
    """Zeroes each weight of `kernel` with probability `rate`, scaling the rest by
    1/(1 - rate) (DropConnect, Wan et al., 2013, in its inverted form)."""
    return dropout(kernel, rate, rng=rng, deterministic=False)


class DropConnectDense(nn.Dense):
    """A Dense layer whose weights (not activations) are dropped at train time: one Bernoulli
    mask over the kernel per forward pass (the paper samples one per example; one per batch
    is the usual cheaper form), inverted scaling, identity at eval. Same parameters and
    names as `nn.Dense` (`kernel`, `bias`), so it can replace one in a checkpoint."""

    rate: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool = True) -> jax.Array:  # type: ignore[override]
        _check_rate(self.rate, "DropConnect")
        kernel = self.param(
            "kernel", self.kernel_init, (x.shape[-1], self.features), self.param_dtype
        )
        if not deterministic and self.rate > 0.0:
            kernel = drop_connect(kernel, self.rate, rng=self.make_rng("dropout"))
        y = jnp.dot(x.astype(self.dtype or x.dtype), kernel.astype(self.dtype or x.dtype))
        if self.use_bias:
            bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            y = y + bias.astype(y.dtype)
        return y
