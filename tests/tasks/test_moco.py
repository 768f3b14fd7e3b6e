"""MoCo v2: InfoNCE against a numpy loop, the momentum key encoder (changed only by the
EMA, bitwise), the FIFO queue, group ("shuffled") batch norm, exact continuation from a
serialized state, and the config checks."""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.config import ConfigError
from jaxlab.losses_contrastive import info_nce
from jaxlab.tasks.base import Optimizer, StepContext, TaskSetup
from jaxlab.tasks.moco import MocoTask


def numpy_info_nce(q: np.ndarray, k: np.ndarray, queue: np.ndarray, tau: float) -> np.ndarray:
    """-log(exp(q.k+/tau) / (exp(q.k+/tau) + sum_j exp(q.n_j/tau))), normalized vectors."""
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    q, k, queue = unit(q.astype(np.float64)), unit(k.astype(np.float64)), unit(queue)
    out = []
    for i in range(len(q)):
        positive = np.exp(q[i] @ k[i] / tau)
        negatives = sum(np.exp(q[i] @ n / tau) for n in queue)
        out.append(-np.log(positive / (positive + negatives)))
    return np.array(out)


def test_info_nce_matches_numpy():
    rng = np.random.default_rng(0)
    q, k, queue = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(7, 3))
    loss, correct = info_nce(q, k, queue, 0.2)
    np.testing.assert_allclose(loss, numpy_info_nce(q, k, queue, 0.2), rtol=1e-5)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    scores = np.concatenate([np.sum(unit(q) * unit(k), -1)[:, None], unit(q) @ unit(queue).T], 1)
    np.testing.assert_array_equal(correct, scores.argmax(1) == 0)


def make_task(**task) -> MocoTask:
    from configs.digits_moco import get_config

    config = get_config("smoke")
    config.task.update(task)
    opt = Optimizer(optax.sgd(0.5), optax.constant_schedule(0.5))
    return MocoTask(TaskSetup(config, None, 10, 10, None, {"default": opt}))


@pytest.fixture(scope="module")
def moco():
    task = make_task()
    rng = np.random.default_rng(1)
    batch = {"views": jnp.asarray(rng.normal(size=(16, 2, 8, 8, 1)), jnp.float32)}
    keys = {name: jax.random.key(i) for i, name in enumerate(task.rng_streams)}
    ctx = StepContext(step=jnp.zeros((), jnp.int32), rngs=keys)
    state = task.init_state(batch, ctx)
    step = jax.jit(task.train_step)
    first, metrics = step(state, batch, ctx)
    return task, batch, ctx, state, step, first, metrics


def test_key_encoder_changes_only_by_the_momentum_update(moco):
    task, _, _, state, _, first, metrics = moco
    assert np.isfinite(metrics["loss"].compute())
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), state.params, first.params)
    assert any(jax.tree.leaves(changed))  # the query encoder learned
    # theta_k <- m theta_k + (1 - m) theta_q, written out and compiled by XLA as the step
    # is (XLA:CPU fuses it into multiply-adds, so numpy's rounding differs in the last bit).
    step_size = 1.0 - task.momentum
    ema = jax.jit(lambda k, q: step_size * q + (1.0 - step_size) * k)
    expected = jax.tree.map(
        lambda k, q: np.asarray(ema(k, q)),
        state.key_params,
        first.params,
    )
    jax.tree.map(np.testing.assert_array_equal, first.key_params, expected)


def test_queue_is_a_fifo_of_the_keys(moco):
    task, batch, ctx, state, _, first, _ = moco
    assert int(first.queue_ptr) == 16
    np.testing.assert_array_equal(first.queue[16:], state.queue[16:])
    perm = jax.random.permutation(ctx.rng("shuffle"), 16)
    k, _ = task.grouped_forward(state.key_params, state.key_model_state, batch["views"][:, 1], perm)
    k = k / jnp.linalg.norm(k, axis=-1, keepdims=True)
    np.testing.assert_allclose(first.queue[:16], k, atol=1e-5)


def test_state_round_trip_continues_exactly(moco):
    _, batch, ctx, _, step, first, _ = moco
    second, _ = step(first, batch, ctx)
    blob = flax.serialization.to_bytes(first)
    restored = flax.serialization.from_bytes(first, blob)
    again, _ = step(restored, batch, ctx)
    jax.tree.map(np.testing.assert_array_equal, second, again)
    assert int(second.queue_ptr) == 0  # 32 rows, 16 per step: the pointer wrapped


def test_group_batch_norm(moco):
    task, batch, _, state, _, _, _ = moco
    x = batch["views"][:, 0]
    z, _ = task.grouped_forward(state.params, state.model_state, x)
    # Group 0 (rows 0-7) is normalized on its own: rows of group 1 do not reach it.
    other = jnp.asarray(np.random.default_rng(2).normal(size=(8, 8, 8, 1)), jnp.float32)
    z2, _ = task.grouped_forward(state.params, state.model_state, x.at[8:].set(other))
    np.testing.assert_allclose(z2[:8], z[:8], atol=1e-6)
    assert not np.allclose(z2[8:], z[8:], atol=1e-3)
    perm = jnp.arange(16)[::-1]
    zp, _ = task.grouped_forward(state.params, state.model_state, x, perm)
    zr, _ = task.grouped_forward(state.params, state.model_state, x[perm])
    np.testing.assert_allclose(zp, zr[jnp.argsort(perm)], atol=1e-6)


def test_config_errors():
    with pytest.raises(
        ConfigError, match=r"task.queue_size \(40\) must be a multiple of batch_size"
    ):
        make_task(queue_size=40)
    with pytest.raises(ConfigError, match=r"task.momentum must be in \[0, 1\)"):
        make_task(momentum=1.0)
    with pytest.raises(ConfigError, match=r"task.bn_groups \(3\) must divide"):
        make_task(bn_groups=3)
