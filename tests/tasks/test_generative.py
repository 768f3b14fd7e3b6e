"""The generative tasks' shared parts: the `samples` evaluator in the loop, bits per dim,
and the refusal of standardized images."""

from __future__ import annotations

import math
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.config import ConfigError, default_config
from jaxlab.metrics import average
from jaxlab.tasks import register_task
from jaxlab.tasks.generative import GenerativeTask, bits_per_dim, require_unit_images
from jaxlab.train import train_and_evaluate
from jaxlab.train.setup import build_experiment


@flax.struct.dataclass
class _State:
    logits: jax.Array  # per-pixel Bernoulli logits [H, W, C]
    opt: optax.OptState


class _PixelBernoulli(GenerativeTask):
    """Independent Bernoulli pixels fitted by gradient descent (the smallest generator)."""

    name = "test_pixel_bernoulli"
    rng_streams = ("params",)

    def __init__(self, setup):
        require_unit_images(setup, self.name)
        self.image_shape = setup.info.features["image"].shape
        self.tx = setup.optimizer().tx

    def init_state(self, batch, ctx):
        logits = jnp.zeros(self.image_shape)
        return _State(logits, self.tx.init(logits))

    def _nll(self, logits, images):
        return optax.sigmoid_binary_cross_entropy(logits, images).sum(axis=(1, 2, 3))

    def train_step(self, state, batch, ctx):
        loss, grads = jax.value_and_grad(lambda p: self._nll(p, batch["image"]).mean())(
            state.logits
        )
        updates, opt = self.tx.update(grads, state.opt, state.logits)
        return _State(optax.apply_updates(state.logits, updates), opt), {"loss": average(loss)}

    def eval_step(self, state, batch, carry, ctx):
        return carry, {"loss": average(self._nll(state.logits, batch["image"]), batch["mask"])}

    def sample_images(self, task_state, key, num):
        probs = jax.nn.sigmoid(task_state.logits)
        return jax.random.bernoulli(key, probs, (num, *self.image_shape)).astype(jnp.float32)


register_task("test_pixel_bernoulli", _PixelBernoulli)


def _config():
    c = default_config()
    c.dataset.name, c.dataset.eval_split = "gen_digits", "validation"
    c.task.name, c.best_metric = "test_pixel_bernoulli", "loss"
    c.batch_size, c.eval_batch_size, c.num_train_steps = 50, 175, 4
    c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    c.evaluators = {"samples": {"num": 6, "every_steps": 2}}
    return c


def test_samples_evaluator_writes_the_same_noise_batch_as_images(tmp_path):
    train_and_evaluate(_config(), str(tmp_path))
    names = sorted(os.listdir(tmp_path / "images"))
    assert names == ["samples_grid_2.png", "samples_grid_4.png"]
    import matplotlib.image

    grid = matplotlib.image.imread(tmp_path / "images" / "samples_grid_4.png")
    assert grid.shape[0] >= 8 and grid.shape[1] >= 8 * 3  # a grid of six 8x8 images


def test_bad_samples_options_and_standardized_images_are_config_errors():
    bad = _config()
    bad.evaluators = {"samples": {"nums": 4}}
    with pytest.raises(ConfigError, match="unknown option.*nums.*valid: num, seed"):
        build_experiment(bad)
    tfds_digits = _config()
    tfds_digits.dataset.name, tfds_digits.dataset.eval_split = "digits", "test"
    with pytest.raises(ConfigError, match="dataset.normalize=False"):
        build_experiment(tfds_digits)


def test_bits_per_dim_is_nats_over_dims_ln2():
    assert bits_per_dim(64 * math.log(2.0), 64) == pytest.approx(1.0)
    np.testing.assert_allclose(bits_per_dim(jnp.asarray([181.3]), 64), 181.3 / 64 / math.log(2))
