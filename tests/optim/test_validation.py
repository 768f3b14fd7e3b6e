"""Bad optimizer / schedule / group configs fail with one clear ConfigError line."""

from __future__ import annotations

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
    with pytest.raises(ConfigError, match="'encoder/.\\*' matches no parameter; parameters: w"):
        optim.validate_param_groups(c, {"w": jnp.ones(2)})


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
        optim.create_schedule(c, 100)(5)
