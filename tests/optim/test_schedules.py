"""Schedules against their closed forms, at warmup boundaries and cycle turning points."""

from __future__ import annotations

import math

import jax
import numpy as np
import optax
import pytest
from jax import numpy as jnp

from jaxlab import optim
from jaxlab.config import default_config
from jaxlab.optim.schedules import cyclical_schedule, update_schedule

LR = 0.1


def sched(name, steps=1000, **overrides):
    c = default_config()
    c.optimizer.learning_rate = LR
    c.schedule.name = name
    for k, v in overrides.items():
        c.schedule[k] = v
    return optim.create_schedule(c, steps)


def check(schedule, expected: dict):
    for step, want in expected.items():
        np.testing.assert_allclose(
            float(schedule(step)), want, rtol=1e-5, atol=1e-9, err_msg=f"step {step}"
        )


def test_constant_with_warmup_boundaries():
    check(
        sched("constant", warmup_steps=100), {0: 0.0, 50: LR / 2, 99: LR * 0.99, 100: LR, 999: LR}
    )
    check(sched("constant"), {0: LR, 500: LR})


def test_step_boundaries_count_from_end_of_warmup():
    s = sched("step", warmup_steps=10, boundaries=(100, 300), factors=(0.1, 0.5))
    check(s, {10: LR, 109: LR, 110: LR * 0.1, 309: LR * 0.1, 310: LR * 0.05, 999: LR * 0.05})


def test_exponential():
    check(
        sched("exponential", decay_rate=0.5, decay_steps=100),
        {0: LR, 100: LR / 2, 250: LR * 0.5**2.5},
    )
    check(sched("exponential", decay_rate=0.01), {1000: LR * 0.01, 500: LR * 0.1})


def test_linear():
    check(sched("linear", alpha=0.2), {0: LR, 500: LR * 0.6, 1000: LR * 0.2})


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_cosine_closed_form_with_floor(alpha):
    w, total = 100, 1100
    s = sched("cosine", steps=total, alpha=alpha, warmup_steps=w)
    main = total - w

    def closed(t):
        return LR * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / main)) + alpha)

    check(s, {w + t: closed(t) for t in (0, 1, 250, 500, 999, 1000)} | {50: LR / 2})
    assert float(s(w + main + 500)) == pytest.approx(alpha * LR, abs=1e-9)


def test_inverse_sqrt_is_transformer_form_after_warmup():
    s = sched("inverse_sqrt", warmup_steps=100)
    check(s, {50: LR / 2, 100: LR, 400: LR * math.sqrt(100 / 400), 900: LR / 3})
    check(sched("inverse_sqrt", timescale=10), {0: LR, 30: LR / 2})


def test_cyclical_turning_points():
    base, half = 0.01, 50
    tri = sched("cyclical", cycle_base_lr=base, half_cycle_steps=half)
    check(tri, {0: base, 25: (base + LR) / 2, 50: LR, 100: base, 150: LR, 175: (base + LR) / 2})
    tri2 = sched("cyclical", cycle_base_lr=base, half_cycle_steps=half, cycle_mode="triangular2")
    check(tri2, {50: LR, 100: base, 150: base + (LR - base) / 2, 250: base + (LR - base) / 4})
    g = 0.99
    exp = sched(
        "cyclical", cycle_base_lr=base, half_cycle_steps=half, cycle_mode="exp_range", cycle_gamma=g
    )
    check(exp, {0: base, 50: base + (LR - base) * g**50, 150: base + (LR - base) * g**150})


def test_cyclical_schedule_function_directly():
    s = cyclical_schedule(1.0, 3.0, 10)
    check(s, {0: 1.0, 5: 2.0, 10: 3.0, 15: 2.0, 20: 1.0})


def test_one_cycle():
    s = sched("one_cycle", pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    check(s, {0: LR / 25, 300: LR, 1000: LR / 25 / 1e4, 150: (LR / 25 + LR) / 2})


def test_warmup_reaches_the_schedule_start():
    s = sched("one_cycle", warmup_steps=100)
    check(s, {0: 0.0, 50: LR / 25 / 2, 100: LR / 25})


def test_linear_scaling_rule():
    c = default_config()
    c.optimizer.learning_rate = LR
    c.batch_size = 512
    c.schedule.linear_scaling = True
    c.schedule.base_batch_size = 256
    check(optim.create_schedule(c, 100), {0: 2 * LR})
    c.optimizer.accumulate_steps = 2
    check(optim.create_schedule(c, 100), {0: 4 * LR})


def test_schedule_is_constant_within_accumulation_windows():
    c = default_config()
    c.optimizer.learning_rate = LR
    c.optimizer.accumulate_steps = 4
    c.schedule.name = "linear"
    per_step = optim.create_schedule(c, 400)
    per_update = update_schedule(c, 400)
    for step in (0, 1, 3, 4, 7, 397):
        assert float(per_step(step)) == pytest.approx(float(per_update(step // 4)))
    assert float(per_step(4)) == pytest.approx(LR * (1 - 4 / 400))


@pytest.mark.parametrize("accumulate", [1, 3])
def test_logged_rate_is_the_applied_rate(accumulate):
    """SGD's parameter change over each update equals -schedule(step) * gradient."""
    c = default_config()
    c.optimizer.name = "sgd"
    c.optimizer.learning_rate = LR
    c.optimizer.accumulate_steps = accumulate
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 6
    n = 30
    tx = optim.create_optimizer(c, n)
    schedule = optim.create_schedule(c, n)
    params = {"w": jnp.ones(2)}
    grads = {"w": jnp.array([1.0, -2.0])}
    state = tx.init(params)
    update = jax.jit(tx.update)
    for step in range(n):
        updates, state = update(grads, state, params)
        if (step + 1) % accumulate == 0:
            want = -float(schedule(step)) * grads["w"]
            np.testing.assert_allclose(updates["w"], want, rtol=1e-5, atol=1e-9)
        else:
            assert float(optax.global_norm(updates)) == 0.0
