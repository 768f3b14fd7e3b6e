"""The diffusion task: schedules against their closed forms, the forward closed form against
sequential noising, the samplers against an exact noise model, the EMA, config errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.gen_digits_ddpm import get_config
from jaxlab.config import ConfigError
from jaxlab.tasks.base import StepContext
from jaxlab.tasks.diffusion import (
    COSINE_OFFSET,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    make_schedule,
    q_sample,
)
from jaxlab.train.setup import build_experiment


def test_schedules_equal_their_closed_forms():
    linear = make_schedule("linear", 1000)
    betas = np.asarray(linear.betas, np.float64)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    np.testing.assert_allclose(np.diff(betas), (0.02 - 1e-4) / 999, rtol=1e-3)
    np.testing.assert_allclose(linear.alphas_cumprod, np.cumprod(1 - betas), rtol=1e-5)
    np.testing.assert_allclose(linear.alphas_cumprod_prev[1:], linear.alphas_cumprod[:-1])
    assert float(linear.alphas_cumprod_prev[0]) == 1.0

    cosine = make_schedule("cosine", 1000)
    t = np.arange(1, 1000) / 1000  # abar after steps 0..T-2 (the last one is clipped)
    f = lambda u: np.cos((u + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2  # noqa: E731
    np.testing.assert_allclose(cosine.alphas_cumprod[:-1], f(t) / f(0), rtol=1e-4, atol=1e-7)
    assert float(cosine.betas[-1]) == pytest.approx(0.999)  # 1 - abar(T)/abar(T-1) = 1, clipped
    assert float(jnp.max(cosine.betas)) <= 0.999 + 1e-7
    with pytest.raises(ConfigError, match="unknown task.schedule 'quadratic'; valid choices"):
        make_schedule("quadratic", 10)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_closed_form_forward_equals_sequential_noising_in_distribution(name):
    """x_t after t+1 steps of q(x_s | x_{s-1}) and the closed form q(x_t | x_0) both have
    mean sqrt(abar_t) x_0 and variance 1 - abar_t (within 5 standard errors)."""
    schedule = make_schedule(name, 40)
    chains, x0 = 40_000, 0.6
    betas = schedule.betas

    def noise_step(x, inputs):
        beta, key = inputs
        x = jnp.sqrt(1 - beta) * x + jnp.sqrt(beta) * jax.random.normal(key, x.shape)
        return x, x

    keys = jax.random.split(jax.random.key(0), 40)
    _, xs = jax.lax.scan(noise_step, jnp.full((chains,), x0), (betas, keys))  # [T, chains]
    for t in (0, 9, 39):
        abar = float(schedule.alphas_cumprod[t])
        closed = q_sample(
            schedule,
            jnp.full((chains,), x0),
            jnp.full((chains,), t),
            jax.random.normal(jax.random.key(t + 1), (chains,)),
        )
        for draws in (xs[t], closed):
            mean, var = float(jnp.mean(draws)), float(jnp.var(draws))
            assert abs(mean - math.sqrt(abar) * x0) < 5 * math.sqrt((1 - abar) / chains), (t, mean)
            assert abs(var - (1 - abar)) < 5 * (1 - abar) * math.sqrt(2 / chains), (t, var)


def _gaussian_data_eps(schedule, std):
    """The exact E[eps | x_t] for data N(0, std^2): x_t ~ N(0, abar std^2 + 1 - abar)."""

    def eps_fn(x, t):
        abar = schedule.alphas_cumprod[t][:, None]
        return jnp.sqrt(1 - abar) * x / (abar * std**2 + 1 - abar)

    return eps_fn


def test_samplers_with_the_exact_noise_model_recover_the_data_distribution():
    """With the exact noise predictor of N(0, 0.25^2) data, ancestral sampling (all T
    steps) and deterministic DDIM (all T steps) draw samples of std 0.25 (the
    x0 clipping at [-1, 1] is 4 std away); with a point mass at c both return exactly c."""
    schedule, std, shape = make_schedule("linear", 1000), 0.25, (4000, 1)
    eps_fn = _gaussian_data_eps(schedule, std)
    key = jax.random.key(3)
    draws = {
        "ddpm": jax.jit(lambda k: ddpm_sample(eps_fn, schedule, k, shape))(key),
        "ddim": jax.jit(lambda k: ddim_sample(eps_fn, schedule, k, shape, 1000))(key),
    }
    for name, x in draws.items():
        assert float(jnp.std(x)) == pytest.approx(std, rel=0.06), name
        assert abs(float(jnp.mean(x))) < 4 * std / math.sqrt(shape[0]), name
    # DDIM (eta = 0) is a deterministic map of x_T: the same x_T gives the same image, and
    # it is monotone for this 1-D linear problem (no noise reorders the samples).
    x_T = np.asarray(jax.random.normal(key, shape))[:, 0]
    assert np.all(np.diff(np.asarray(draws["ddim"])[np.argsort(x_T), 0]) >= 0)

    c = 0.3
    point = lambda x, t: (
        (x - jnp.sqrt(schedule.alphas_cumprod[t])[:, None] * c)
        / jnp.sqrt(  # noqa: E731
            1 - schedule.alphas_cumprod[t]
        )[:, None]
    )
    np.testing.assert_allclose(ddpm_sample(point, schedule, key, (8, 1)), c, atol=2e-4)
    np.testing.assert_allclose(ddim_sample(point, schedule, key, (8, 1), 7), c, atol=2e-4)
    np.testing.assert_array_equal(ddim_timesteps(1000, 4), [0, 333, 666, 999])


@pytest.fixture(scope="module")
def experiment():
    c = get_config("smoke")
    c.model.dropout = 0.0
    return build_experiment(c)


def _ctx(step=0):
    keys = jax.random.split(jax.random.key(step), 3)
    return StepContext(
        step=jnp.asarray(step, jnp.int32),
        rngs=dict(zip(("params", "dropout", "noise"), keys, strict=True)),
    )


def random_like(tree, key, scale=0.3):
    """A pytree shaped like `tree` filled from ONE normal draw: on XLA:CPU each random op
    compiles slowly, and `model.init` has one per parameter."""
    leaves, treedef = jax.tree.flatten(tree)
    flat = scale * jax.random.normal(key, (sum(a.size for a in leaves),))
    ends = np.cumsum([a.size for a in leaves])[:-1]
    parts = jnp.split(flat, ends)
    return jax.tree.unflatten(
        treedef, [p.reshape(a.shape) for p, a in zip(parts, leaves, strict=True)]
    )


def test_ema_follows_its_formula_and_eval_and_sampling_use_it(experiment):
    task = experiment.task
    batch = {"image": jnp.linspace(0, 1, 4 * 64).reshape(4, 8, 8, 1), "mask": jnp.ones((4,))}
    abstract = jax.eval_shape(lambda: task.init_state(batch, _ctx()))
    params = random_like(abstract.params, jax.random.key(1))
    # init_state's EMA is a copy of the initial weights (checked on shapes; values below).
    assert jax.tree.structure(abstract.ema_params) == jax.tree.structure(abstract.params)
    state = task.with_variables(abstract, {"params": params})
    for p, ema in zip(
        jax.tree.leaves(state.params), jax.tree.leaves(state.ema_params), strict=True
    ):
        np.testing.assert_array_equal(p, ema)
    train = jax.jit(task.train_step)
    state = state.replace(ema_params=random_like(params, jax.random.key(2)))
    new, _ = train(state, batch, _ctx(2))
    d = float(task.ema_decay_at(2))  # the decay of step 2 (with the config's warm-up rule)
    for ema0, p1, ema1 in zip(
        *(jax.tree.leaves(t) for t in (state.ema_params, new.params, new.ema_params)), strict=True
    ):
        np.testing.assert_allclose(ema1, d * ema0 + (1 - d) * p1, rtol=1e-5, atol=1e-6)

    evaluate = jax.jit(lambda s: task.eval_step(s, batch, None, _ctx(9))[1]["loss"].compute())
    perturb = lambda tree: jax.tree.map(lambda a: a + 0.3, tree)  # noqa: E731
    base = float(evaluate(new))
    assert float(evaluate(new.replace(params=perturb(new.params)))) == base
    assert float(evaluate(new.replace(ema_params=perturb(new.ema_params)))) != base

    sample = jax.jit(task.sample_images, static_argnums=2)
    key = jax.random.key(0)
    images = sample(new, key, 2)
    assert images.shape == (2, 8, 8, 1) and images.dtype == jnp.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert float(images.max()) > float(images.min())
    np.testing.assert_array_equal(sample(new.replace(params=perturb(new.params)), key, 2), images)
    changed = sample(new.replace(ema_params=perturb(new.ema_params)), key, 2)
    assert not np.array_equal(changed, images)


@pytest.mark.parametrize(
    "key, value, match",
    [
        (
            "schedule",
            "quadratic",
            "unknown task.schedule 'quadratic'; valid choices: linear, cosine",
        ),
        ("sampler", "euler", "unknown task.sampler 'euler'; valid choices: ddpm, ddim"),
        ("sample_steps", 11, r"task.sample_steps must be <= task.timesteps \(10\)"),
        ("ema_decay", 1.0, r"task.ema_decay must be in \[0, 1\)"),
        ("timesteps", 0, "task.timesteps must be > 0"),
        ("ema_warmup", "yes", "task.ema_warmup must be true or false"),
    ],
)
def test_bad_task_options_are_config_errors(key, value, match):
    c = get_config("smoke")
    del c.task[key]  # the typed field would refuse a value of another type before the task
    c.task[key] = value
    with pytest.raises(ConfigError, match=match):
        build_experiment(c)


def test_ema_warmup_is_the_num_updates_rule(experiment):
    task = experiment.task
    task_warm = type(task).__new__(type(task))
    task_warm.__dict__.update(task.__dict__, ema_warmup=True, ema_decay=0.99)
    for step in (0, 5, 100, 10_000):
        expected = min(0.99, (1 + step) / (10 + step))
        assert float(task_warm.ema_decay_at(step)) == pytest.approx(expected), step
    task_cold = type(task).__new__(type(task))
    task_cold.__dict__.update(task.__dict__, ema_warmup=False, ema_decay=0.99)
    assert float(task_cold.ema_decay_at(0)) == pytest.approx(0.99)
