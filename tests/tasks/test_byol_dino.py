"""BYOL and DINO: the losses against numpy, the center update, the momentum schedule, local
crops, and the teacher that changes only through the EMA (checked bitwise)."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxlab.config import ConfigError, default_config
from jaxlab.data.features import Feature
from jaxlab.tasks.base import Optimizer, StepContext, TaskSetup
from jaxlab.tasks.byol import ByolTask, byol_loss
from jaxlab.tasks.dino import DinoTask, dino_loss, local_crops, update_center
from jaxlab.tasks.distill_base import ema_update, momentum_at, split_variables

B, H = 4, 8


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_dino_loss_matches_numpy():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(3, 5, 7)), rng.normal(size=(2, 5, 7))
    center = rng.normal(size=7) * 0.1
    ours = dino_loss(student, teacher, center, 0.1, 0.04)
    expected = np.zeros(5)
    pairs = 0
    for i in range(2):
        p_t = _softmax((teacher[i] - center) / 0.04)
        for j in range(3):
            if i == j:
                continue
            log_p_s = np.log(_softmax(student[j] / 0.1))
            expected += -(p_t * log_p_s).sum(-1)
            pairs += 1
    np.testing.assert_allclose(ours, expected / pairs, rtol=1e-5)


def test_byol_loss_matches_numpy():
    rng = np.random.default_rng(1)
    p, z = rng.normal(size=(2, 6, 5)), rng.normal(size=(2, 6, 5))

    def cos(a, b):
        return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)

    expected = (2 - 2 * cos(p[0], z[1])) + (2 - 2 * cos(p[1], z[0]))
    np.testing.assert_allclose(byol_loss(p, z), expected, rtol=1e-5, atol=1e-6)


def test_center_ema_and_momentum_schedule():
    rng = np.random.default_rng(2)
    c, mean = rng.normal(size=7), rng.normal(size=7)
    np.testing.assert_allclose(update_center(c, mean, 0.9), 0.9 * c + 0.1 * mean, rtol=1e-6)
    t, s = {"w": rng.normal(size=3)}, {"w": rng.normal(size=3)}
    np.testing.assert_allclose(ema_update(t, s, 0.99)["w"], 0.99 * t["w"] + 0.01 * s["w"])
    for step in (0, 25, 100):
        expected = 1 - (1 - 0.99) * (np.cos(np.pi * step / 100) + 1) / 2
        assert float(momentum_at(step, 0.99, 100, "cosine")) == pytest.approx(expected, 1e-6)
    assert float(momentum_at(50, 0.99, 100, "constant")) == pytest.approx(0.99)


def test_full_area_local_crop_is_the_resized_view():
    views = jax.random.uniform(jax.random.key(0), (2, 2, H, H, 1))
    crops = jax.jit(local_crops, static_argnums=(2, 3, 4))(
        views, jax.random.key(1), 2, 4, (1.0, 1.0)
    )
    assert crops.shape == (2, 2, 4, 4, 1)
    expected = jax.image.resize(views[:, 1], (2, 4, 4, 1), "linear")
    np.testing.assert_allclose(crops[1], expected, atol=1e-5)


def _setup(task_options: dict) -> TaskSetup:
    config = default_config()
    config.dataset.num_views = 2
    config.model = ml_collections.ConfigDict({"name": "small_cnn", "widths": (4,)})
    config.task = ml_collections.ConfigDict(task_options)
    info = types.SimpleNamespace(
        name="digits", features={"views": Feature((2, H, H, 1), "float32", "image")}
    )
    tx = optax.adam(1e-2)
    return TaskSetup(config, info, 10, 10, None, {"default": Optimizer(tx, lambda s: 1e-2)})


def _ctx(step: int) -> StepContext:
    names = ("params", "dropout", "crops")
    keys = jax.random.split(jax.random.key(step), len(names))
    return StepContext(step=jnp.int32(step), rngs=dict(zip(names, keys, strict=True)))


@pytest.fixture(scope="module", params=["byol", "dino"])
def trained(request):
    """(task, states before and after each of two jitted train steps, batch)."""
    if request.param == "byol":
        task = ByolTask(
            _setup({"name": "byol", "feature_dim": 8, "projection_dim": 4, "hidden_dim": 8})
        )
    else:
        task = DinoTask(
            _setup(
                {
                    "name": "dino",
                    "feature_dim": 8,
                    "hidden_dim": 8,
                    "bottleneck_dim": 4,
                    "out_dim": 6,
                    "local_crops": 2,
                }
            )
        )
    views = jax.random.normal(jax.random.key(3), (B, 2, H, H, 1))
    batch = {"views": views}
    state0 = task.init_state(batch, _ctx(0))
    step = jax.jit(task.train_step)
    state1, metrics = step(state0, batch, _ctx(0))
    state2, _ = step(state1, batch, _ctx(1))
    return task, [state0, state1, state2], batch, metrics


def test_teacher_changes_only_through_the_ema(trained):
    task, states, _, metrics = trained
    assert np.isfinite(float(metrics["loss"].compute()))
    ema = jax.jit(ema_update)
    for before, after in zip(states[:-1], states[1:], strict=True):
        student_params = task.teacher_part({"p": after.student["params"]})["p"]
        expected = ema(before.teacher["params"], student_params, jnp.float32(task.momentum))
        jax.tree.map(np.testing.assert_array_equal, after.teacher["params"], expected)  # bitwise
        changed = jax.tree.map(
            lambda a, b: bool(np.any(a != b)), before.teacher["params"], after.teacher["params"]
        )
        assert all(jax.tree.leaves(changed))


def test_teacher_receives_no_gradient(trained):
    task, states, batch, _ = trained
    state = states[1]
    views = batch["views"]
    x = jnp.concatenate([views[:, 0], views[:, 1]])
    student_params, _ = split_variables(state.student)
    teacher_params, teacher_rest = split_variables(state.teacher)

    def loss_of_teacher(params):
        out, _ = task.teacher_forward({"params": params, **teacher_rest}, x)
        out = jax.tree.map(lambda a: a.reshape(2, B, *a.shape[1:]), out)
        return task.objective(student_params, state, views, out, _ctx(5))[0]

    grads = jax.jit(jax.grad(loss_of_teacher))(teacher_params)
    assert all(bool(jnp.all(g == 0)) for g in jax.tree.leaves(grads))


def test_dino_center_update_in_the_step(trained):
    task, states, batch, _ = trained
    if not isinstance(task, DinoTask):
        pytest.skip("BYOL keeps no center")
    views = batch["views"]
    teacher, _ = task.teacher_forward(
        states[1].teacher, jnp.concatenate([views[:, 0], views[:, 1]])
    )
    expected = 0.9 * np.asarray(states[1].center) + 0.1 * np.asarray(teacher["projection"]).mean(0)
    np.testing.assert_allclose(states[2].center, expected, rtol=1e-5, atol=1e-6)


def test_embed_uses_inference_mode(trained):
    task, states, batch, _ = trained
    images = batch["views"][:, 0]
    full = task.embed(states[2], images)
    assert full.shape == (B, 8) and full.dtype == jnp.float32
    np.testing.assert_allclose(task.embed(states[2], images[:1]), full[:1], rtol=1e-5, atol=1e-6)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="task.temperature"):
        DinoTask(_setup({"name": "dino", "temperature": 0.1}))
    with pytest.raises(ConfigError, match="task.momentum must be in"):
        ByolTask(_setup({"name": "byol", "momentum": 1.5}))
    setup = _setup({"name": "byol"})
    setup.config.dataset.num_views = 0
    with pytest.raises(ConfigError, match="num_views >= 2"):
        ByolTask(setup)
