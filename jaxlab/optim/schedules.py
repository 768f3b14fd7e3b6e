"""Learning-rate schedules built from `config.schedule` (optax's own schedule functions, plus
the two optax lacks: `cyclical_schedule` and `inverse_sqrt_schedule`).

Let `lr` be `optimizer.learning_rate` (times the linear-scaling factor when
`schedule.linear_scaling`), `W = schedule.warmup_steps`, `T = num_train_steps - W` and
`t = step - W` the step counted from the end of warmup. Then for `t >= 0`:

- `constant`: `lr`.
- `step`: `lr` times the product of the `factors[i]` whose `boundaries[i] <= t`.
- `exponential`: `lr * decay_rate ** (t / decay_steps)` (`decay_steps = 0` means `T`).
- `linear`: from `lr` to `alpha * lr` at `t = T`.
- `cosine`: `lr * ((1 - alpha) * 0.5 * (1 + cos(pi * t / T)) + alpha)`; `alpha * lr` is the
  floor (alpha = 0 gives the textbook `0.5 * lr * (1 + cos(pi t / T))`).
- `inverse_sqrt`: `lr * sqrt(tau / (t + tau))`, `tau = timescale` or `max(W, 1)`; with
  `tau = W` this is the Transformer's `lr * sqrt(W / step)`.
- `cyclical` (Smith, 2017): between `cycle_base_lr` and `lr` with a half cycle of
  `half_cycle_steps`; `triangular`, `triangular2` (amplitude halved each cycle) or
  `exp_range` (amplitude times `cycle_gamma ** t`).
- `one_cycle`: optax's cosine one-cycle over `T` steps: from `lr / div_factor` up to `lr` at
  `pct_start * T`, then down to `lr / (div_factor * final_div_factor)`.

During warmup (`step < W`) the rate grows linearly from 0 to the schedule's value at `t = 0`.
With gradient accumulation over k micro-batches the optimizer updates once every k loop
steps; the rate of update u is `schedule(k * u)`, and `create_schedule` returns that value
for every loop step of the window, so the logged rate is the one applied.
"""

from __future__ import annotations

import ml_collections
import optax
from jax import numpy as jnp

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.optim.checks import require, require_bool, require_number

SCHEDULES = (
    "constant",
    "step",
    "exponential",
    "linear",
    "cosine",
    "inverse_sqrt",
    "cyclical",
    "one_cycle",
)
CYCLE_MODES = ("triangular", "triangular2", "exp_range")


def list_schedules() -> list[str]:
    """Returns the valid values of `config.schedule.name`."""
    return list(SCHEDULES)


def lr_scale_factor(config: ml_collections.ConfigDict) -> float:
    """Returns the linear-scaling-rule factor `batch_size * accumulate_steps / base_batch_size`
    (1.0 when `schedule.linear_scaling` is off)."""
    s = config.schedule
    if not require_bool(s, "schedule", "linear_scaling"):
        return 1.0
    base = require_number(s, "schedule", "base_batch_size", integer=True)
    batch = require_number(config, "config", "batch_size", integer=True)
    k = config.optimizer.get("accumulate_steps", 1)
    return float(batch * k / base)


def validate_schedule_config(config: ml_collections.ConfigDict, num_train_steps: int) -> None:
    """Raises ConfigError for an unknown schedule, a missing or bad hyperparameter, a negative
    rate or warmup as long as training."""
    s = config.schedule
    check_choice("schedule", require(s, "schedule", "name"), SCHEDULES)
    check_positive("num_train_steps", num_train_steps, integer=True)
    lr = require_number(config.optimizer, "optimizer", "learning_rate")
    warmup = require_number(s, "schedule", "warmup_steps", allow_zero=True, integer=True)
    if warmup > 0 and warmup >= num_train_steps:
        raise ConfigError(
            f"schedule.warmup_steps ({warmup}) must be shorter than training "
            f"({num_train_steps} steps)"
        )
    lr_scale_factor(config)
    if s.name in ("linear", "cosine"):
        require_number(s, "schedule", "alpha", allow_zero=True)
    elif s.name == "step":
        bounds, factors = require(s, "schedule", "boundaries"), require(s, "schedule", "factors")
        if not bounds or len(bounds) != len(factors):
            raise ConfigError(
                "schedule 'step' needs schedule.boundaries and schedule.factors of equal, "
                f"non-zero length, got {tuple(bounds)!r} and {tuple(factors)!r}"
            )
        for b in bounds:
            check_positive("schedule.boundaries entry", b, integer=True)
        for f in factors:
            check_positive("schedule.factors entry", f, allow_zero=True)
        if list(bounds) != sorted(set(bounds)):
            raise ConfigError(f"schedule.boundaries must increase, got {tuple(bounds)!r}")
    elif s.name == "exponential":
        require_number(s, "schedule", "decay_rate")
        require_number(s, "schedule", "decay_steps", allow_zero=True, integer=True)
    elif s.name == "inverse_sqrt":
        require_number(s, "schedule", "timescale", allow_zero=True, integer=True)
    elif s.name == "cyclical":
        check_choice("schedule.cycle_mode", require(s, "schedule", "cycle_mode"), CYCLE_MODES)
        require_number(s, "schedule", "half_cycle_steps", integer=True)
        base = require_number(s, "schedule", "cycle_base_lr", allow_zero=True)
        if base > lr:
            raise ConfigError(
                f"schedule.cycle_base_lr ({base}) must not exceed optimizer.learning_rate ({lr})"
            )
        if require_number(s, "schedule", "cycle_gamma") > 1:
            raise ConfigError(f"schedule.cycle_gamma must be in (0, 1], got {s.cycle_gamma!r}")
    elif s.name == "one_cycle":
        require_number(s, "schedule", "pct_start", below=1.0)
        require_number(s, "schedule", "div_factor")
        require_number(s, "schedule", "final_div_factor")


