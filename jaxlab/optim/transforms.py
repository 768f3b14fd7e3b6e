"""Gradient transformations that optax lacks: Eve's loss feedback, ESGD's equilibration
preconditioner, L1 weight decay, AdaGrad with eps outside the square root, and Rprop (optax
0.2.8's lags one step behind).

Each is a plain `optax.GradientTransformation(Extra Args)`, so it chains with optax's own
pieces. Those that need more than the gradient take it through optax's extra-args protocol:
`update(grads, state, params, value=loss)` (Eve) and `update(..., hvp_fn=hvp)` (ESGD).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax
from jax import numpy as jnp


class ScaleByEveState(NamedTuple):
    """Eve's feedback state: update count, the smoothed feedback d_t, the previous loss."""

    count: jax.Array
    d: jax.Array
    prev_loss: jax.Array


def scale_by_eve_feedback(
    b3: float = 0.999, c: float = 10.0, loss_min: float = 0.0
) -> optax.GradientTransformationExtraArgs:
    """Divides the updates by Eve's d_t, a smoothed feedback from the loss (optax has none).

    With `L_t` the loss passed as `value=` (required), `d_1 = 1` and for t > 1
    `r_t = clip(|L_t - L_{t-1}| / (L_t - L*), 1/c, c)`, `d_t = b3 d_{t-1} + (1 - b3) r_t`,
    where `L* = loss_min`. A loss at or below `L*` counts as the largest change (r_t = c).
    When the loss changes a lot relative to its distance from the optimum the steps shrink.
    """

    def init_fn(params: Any) -> ScaleByEveState:
        del params
        return ScaleByEveState(jnp.zeros([], jnp.int32), jnp.ones([]), jnp.zeros([]))

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError("eve needs the loss: call tx.update(grads, state, params, value=loss)")
        loss = jnp.asarray(value, state.d.dtype)
        gap = loss - loss_min
        safe_gap = jnp.where(gap > 0, gap, 1.0)
        r = jnp.where(gap > 0, jnp.abs(loss - state.prev_loss) / safe_gap, c)
        r = jnp.clip(r, 1.0 / c, c)
        d = jnp.where(state.count == 0, jnp.ones_like(state.d), b3 * state.d + (1.0 - b3) * r)
        updates = jax.tree.map(lambda u: u / d.astype(u.dtype), updates)
        return updates, ScaleByEveState(optax.safe_increment(state.count), d, loss)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def eve(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    b3: float = 0.999,
    c: float = 10.0,
    loss_min: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Eve's direction (before the learning rate): Adam's bias-corrected step
    `m_hat / (sqrt(v_hat) + eps)` (optax.scale_by_adam) divided by d_t
    (`scale_by_eve_feedback`). Needs `value=loss` at every update."""
    return optax.chain(optax.scale_by_adam(b1, b2, eps), scale_by_eve_feedback(b3, c, loss_min))


class ScaleByESGDState(NamedTuple):
    """ESGD state: update count, raw PRNG key data, sum of (Hv)^2 and the number of samples."""

    count: jax.Array
    key: jax.Array
    d_sum: Any
    num_samples: jax.Array


HvpFn = Callable[[Any], Any]


def esgd_probe(key_data: jax.Array, like: Any) -> tuple[jax.Array, Any]:
    """Draws ESGD's random vector: returns (next key data, v) with v ~ N(0, I) shaped like
    `like`; leaf i of v is `normal(fold_in(sub, i))` where `next, sub = split(key)`."""
    key, sub = jax.random.split(jax.random.wrap_key_data(key_data))
    leaves, treedef = jax.tree.flatten(like)
    v = [
        jax.random.normal(jax.random.fold_in(sub, i), x.shape, x.dtype)
        for i, x in enumerate(leaves)
    ]
    return jax.random.key_data(key), jax.tree.unflatten(treedef, v)


def scale_by_esgd(
    update_every: int = 20, eps: float = 1e-4, seed: int = 0
) -> optax.GradientTransformationExtraArgs:
    """Equilibrated SGD's preconditioner (Dauphin et al., 2015; optax has none).

    `D` is the running (arithmetic) mean of `(H v)^2` over random `v ~ N(0, I)` (see
    `esgd_probe`); the update is `g / (sqrt(D) + eps)`. A new sample is added on updates
    0, K, 2K, ... (K = `update_every`): the caller passes `hvp_fn=` (v -> H v at the
    current parameters and batch) to every update, and `lax.cond` evaluates it on those
    refresh steps only, so the Hessian-vector product costs nothing in between.
    """

    def init_fn(params: Any) -> ScaleByESGDState:
        key = jax.random.key_data(jax.random.key(seed))
        d_sum = jax.tree.map(jnp.zeros_like, params)
        return ScaleByESGDState(jnp.zeros([], jnp.int32), key, d_sum, jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None, *, hvp_fn: HvpFn | None = None, **extra_args):
        del params, extra_args
        if hvp_fn is None:
            raise ValueError("esgd needs Hessian-vector products: call tx.update(..., hvp_fn=hvp)")

        def refresh(_):
            key, v = esgd_probe(state.key, updates)
            hv = hvp_fn(v)
            d_sum = jax.tree.map(lambda d, h: d + jnp.square(h).astype(d.dtype), state.d_sum, hv)
            return d_sum, state.num_samples + 1, key

        def keep(_):
            return state.d_sum, state.num_samples, state.key

        d_sum, n, key = jax.lax.cond(state.count % update_every == 0, refresh, keep, None)
        updates = jax.tree.map(
            lambda g, d: g / (jnp.sqrt(d / n.astype(d.dtype)) + eps).astype(g.dtype),
            updates,
            d_sum,
        )
        return updates, ScaleByESGDState(optax.safe_increment(state.count), key, d_sum, n)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def add_l1_decay(
    weight_decay: float, mask: Any | Callable[[Any], Any] | None = None
) -> optax.GradientTransformation:
    """Adds `weight_decay * sign(params)` to the updates: the (sub)gradient of the L1 penalty
    `weight_decay * sum |p|` (optax only has the L2 `add_decayed_weights`)."""

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("L1 weight decay needs params: call tx.update(grads, state, params)")
        updates = jax.tree.map(lambda g, p: g + weight_decay * jnp.sign(p), updates, params)
        return updates, state

    tx = optax.GradientTransformation(optax.init_empty_state, update_fn)
    return optax.masked(tx, mask) if mask is not None else tx


class ScaleByRssState(NamedTuple):
    """AdaGrad state: the accumulated sum of squared gradients."""

    sum_of_squares: Any


def scale_by_rss_eps_outside(
    initial_accumulator_value: float = 0.0, eps: float = 1e-10
) -> optax.GradientTransformation:
    """AdaGrad with eps after the square root, `g / (sqrt(G) + eps)` with
    `G = G_0 + sum g^2` (PyTorch, Keras); optax.scale_by_rss puts eps inside the root."""

    def init_fn(params):
        return ScaleByRssState(
            jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params)
        )

    def update_fn(updates, state, params=None):
        del params
        acc = jax.tree.map(lambda g, a: a + jnp.square(g), updates, state.sum_of_squares)
        updates = jax.tree.map(lambda g, a: g / (jnp.sqrt(a) + eps), updates, acc)
        return updates, ScaleByRssState(acc)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByRpropState(NamedTuple):
    """Rprop state: per-entry step sizes and the sign of the last gradient (0 after a flip)."""

    step_sizes: Any
    prev_sign: Any


def scale_by_rprop(
    initial_step: float,
    eta_minus: float = 0.5,
    eta_plus: float = 1.2,
    min_step: float = 1e-6,
    max_step: float = 50.0,
) -> optax.GradientTransformation:
    """iRprop- (Igel and Huesken, 2000), as torch.optim.Rprop; returns `step * sign(g)`.

    Written here because optax 0.2.8's `scale_by_rprop` returns the previous step's update
    (zero at the first step; google-deepmind/optax PR #1725). Per entry: when `g * g_prev > 0`
    the step grows by `eta_plus`, when `< 0` it shrinks by `eta_minus` and g is taken as 0
    (no move now, and no sign comparison next time), both clipped to `[min_step, max_step]`.
    """

    def init_fn(params):
        return ScaleByRpropState(
            jax.tree.map(lambda p: jnp.full_like(p, initial_step), params),
            jax.tree.map(jnp.zeros_like, params),
        )

    def update_fn(updates, state, params=None):
        del params

        def step_size(g, prev, step):
            prod = jnp.sign(g) * prev
            factor = jnp.where(prod > 0, eta_plus, eta_minus)
            return jnp.where(prod == 0, step, jnp.clip(step * factor, min_step, max_step))

        def sign(g, prev):
            return jnp.where(jnp.sign(g) * prev < 0, 0.0, jnp.sign(g)).astype(g.dtype)

        steps = jax.tree.map(step_size, updates, state.prev_sign, state.step_sizes)
        signs = jax.tree.map(sign, updates, state.prev_sign)
        updates = jax.tree.map(lambda s, st: s * st, signs, steps)
        return updates, ScaleByRpropState(steps, signs)

    return optax.GradientTransformation(init_fn, update_fn)
