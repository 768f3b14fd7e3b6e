"""SimCLR: NT-Xent against a numpy loop, the task's step and features, its config checks,
and the same loss and update under jit and under pmap on 8 simulated devices.

`python -m tests.tasks.test_simclr` (with XLA_FLAGS=--xla_force_host_platform_device_count=8)
runs the 8-device comparison in a fresh process (the device count is fixed when JAX
starts); the slow test below starts it.
"""

from __future__ import annotations

import numpy as np
import optax
import pytest

from jaxlab.losses_contrastive import nt_xent


def numpy_nt_xent(z1: np.ndarray, z2: np.ndarray, tau: float) -> np.ndarray:
    """NT-Xent written out: for each anchor i of the 2N views, -log(exp(s_ip / tau) /
    sum_{k != i} exp(s_ik / tau)) with cosine similarities s."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n2, n = len(z), len(z1)
    out = np.zeros(n2)
    for i in range(n2):
        p = (i + n) % n2
        denominator = sum(np.exp(z[i] @ z[k] / tau) for k in range(n2) if k != i)
        out[i] = -np.log(np.exp(z[i] @ z[p] / tau) / denominator)
    return out


def test_nt_xent_matches_numpy():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    for tau in (0.1, 0.5):
        loss, correct = nt_xent(z1, z2, tau)
        np.testing.assert_allclose(loss, numpy_nt_xent(z1, z2, tau), rtol=1e-5)
        z = np.concatenate([z1, z2]) / np.linalg.norm(np.concatenate([z1, z2]), axis=1)[:, None]
        sim = z @ z.T - 10 * np.eye(10)
        np.testing.assert_array_equal(correct, sim.argmax(1) == (np.arange(10) + 5) % 10)


def make_setup(axis_name=None, **task):
    from configs.digits_simclr import get_config
    from jaxlab.tasks.base import Optimizer, TaskSetup

    config = get_config("smoke")
    config.task.update(task)
    opt = Optimizer(optax.sgd(0.1), optax.constant_schedule(0.1))
    return TaskSetup(config, None, 10, 10, axis_name, {"default": opt})


def test_config_errors():
    from jaxlab.config import ConfigError
    from jaxlab.tasks.simclr import SimCLRTask

    with pytest.raises(ConfigError, match="task.temperature must be > 0"):
        SimCLRTask(make_setup(temperature=0.0))
    setup = make_setup()
    setup.config.task.temprature = 0.5
    with pytest.raises(ConfigError, match="no option task.temprature; valid: task.temperature"):
        SimCLRTask(setup)
    setup = make_setup()
    setup.config.dataset.num_views = 0
    with pytest.raises(ConfigError, match="needs dataset.num_views = 2"):
        SimCLRTask(setup)


def one_step(axis_name, batch, devices=1):
    """(loss metric, new params) of one train step of the smoke SimCLR task, under jit
    (axis_name None) or pmap over `devices`."""
    import jax
    import jax.numpy as jnp

    from jaxlab.tasks.base import StepContext
    from jaxlab.tasks.simclr import SimCLRTask

    task = SimCLRTask(make_setup(axis_name))
    keys = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    ctx = StepContext(step=jnp.zeros((), jnp.int32), rngs=keys)
    state = task.init_state(batch, ctx)
    if axis_name is None:
        new, metrics = jax.jit(task.train_step)(state, batch, ctx)
        return float(metrics["loss"].compute()), new.params

    def step(state, batch):
        c = StepContext(step=jnp.zeros((), jnp.int32), rngs=keys, axis_name=axis_name)
        new, metrics = task.train_step(state, batch, c)
        return new, jax.lax.psum(metrics["loss"].total, axis_name) / jax.lax.psum(
            metrics["loss"].count, axis_name
        )

    replicated = jax.tree.map(lambda a: jnp.stack([a] * devices), state)
    sharded = jax.tree.map(lambda a: a.reshape(devices, -1, *a.shape[1:]), batch)
    new, loss = jax.pmap(step, axis_name=axis_name)(replicated, sharded)
    return float(loss[0]), jax.tree.map(lambda a: a[0], new.params)


def views_batch(n=16):
    rng = np.random.default_rng(3)
    return {"views": rng.normal(size=(n, 2, 8, 8, 1)).astype(np.float32)}


def test_train_step_loss_and_features():
    import jax
    import jax.numpy as jnp

    from jaxlab.tasks.base import StepContext
    from jaxlab.tasks.simclr import SimCLRTask

    batch = views_batch(8)
    task = SimCLRTask(make_setup())
    ctx = StepContext(
        step=jnp.zeros((), jnp.int32),
        rngs={"params": jax.random.key(0), "dropout": jax.random.key(1)},
    )
    state = task.init_state(batch, ctx)
    new, metrics = jax.jit(task.train_step)(state, batch, ctx)
    variables = {"params": state.params, **state.model_state}
    x = jnp.concatenate([batch["views"][:, 0], batch["views"][:, 1]])
    (_, z), _ = task.model.apply(variables, x, train=True, mutable=["batch_stats"])
    expected = numpy_nt_xent(np.asarray(z[:8]), np.asarray(z[8:]), task.temperature)
    np.testing.assert_allclose(metrics["loss"].compute(), expected.mean(), rtol=1e-5)
    assert not jax.tree.all(jax.tree.map(np.array_equal, new.params, state.params))
    # Features: the encoder alone, inference mode (running statistics), deterministic.
    images = batch["views"][:, 0]
    embed = jax.jit(task.embed)
    h = embed(new, images)
    np.testing.assert_array_equal(h, embed(new, images))
    enc = {
        "params": new.params["encoder"],
        "batch_stats": new.model_state["batch_stats"]["encoder"],
    }
    np.testing.assert_allclose(h, task.model.encoder.apply(enc, images, train=False), atol=1e-6)
    h_train = task.model.encoder.apply(enc, images, train=True, mutable=["batch_stats"])[0]
    assert not np.allclose(h, h_train, atol=1e-3)


@pytest.mark.slow
def test_same_loss_and_update_under_jit_and_pmap_on_8_devices():
    from tests.conftest import run_script

    proc = run_script(
        "tests.tasks.test_simclr", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "same loss and update" in proc.stdout


if __name__ == "__main__":
    import jax

    assert jax.device_count() == 8, jax.device_count()
    batch = views_batch(16)
    loss_jit, params_jit = one_step(None, batch)
    loss_pmap, params_pmap = one_step("data", batch, devices=8)
    # Per-device negatives (2 examples per device) would give a loss ~1 lower.
    np.testing.assert_allclose(loss_pmap, loss_jit, rtol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
        params_pmap,
        params_jit,
    )
    print(f"same loss and update: jit {loss_jit:.6f} pmap {loss_pmap:.6f}")