def cyclical_schedule(
    base_lr: float,
    max_lr: float,
    half_cycle_steps: int,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> optax.Schedule:
    """Smith's cyclical learning rate (optax has none): with `c = floor(1 + t / (2 s))` and
    `x = |t / s - 2 c + 1|`, the rate is `base + (max - base) * max(0, 1 - x) * a(t)`, where
    `a = 1` (triangular), `1 / 2 ** (c - 1)` (triangular2) or `gamma ** t` (exp_range).
    It starts at `base_lr` (t = 0), peaks at t = s, 3s, ... and returns to base at 2s, 4s, ...
    """
    s = float(half_cycle_steps)

    def schedule(step):
        t = jnp.asarray(step, float)
        cycle = jnp.floor(1.0 + t / (2.0 * s))
        x = jnp.abs(t / s - 2.0 * cycle + 1.0)
        if mode == "triangular":
            amp = 1.0
        elif mode == "triangular2":
            amp = 1.0 / 2.0 ** (cycle - 1.0)
        else:
            amp = gamma**t
        return base_lr + (max_lr - base_lr) * jnp.maximum(0.0, 1.0 - x) * amp

    return schedule


def inverse_sqrt_schedule(peak: float, timescale: int) -> optax.Schedule:
    """`peak * sqrt(tau / (t + tau))` (optax has no inverse-square-root decay)."""
    tau = float(timescale)
    return lambda step: peak * jnp.sqrt(tau / (jnp.asarray(step, float) + tau))


def _main_schedule(config: ml_collections.ConfigDict, lr: float, steps: int) -> optax.Schedule:
    """The post-warmup schedule over `steps` steps, peaking at `lr`."""
    s = config.schedule
    if s.name == "constant":
        return optax.constant_schedule(lr)
    if s.name == "step":
        return optax.piecewise_constant_schedule(
            lr, {int(b): float(f) for b, f in zip(s.boundaries, s.factors, strict=True)}
        )
    if s.name == "exponential":
        return optax.exponential_decay(lr, s.decay_steps or steps, s.decay_rate)
    if s.name == "linear":
        return optax.linear_schedule(lr, s.alpha * lr, steps)
    if s.name == "cosine":
        return optax.cosine_decay_schedule(lr, steps, alpha=s.alpha)
    if s.name == "inverse_sqrt":
        return inverse_sqrt_schedule(lr, s.timescale or max(s.warmup_steps, 1))
    if s.name == "cyclical":
        base = s.cycle_base_lr * lr_scale_factor(config)
        return cyclical_schedule(base, lr, s.half_cycle_steps, s.cycle_mode, s.cycle_gamma)
    return optax.cosine_onecycle_schedule(steps, lr, s.pct_start, s.div_factor, s.final_div_factor)


def peak_learning_rate(config: ml_collections.ConfigDict) -> float:
    """Returns `optimizer.learning_rate` with the linear scaling rule applied when on."""
    return float(config.optimizer.learning_rate) * lr_scale_factor(config)


def update_schedule(config: ml_collections.ConfigDict, num_train_steps: int) -> optax.Schedule:
    """Returns the rate as a function of the optimizer's update count (the clock optax's
    `scale_by_learning_rate` counts); equal to `create_schedule` without accumulation."""
    validate_schedule_config(config, num_train_steps)
    s = config.schedule
    lr, warmup = peak_learning_rate(config), int(s.warmup_steps)
    main = _main_schedule(config, lr, max(num_train_steps - warmup, 1))
    if warmup > 0:
        main = optax.join_schedules(
            [optax.linear_schedule(0.0, main(0), warmup), main], boundaries=[warmup]
        )
    k = int(config.optimizer.get("accumulate_steps", 1))
    return main if k == 1 else (lambda update: main(k * update))


def create_schedule(config: ml_collections.ConfigDict, num_train_steps: int) -> optax.Schedule:
    """Returns the learning rate as a function of the training loop's step (what the loop
    logs); with accumulation over k micro-batches it is constant over each k-step window."""
    per_update = update_schedule(config, num_train_steps)
    k = int(config.optimizer.get("accumulate_steps", 1))
    return per_update if k == 1 else (lambda step: per_update(jnp.asarray(step) // k))
