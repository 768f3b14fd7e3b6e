"""The task `gan` (jaxlab/tasks/gan.py) and the DCGAN networks (jaxlab/models/dcgan.py):
each player's update leaves the other's variables bitwise unchanged, the discriminator's
loss has exactly zero gradient with respect to the generator, the losses equal their closed
forms, one train step of `d_steps` discriminator updates and a generator update, masked
evaluation, samples in [0, 1], and the networks' shapes for the three image sizes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.gen_digits_dcgan import get_config
from jaxlab.config import ConfigError
from jaxlab.data.gen_digits import gen_digits_examples
from jaxlab.models import build_model
from jaxlab.models.dcgan import DCGAN, to_model_range
from jaxlab.tasks.base import StepContext, stream_keys
from jaxlab.tasks.gan import discriminator_loss, generator_loss
from jaxlab.train.setup import build_experiment

BATCH = 4


def _config(**task):
    c = get_config("smoke")
    c.evaluators = {}
    for key, value in task.items():
        c.task[key] = value
    return c


def _ctx(task, seed=0):
    return StepContext(
        step=jnp.zeros((), jnp.int32), rngs=stream_keys(jax.random.key(seed), task.rng_streams)
    )


def _tree_equal(a, b) -> None:
    jax.tree.map(np.testing.assert_array_equal, a, b)


def _tree_differs(a, b) -> bool:
    return any(
        not np.array_equal(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def gan():
    """A tiny gan task on gen_digits (d_steps 2), its initial state, a batch and a context."""
    task = build_experiment(_config(d_steps=2)).task
    images = gen_digits_examples("train")["image"][:BATCH]
    batch = {"image": jnp.asarray(images), "label": jnp.zeros((BATCH,), jnp.int32)}
    ctx = _ctx(task)
    state = jax.jit(task.init_state)(batch, ctx)
    real = to_model_range(batch["image"], task.output)
    d_update = jax.jit(task.discriminator_update)
    g_update = jax.jit(task.generator_update, static_argnums=1)
    return task, state, batch, real, ctx, d_update, g_update


def test_each_players_update_leaves_the_other_bitwise_unchanged(gan):
    task, state, _, real, ctx, d_update, g_update = gan
    key = jax.random.key(3)
    after_d, _ = d_update(state, real, key, ctx)
    _tree_equal(after_d.generator, state.generator)  # params and batch statistics
    _tree_equal(after_d.generator_opt, state.generator_opt)
    assert _tree_differs(after_d.discriminator["params"], state.discriminator["params"])
    assert _tree_differs(after_d.discriminator["batch_stats"], state.discriminator["batch_stats"])

    after_g, _ = g_update(state, BATCH, key, ctx)
    _tree_equal(after_g.discriminator, state.discriminator)
    _tree_equal(after_g.discriminator_opt, state.discriminator_opt)
    assert _tree_differs(after_g.generator["params"], state.generator["params"])
    assert _tree_differs(after_g.generator["batch_stats"], state.generator["batch_stats"])


def test_discriminator_loss_has_exactly_zero_gradient_wrt_the_generator(gan):
    task, state, _, real, _, _, _ = gan
    key = jax.random.key(1)

    @jax.jit
    def gradients(gen_params):
        def d_loss_of_generator(p):
            s = state.replace(generator={**state.generator, "params": p})
            return task.discriminator_objective(state.discriminator["params"], s, real, key)[0]

        def g_loss(p):
            return task.generator_objective(p, state, BATCH, key)[0]

        return jax.grad(d_loss_of_generator)(gen_params), jax.grad(g_loss)(gen_params)

    d_grads, g_grads = gradients(state.generator["params"])
    for g in jax.tree.leaves(d_grads):
        np.testing.assert_array_equal(g, np.zeros_like(g))
    # Without the stop-gradient the same loss would reach the generator: its own loss does.
    assert all(np.abs(g).max() > 0 for g in jax.tree.leaves(g_grads))


def test_losses_equal_their_closed_forms():
    logits = np.array([-30.0, -3.0, -0.5, 0.0, 0.7, 4.0, 25.0])
    p = 1.0 / (1.0 + np.exp(-logits))
    ns = np.asarray(generator_loss(jnp.asarray(logits, jnp.float32), "non_saturating"))
    mm = np.asarray(generator_loss(jnp.asarray(logits, jnp.float32), "minimax"))
    np.testing.assert_allclose(ns, -np.log(p), rtol=1e-5, atol=1e-6)  # -log D(G(z))
    np.testing.assert_allclose(mm, np.log1p(-p), rtol=1e-5, atol=1e-6)  # log(1 - D(G(z)))
    real, fake = logits, logits[::-1]
    d = np.asarray(discriminator_loss(jnp.asarray(real, jnp.float32), jnp.asarray(fake)))
    p_real, p_fake = 1.0 / (1.0 + np.exp(-real)), 1.0 / (1.0 + np.exp(-fake))
    np.testing.assert_allclose(d, -np.log(p_real) - np.log1p(-p_fake), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="unknown task.loss 'wgan'; valid choices"):
        generator_loss(jnp.zeros(2), "wgan")


def test_train_step_is_d_steps_discriminator_updates_then_a_generator_update(gan):
    task, state, batch, real, ctx, d_update, g_update = gan
    new, metrics = jax.jit(task.train_step)(state, batch, ctx)
    assert _tree_differs(new.generator["params"], state.generator["params"])
    assert _tree_differs(new.discriminator["params"], state.discriminator["params"])
    # The same as the two updates called one by one with the step's keys.
    keys = jax.random.split(ctx.rng("noise"), 3)
    manual, values = d_update(state, real, keys[0], ctx)
    manual, values2 = d_update(manual, real, keys[1], ctx)
    manual, g_loss = g_update(manual, BATCH, keys[2], ctx)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), new, manual)
    d_loss = np.concatenate([values["d_loss"], values2["d_loss"]]).mean()
    np.testing.assert_allclose(metrics["d_loss"].compute(), d_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["g_loss"].compute(), np.mean(g_loss), rtol=1e-5)
    for name in ("d_real", "d_fake"):
        assert 0.0 < float(metrics[name].compute()) < 1.0


def test_eval_counts_only_the_real_rows_and_samples_are_unit_images(gan):
    task, state, batch, _, ctx, _, _ = gan
    mask = jnp.asarray([1.0, 1.0, 0.0, 0.0])
    eval_step = jax.jit(task.eval_step)
    _, m1 = eval_step(state, {**batch, "mask": mask}, None, ctx)
    garbage = batch["image"].at[2:].set(1.0)
    _, m2 = eval_step(state, {**batch, "image": garbage, "mask": mask}, None, ctx)
    for name in task.eval_metric_names:
        assert m1[name].count == 2
        np.testing.assert_allclose(m1[name].compute(), m2[name].compute(), rtol=1e-6)
    images = jax.jit(task.sample_images, static_argnums=2)(state, jax.random.key(0), 5)
    assert images.shape == (5, 8, 8, 1) and images.dtype == jnp.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


def test_dcgan_init_is_normal_with_std_002(gan):
    _, state, *_ = gan
    params = state.generator["params"]
    kernels = np.concatenate([np.ravel(v["kernel"]) for k, v in params.items() if "kernel" in v])
    scales = np.concatenate([np.ravel(v["scale"]) for k, v in params.items() if "scale" in v])
    assert abs(kernels.mean()) < 0.003 and 0.017 < kernels.std() < 0.023, kernels.std()
    assert abs(scales.mean() - 1.0) < 0.02 and 0.0 < scales.std() < 0.04


@pytest.mark.parametrize(
    "shape, gen_widths, disc_widths",
    [
        ((8, 8, 1), (16, 8), (8, 16)),
        ((28, 28, 1), (16, 8), (8, 16)),
        ((32, 32, 3), (16, 8, 4), (4, 8, 16)),
    ],
)
def test_networks_shapes_for_the_three_image_sizes(shape, gen_widths, disc_widths):
    model = build_model(
        "dcgan",
        {"generator_widths": gen_widths, "discriminator_widths": disc_widths},
        image_shape=shape,
    )
    assert isinstance(model, DCGAN)
    z, x = jnp.zeros((3, 5)), jnp.zeros((3, *shape))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), z, x, train=False))
    images, logits = jax.eval_shape(lambda v: model.apply(v, z, x, train=False), variables)
    assert images.shape == (3, *shape) and logits.shape == (3,)
    # The discriminator's first layer has no norm, the others have one each.
    disc_norms = [k for k in variables["params"]["discriminator"] if k.startswith("norm")]
    assert len(disc_norms) == len(disc_widths) - 1


def test_bad_gan_configs_are_config_errors():
    with pytest.raises(ConfigError, match="unknown task.loss 'wasserstein'; valid choices"):
        build_experiment(_config(loss="wasserstein"))
    with pytest.raises(ConfigError, match="task.d_steps must be > 0"):
        build_experiment(_config(d_steps=0))
    with pytest.raises(ConfigError, match="task 'gan' has no option.*task.top_k; valid"):
        build_experiment(_config(top_k=5))
    wide = _config()
    wide.model.generator_widths = (8, 8, 8, 8)  # 8x8 images cannot take 4 doublings
    with pytest.raises(ConfigError, match="divisible by 16, got 8; give 1 or 2 or 3 width"):
        build_experiment(wide)
