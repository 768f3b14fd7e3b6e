"""Bad optimizer / schedule / group configs fail with one clear ConfigError line."""

from __future__ import annotations

import math

import pytest
from jax import numpy as jnp

from jaxlab import optim
from jaxlab.config import ConfigError, default_config


def bad(match: str, n: int = 100, **changes):
    c = default_config()
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        if value is None:
            del c[section][key]
        else:
            c[section][key] = value
    with pytest.raises(ConfigError, match=match) as err:
        optim.validate_optimizer_config(c, n)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        optim.create_optimizer(c, n)
    return str(err.value)


def test_unknown_names_list_the_valid_choices():
    msg = bad("unknown optimizer 'adamm'", optimizer__name="adamm")
    assert all(name in msg for name in optim.list_optimizers())
    msg = bad("unknown schedule 'cosin'", schedule__name="cosin")
    assert all(name in msg for name in optim.list_schedules())
    bad(
        "unknown schedule.cycle_mode",
        schedule__name="cyclical",
        schedule__half_cycle_steps=10,
        schedule__cycle_mode="sine",
    )
    bad("unknown optimizer.weight_decay_type", optimizer__weight_decay_type="l3")


def test_missing_required_hyperparameters():
    bad("missing required hyperparameter optimizer.b2", optimizer__b2=None)
    bad("missing required hyperparameter optimizer.learning_rate", optimizer__learning_rate=None)
    bad(
        "missing required hyperparameter optimizer.eve_b3",
        optimizer__name="eve",
        optimizer__eve_b3=None,
    )
    bad("schedule.half_cycle_steps must be > 0", schedule__name="cyclical")
    bad("'step' needs schedule.boundaries", schedule__name="step")


def test_negative_or_out_of_range_values():
    bad("optimizer.learning_rate must be > 0", optimizer__learning_rate=-0.1)
    bad("optimizer.weight_decay must be >= 0", optimizer__weight_decay=-1e-4)
    bad("optimizer.momentum must be < 1", optimizer__name="momentum", optimizer__momentum=1.0)
    bad("optimizer.b1 must be < 1", optimizer__b1=1.5)
    bad("optimizer.accumulate_steps must be > 0", optimizer__accumulate_steps=0)
    bad("optimizer.ema_decay must be < 1", optimizer__ema_decay=1.0)
    bad(
        "cycle_base_lr .* must not exceed",
        schedule__name="cyclical",
        schedule__half_cycle_steps=10,
        schedule__cycle_base_lr=1.0,
    )


def test_warmup_longer_than_training():
    bad(
        r"schedule.warmup_steps \(100\) must be shorter than training \(100 steps\)",
        schedule__warmup_steps=100,
    )
    bad("num_train_steps must be > 0", n=0)


def test_rprop_needs_a_constant_schedule_and_coupled_decay():
    bad("rprop adapts its own step sizes", optimizer__name="rprop", schedule__name="cosine")
    bad(
        "rprop supports coupled weight decay only",
        optimizer__name="rprop",
        optimizer__weight_decay=0.1,
        optimizer__weight_decay_type="decoupled",
    )


def test_bad_group_specs():
    bad("optimizer.lr_multipliers entry 'backbone' must be", optimizer__lr_multipliers="backbone")
    bad("bad regex", optimizer__frozen="(unclosed")
    c = default_config()
    c.optimizer.lr_multipliers = "encoder/.*=0.1"
    with pytest.raises(
        ConfigError,
        match=r"optimizer.lr_multipliers pattern 'encoder/\.\*' matches no parameter .*; "
        "parameters: w$",
    ):
        optim.validate_param_groups(c, {"w": jnp.ones(2)})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_refused_naming_the_key(value):
    """NaN passes every range check (all its comparisons are false) and the run would only
    die later with a non-finite loss; infinities too. Checked for every float of the
    optimizer and schedule sections, whether or not the chosen optimizer reads it."""
    bad("optimizer.learning_rate must be a finite number", optimizer__learning_rate=value)
    bad("optimizer.weight_decay must be a finite number", optimizer__weight_decay=value)
    bad("optimizer.grad_clip_norm must be a finite number", optimizer__grad_clip_norm=value)
    bad("optimizer.b2 must be a finite number", optimizer__b2=value)
    bad("optimizer.eve_loss_min must be a finite number", optimizer__eve_loss_min=value)
    bad("schedule.alpha must be a finite number", schedule__alpha=value)
    bad("schedule.cycle_base_lr must be a finite", schedule__cycle_base_lr=value)
    bad(
        r"schedule.factors must be a finite number, got \(0.1, ",
        schedule__name="step",
        schedule__boundaries=(10, 20),
        schedule__factors=(0.1, value),
    )


# The rate at step 5 of 100 of every schedule with the default keys (lr 1e-3, no warmup,
# alpha 0; step: x0.1 at 10; exponential: x0.1 over the 100 steps; inverse_sqrt: tau = 1;
# cyclical: triangular from 1e-4 with half cycles of 10 steps; one_cycle: cosine from
# lr / 25 up to lr at 30 steps), from the formulas of jaxlab/optim/schedules.py.
DEFAULT_RATE_AT_STEP_5 = {
    "constant": 1e-3,
    "step": 1e-3,
    "exponential": 1e-3 * 0.1 ** (5 / 100),
    "linear": 1e-3 * (1 - 5 / 100),
    "cosine": 1e-3 * 0.5 * (1 + math.cos(math.pi * 5 / 100)),
    "inverse_sqrt": 1e-3 * math.sqrt(1 / (5 + 1)),
    "cyclical": 1e-4 + (1e-3 - 1e-4) * 5 / 10,
    "one_cycle": 1e-3 / 25 + (1e-3 - 1e-3 / 25) * 0.5 * (1 - math.cos(math.pi * 5 / 30)),
}


def test_defaults_are_valid_for_every_optimizer_and_schedule():
    for name in optim.list_optimizers():
        c = default_config()
        c.optimizer.name = name
        optim.validate_optimizer_config(c, 100)
    for name in optim.list_schedules():
        c = default_config()
        c.schedule.name = name
        if name == "cyclical":
            c.schedule.half_cycle_steps = 10
        if name == "step":
            c.schedule.boundaries, c.schedule.factors = (10,), (0.1,)
        schedule = optim.create_schedule(c, 100)
        assert float(schedule(5)) == pytest.approx(DEFAULT_RATE_AT_STEP_5[name], rel=1e-5), name
