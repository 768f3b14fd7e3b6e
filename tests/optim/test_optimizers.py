"""Each optimizer's first 50 steps against the numpy references of numpy_reference.py, on a
fixed quadratic and on a tiny MLP, to 1e-5 relative (float64 on both sides)."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from jax import numpy as jnp

from jaxlab import optim
from jaxlab.config import default_config
from jaxlab.optim.optimizers import resolved_weight_decay_type
from tests.optim.numpy_reference import Quadratic, Reference, TinyMLP

STEPS = 50
CASES = {
    "sgd": dict(learning_rate=0.05),
    "sgd_l2_clip_norm": dict(
        name="sgd",
        learning_rate=0.05,
        weight_decay=0.1,
        weight_decay_type="l2",
        grad_clip_norm=0.5,
    ),
    "sgd_l1_clip_value": dict(
        name="sgd",
        learning_rate=0.05,
        weight_decay=0.05,
        weight_decay_type="l1",
        grad_clip_value=0.3,
    ),
    "momentum": dict(learning_rate=0.02, momentum=0.9),
    "nesterov": dict(learning_rate=0.02, momentum=0.9),
    "adagrad": dict(learning_rate=0.1),
    "adagrad_eps_in_sqrt": dict(
        name="adagrad", learning_rate=0.1, eps_in_sqrt=True, adagrad_initial_accumulator=0.0
    ),
    "rmsprop": dict(learning_rate=0.01),
    "rmsprop_centered": dict(name="rmsprop", learning_rate=0.01, centered=True, eps_in_sqrt=True),
    "rprop": dict(learning_rate=0.01),
    "adam": dict(learning_rate=0.01),
    "adamw": dict(learning_rate=0.01, weight_decay=0.1),
    "lamb": dict(learning_rate=0.01, weight_decay=0.01),
    "eve": dict(learning_rate=0.01, eve_b3=0.9),
    "esgd": dict(learning_rate=0.05, esgd_update_every=20),
}


def make_config(case: str):
    c = default_config()
    c.optimizer.name = case
    for k, v in CASES[case].items():
        c.optimizer[k] = v
    return c


def to_tree(problem, leaves):
    if isinstance(problem, Quadratic):
        return {"a": leaves[0], "w": leaves[1]}
    return {
        "dense0": {"bias": leaves[0], "kernel": leaves[1]},
        "dense1": {"bias": leaves[2], "kernel": leaves[3]},
    }


def jax_loss(problem):
    if isinstance(problem, Quadratic):
        a, x_star = jnp.asarray(problem.A), jnp.asarray(problem.x_star)

        def loss(p):
            e = jnp.concatenate([p["a"].ravel(), p["w"].ravel()]) - x_star
            return 0.5 * e @ a @ e + 1.0

        return loss
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)

    def loss(p):
        h = jnp.tanh(x @ p["dense0"]["kernel"] + p["dense0"]["bias"])
        out = h @ p["dense1"]["kernel"] + p["dense1"]["bias"]
        return 0.5 * jnp.mean((out - y) ** 2) + 0.1

    return loss


def run_jax(config, problem):
    loss_fn = jax_loss(problem)
    tx = optim.create_optimizer(config, 1000)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss_fn)(params)
        hvp = lambda v: jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]
        updates, state = tx.update(grads, state, params, value=value, hvp_fn=hvp)
        return optax.apply_updates(params, updates), state

    params = to_tree(problem, [jnp.asarray(x) for x in problem.init])
    state = tx.init(params)
    traj = []
    for _ in range(STEPS):
        params, state = step(params, state)
        traj.append([np.asarray(x) for x in jax.tree.leaves(params)])
    return traj


def esgd_draws(seed: int, shapes):
    """ESGD's probe vectors as its docstring defines them (leaf i: fold_in(sub, i))."""
    state = {"key": jax.random.key(seed)}

    def draw():
        state["key"], sub = jax.random.split(state["key"])
        return [
            np.asarray(jax.random.normal(jax.random.fold_in(sub, i), s, jnp.float64))
            for i, s in enumerate(shapes)
        ]

    return draw


def run_reference(config, problem):
    hp = config.optimizer.to_dict()
    hp["wd_type"] = resolved_weight_decay_type(config.optimizer)
    params = [x.copy() for x in problem.init]
    draw = esgd_draws(config.seed, [p.shape for p in params])
    ref = Reference(hp, params, problem.names, draw)
    traj = []
    for _ in range(STEPS):
        params = ref.step(
            params,
            problem.grad(params),
            problem.loss(params),
            lambda v, p=params: problem.hvp(p, v),
        )
        traj.append(params)
    return traj


@pytest.mark.parametrize("problem_cls", [Quadratic, TinyMLP], ids=["quadratic", "mlp"])
@pytest.mark.parametrize("case", list(CASES))
def test_first_50_steps_match_numpy_reference(case, problem_cls):
    config = make_config(case)
    if case not in optim.list_optimizers():
        config.optimizer.name = case.split("_")[0]
    problem = problem_cls()
    with jax.enable_x64(True):
        got = run_jax(config, problem)
        want = run_reference(config, problem)
    moved = max(np.max(np.abs(w[0] - x0)) for w, x0 in zip(want[-1], problem.init, strict=True))
    assert moved > 1e-3, "the test problem should move the parameters"
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        for gi, wi in zip(g, w, strict=True):
            np.testing.assert_allclose(gi, wi, rtol=1e-5, atol=1e-9, err_msg=f"step {step}")


def test_every_optimizer_has_a_reference_case():
    assert set(optim.list_optimizers()) <= set(CASES)


def test_eve_requires_the_loss_and_esgd_the_hvp():
    params = {"w": jnp.ones(3)}
    for name, missing in (("eve", "value=loss"), ("esgd", "hvp_fn")):
        c = default_config()
        c.optimizer.name = name
        tx = optim.create_optimizer(c, 10)
        with pytest.raises(ValueError, match=missing):
            tx.update(params, tx.init(params), params)


def test_needs_hvp_only_for_esgd():
    for name in optim.list_optimizers():
        c = default_config()
        c.optimizer.name = name
        assert optim.needs_hvp(c) == (name == "esgd")


def test_esgd_calls_hvp_only_on_refresh_steps():
    c = default_config()
    c.optimizer.name = "esgd"
    c.optimizer.esgd_update_every = 3
    tx = optim.create_optimizer(c, 100)
    params = {"w": jnp.ones(2)}
    calls = []

    def hvp(v):
        jax.debug.callback(lambda: calls.append(1))
        return v

    step = jax.jit(lambda g, s, p: tx.update(g, s, p, hvp_fn=hvp))
    state = tx.init(params)
    for _ in range(7):
        _, state = step(params, state, params)
    jax.effects_barrier()
    assert len(calls) == 3  # steps 0, 3, 6


def test_ema_update_and_switch():
    ema = {"w": jnp.zeros(2)}
    new = optim.update_ema(ema, {"w": jnp.ones(2)}, 0.9)
    np.testing.assert_allclose(new["w"], [0.1, 0.1], rtol=1e-6)
    c = default_config()
    assert optim.ema_decay(c) is None
    c.optimizer.ema_decay = 0.999
    assert optim.ema_decay(c) == 0.999
