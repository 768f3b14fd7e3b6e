"""Optimizers: `create_optimizer(config, num_train_steps)` turns `config.optimizer` and
`config.schedule` into one optax transformation.

Structure (outermost first): learning-rate multiplier groups (`groups.with_lr_multipliers`)
-> frozen groups (`groups.with_frozen`: zero update, no state) -> gradient accumulation
(`optax.MultiSteps`, `optimizer.accumulate_steps`) -> the chain of `optimizers.build_chain`
(clipping, weight decay, the optimizer, the schedule of `schedules.update_schedule`).

What the training loop does:

- `validate_optimizer_config(config, num_train_steps)` before anything starts, and
  `validate_param_groups(config, params)` after init (both raise `ConfigError`).
- `tx = create_optimizer(config, num_train_steps)`; `opt_state = tx.init(params)`;
  every step `tx.update(grads, opt_state, params, value=loss)` (Eve reads the loss; the
  others ignore it), plus `hvp_fn=v -> H v` (the Hessian-vector product of this batch's loss
  at the current params, same tree as params) when `needs_hvp(config)` (ESGD). ESGD
  evaluates it under `lax.cond` on its refresh steps only.
- log `create_schedule(config, num_train_steps)(step)` as the learning rate.
- when `ema_decay(config)` is not None, keep `ema_params` (initialised to params) and set
  `ema_params = update_ema(ema_params, new_params, decay)` after every step; evaluate with
  them.
"""

from __future__ import annotations

from typing import Any

import ml_collections
import optax

from jaxlab.config import ConfigError, check_finite
from jaxlab.optim import groups
from jaxlab.optim.checks import require, require_number
from jaxlab.optim.groups import param_groups, validate_param_groups
from jaxlab.optim.optimizers import (
    OPTIMIZERS,
    build_chain,
    list_optimizers,
    validate_optimizer_hparams,
)
from jaxlab.optim.schedules import (
    create_schedule,
    list_schedules,
    peak_learning_rate,
    update_schedule,
    validate_schedule_config,
)

__all__ = [
    "OPTIMIZERS",
    "create_optimizer",
    "create_schedule",
    "ema_decay",
    "list_optimizers",
    "list_schedules",
    "needs_hvp",
    "param_groups",
    "update_ema",
    "validate_optimizer_config",
    "validate_param_groups",
]


def validate_optimizer_config(config: ml_collections.ConfigDict, num_train_steps: int) -> None:
    """Raises ConfigError (one line, valid choices) for a bad optimizer, schedule, group
    pattern syntax, accumulation or EMA setting, or a NaN / infinite value anywhere in
    `config.optimizer` and `config.schedule` (patterns against params:
    `validate_param_groups`)."""
    o = config.optimizer
    check_finite(o, "optimizer")
    check_finite(config.schedule, "schedule")
    validate_optimizer_hparams(o)
    validate_schedule_config(config, num_train_steps)
    if o.name == "rprop" and (config.schedule.name != "constant" or config.schedule.warmup_steps):
        raise ConfigError(
            "rprop adapts its own step sizes: use schedule.name='constant' without warmup "
            f"(got {config.schedule.name!r}, warmup_steps={config.schedule.warmup_steps})"
        )
    require_number(o, "optimizer", "accumulate_steps", integer=True)
    require_number(o, "optimizer", "ema_decay", allow_zero=True, below=1.0)
    for key in ("frozen", "lr_multipliers"):
        if not isinstance(require(o, "optimizer", key), str):
            raise ConfigError(f"optimizer.{key} must be a string, got {o[key]!r}")
    groups.parse_lr_multipliers(o.lr_multipliers)
    if o.frozen:
        groups.compile_pattern(o.frozen, "frozen")
    if require(o, "optimizer", "weight_decay_exclude") not in ("", "default"):
        groups.compile_pattern(o.weight_decay_exclude, "weight_decay_exclude")


def create_optimizer(
    config: ml_collections.ConfigDict, num_train_steps: int
) -> optax.GradientTransformationExtraArgs:
    """Builds the whole optax transformation from `config.optimizer` and `config.schedule`
    (see the module docstring for its structure and how the loop calls it). `init` raises
    ConfigError when a group pattern matches no parameter."""
    validate_optimizer_config(config, num_train_steps)
    o = config.optimizer
    if o.name == "rprop":
        lr = peak_learning_rate(config)
    else:
        lr = update_schedule(config, num_train_steps)
    tx = build_chain(o, lr, decay_mask=groups.decay_mask(config), seed=config.get("seed", 0))
    if o.accumulate_steps > 1:
        ms = optax.MultiSteps(tx, o.accumulate_steps)
        tx = optax.GradientTransformationExtraArgs(ms.init, ms.update)
    if o.frozen:
        tx = groups.with_frozen(tx, config)
    return groups.with_lr_multipliers(tx, config)


def needs_hvp(config: ml_collections.ConfigDict) -> bool:
    """True when the optimizer needs `hvp_fn=` in `update` (ESGD)."""
    return config.optimizer.name == "esgd"


def ema_decay(config: ml_collections.ConfigDict) -> float | None:
    """Returns `optimizer.ema_decay`, or None when the parameter EMA is off (0)."""
    decay = float(config.optimizer.ema_decay)
    return decay if decay > 0 else None


def update_ema(ema_params: Any, params: Any, decay: float) -> Any:
    """One EMA step: `decay * ema_params + (1 - decay) * params` (optax.incremental_update)."""
    return optax.incremental_update(params, ema_params, 1.0 - decay)
