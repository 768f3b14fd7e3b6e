"""The pure pieces of the learning-rate range test (Smith, 2017; fastai's `lr_find`): the
exponentially growing rate, and the suggested rates read off the loss-vs-rate curve.

The script that trains with `lr_range_schedule`, plots the curve and writes the JSON is
`scripts/lr_find.py`; everything it decides is computed here.
"""

from __future__ import annotations

import numpy as np
import optax
from jax import numpy as jnp

from jaxlab.config import ConfigError


def lr_range_schedule(min_lr: float, max_lr: float, num_steps: int) -> optax.Schedule:
    """Returns `lr(t) = min_lr * (max_lr / min_lr) ** (t / (num_steps - 1))`: from `min_lr` at
    step 0 to `max_lr` at step `num_steps - 1` (held there after)."""
    if not 0 < min_lr < max_lr:
        raise ConfigError(f"the range test needs 0 < min_lr < max_lr, got {min_lr}, {max_lr}")
    if not isinstance(num_steps, int) or num_steps < 2:
        raise ConfigError(f"the range test needs num_steps >= 2, got {num_steps!r}")
    ratio = np.log(max_lr / min_lr)

    def schedule(step):
        frac = jnp.clip(jnp.asarray(step, float) / (num_steps - 1), 0.0, 1.0)
        return min_lr * jnp.exp(ratio * frac)

    return schedule


def smooth_losses(losses: np.ndarray, beta: float = 0.98) -> np.ndarray:
    """Debiased exponential moving average of the losses (as fastai's range test)."""
    out, avg = np.empty(len(losses)), 0.0
    for i, loss in enumerate(np.asarray(losses, float)):
        avg = beta * avg + (1 - beta) * loss
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def suggest_learning_rates(
    lrs: np.ndarray, losses: np.ndarray, *, beta: float = 0.98, diverge_factor: float = 4.0
) -> dict:
    """Reads the range test's curve: returns a dict with

    - `max_lr`: the rate of steepest descent of the smoothed loss (most negative slope
      against log rate) before the loss rises (before its minimum), ignoring the first
      tenth of the points (the smoothing's start-up transient);
    - `base_lr`: a third of `max_lr`, and `base_lr_low`: a quarter (the usual base range);
    - `min_loss_lr`: the rate at the smoothed loss's minimum;
    - `diverged_lr`: the first rate where the smoothed loss is non-finite or above
      `diverge_factor` times its minimum so far (None if it never diverged).

    Raises ValueError when the loss never decreases (rates too high or too few steps).
    """
    lrs, smooth = np.asarray(lrs, float), smooth_losses(losses, beta)
    if len(lrs) != len(smooth) or len(lrs) < 3:
        raise ValueError("need at least 3 (rate, loss) pairs of equal length")
    stop, best = len(smooth), np.inf
    for i, value in enumerate(smooth):
        if not np.isfinite(value) or value > diverge_factor * best:
            stop = i
            break
        best = min(best, value)
    lowest = int(np.argmin(smooth[:stop]))
    if lowest < 2:
        raise ValueError("the loss never decreased: lower min_lr or run more steps")
    slope = np.gradient(smooth[: lowest + 1], np.log(lrs[: lowest + 1]))
    # The first points carry the smoothing's start-up transient (as fastai, skip them).
    skip = min(max(2, len(lrs) // 10), lowest)
    steepest = skip + int(np.argmin(slope[skip:]))
    max_lr = float(lrs[steepest])
    return {
        "max_lr": max_lr,
        "base_lr": max_lr / 3,
        "base_lr_low": max_lr / 4,
        "min_loss_lr": float(lrs[lowest]),
        "diverged_lr": float(lrs[stop]) if stop < len(lrs) else None,
        "steepest_index": steepest,
    }
