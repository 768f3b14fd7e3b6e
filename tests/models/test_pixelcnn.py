"""PixelCNN (jaxlab/models/pixelcnn.py, jaxlab/nn/masked_conv.py, jaxlab/tasks/pixelcnn.py):
causal masks (exact zeros of the Jacobian, no blind spot in the gated stacks), the exact NLL
against numpy, and ancestral sampling under jit."""

from __future__ import annotations

import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.models import get_model
from jaxlab.tasks.pixelcnn import image_levels, nll_per_image
from jaxlab.train.setup import build_experiment
from tests.conftest import ROOT

SIZE = 5


def _dependence(gated: bool, channels: int) -> np.ndarray:
    """bool [D, D] (D = 5 * 5 * channels, raster then channel order): whether some logit of
    subpixel o depends on input subpixel i, over four random inputs (a ReLU can zero one
    input's derivative by chance, not all four)."""
    model = get_model(
        "pixelcnn",
        levels=3,
        features=12,
        num_layers=3,
        gated=gated,
        kernel_size=3,
        first_kernel_size=3,
    )
    x = jax.random.uniform(jax.random.key(0), (4, SIZE, SIZE, channels))
    variables = jax.jit(model.init)(jax.random.key(1), x[:1])

    def logits_sum(image):  # [D]: each subpixel's logits summed
        return model.apply(variables, image[None])[0].sum(-1).reshape(-1)

    jac = jax.jit(jax.vmap(jax.jacrev(logits_sum)))(x)
    d = SIZE * SIZE * channels
    return (np.abs(np.asarray(jac).reshape(4, d, d)) > 0).any(axis=0)


@pytest.fixture(scope="module", params=[(False, 1), (True, 1), (False, 3), (True, 3)])
def dependence(request):
    gated, channels = request.param
    return gated, channels, _dependence(gated, channels)


def test_each_subpixel_sees_only_earlier_subpixels_and_gated_has_no_blind_spot(dependence):
    gated, channels, dep = dependence
    # Exactly zero gradient with respect to the subpixel itself and every later one
    # (raster order, then R < G < B within a pixel).
    assert not np.triu(dep).any()
    earlier = np.tril(np.ones_like(dep), -1)
    if gated:  # 3 gated blocks reach the whole 5 x 5 past: every earlier subpixel counts
        assert dep[earlier].all()
    else:
        # The plain PixelCNN's blind spot: pixel (2, 1) never sees (1, 3), up and two to
        # the right, although both its neighbours in the kernel's reach are seen.
        def index(i, j, c=0):
            return (i * SIZE + j) * channels + c

        assert not dep[index(2, 1), index(1, 3)]
        assert dep[index(2, 1), index(1, 2)] and dep[index(2, 1), index(2, 0)]
    if channels == 3:  # G sees R of its own pixel, B sees R and G (type B after type A)
        p = (2 * SIZE + 2) * 3
        assert dep[p + 1, p] and dep[p + 2, p] and dep[p + 2, p + 1]


def test_nll_is_the_numpy_categorical_log_likelihood():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 4, 2, 5)).astype(np.float32)
    levels = rng.integers(0, 5, size=(3, 4, 4, 2))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, levels[..., None], -1).sum(axis=(1, 2, 3, 4))
    np.testing.assert_allclose(jax.jit(nll_per_image)(logits, levels), expected, rtol=1e-5)


def test_levels_and_binarization():
    images = jnp.asarray(np.arange(17, dtype=np.float32) / 16).reshape(1, 17, 1, 1)
    np.testing.assert_array_equal(image_levels(images, 17)[0, :, 0, 0], np.arange(17))
    np.testing.assert_array_equal(
        image_levels(images, 2, "threshold")[0, :, 0, 0], np.arange(17) > 8
    )
    grey = jnp.full((4000,), 0.3)
    drawn = image_levels(grey, 2, "dynamic", jax.random.key(0))
    assert set(np.unique(drawn)) == {0, 1} and abs(float(drawn.mean()) - 0.3) < 0.03


def _smoke_config():
    path = os.path.join(ROOT, "configs", "gen_digits_pixelcnn.py")
    spec = importlib.util.spec_from_file_location("gen_digits_pixelcnn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config("smoke")


@pytest.fixture(scope="module")
def task_and_variables():
    task = build_experiment(_smoke_config()).task
    x = jnp.zeros((1, *task.image_shape))
    # Larger weights than at init, so that the argmax varies over the image.
    variables = jax.jit(lambda key: jax.tree.map(lambda a: 3.0 * a + 0.1, task.model.init(key, x)))(
        jax.random.key(3)
    )
    return task, variables


def test_task_nll_reads_the_levels_scaled_to_unit_interval(task_and_variables):
    task, variables = task_and_variables
    levels = np.random.default_rng(1).integers(0, 17, size=(2, 8, 8, 1))
    logits, nll = jax.jit(lambda v, x: (task.model.apply(v, x / 16.0), task.nll(v, x)))(
        variables, jnp.asarray(levels)
    )
    logits = np.asarray(logits, np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, levels[..., None], -1).sum(axis=(1, 2, 3, 4))
    np.testing.assert_allclose(nll, expected, rtol=1e-4)


def test_greedy_sample_is_the_argmax_of_its_own_conditionals(task_and_variables):
    """Each subpixel was drawn from the network run on the canvas of the earlier ones: as
    the conditionals of subpixel i depend only on subpixels < i, rerunning the network on
    the finished greedy sample gives back every drawn value as the argmax."""
    task, variables = task_and_variables
    sample = jax.jit(task.sample_levels, static_argnums=(2, 3))(
        variables, jax.random.key(0), 2, 0.0
    )
    greedy = jax.jit(lambda v, x: jnp.argmax(task.model.apply(v, x / 16.0), -1))(variables, sample)
    np.testing.assert_array_equal(np.asarray(greedy), np.asarray(sample))
    assert len(np.unique(np.asarray(sample))) > 1  # not a constant image


def test_bad_task_options_are_config_errors():
    for key, value, match in [
        ("binarize", "otsu", "unknown task.binarize 'otsu'; valid choices: , threshold"),
        ("binarize", "threshold", "binary pixels: set model.levels=2"),
        ("sample_temperature", -1.0, "task.sample_temperature must be >= 0"),
    ]:
        config = _smoke_config()
        config.task[key] = value
        with pytest.raises(ConfigError, match=match):
            build_experiment(config)
    config = _smoke_config()
    config.task.temperature = 0.5
    with pytest.raises(ConfigError, match="no option.*temperature; valid: binarize"):
        build_experiment(config)
