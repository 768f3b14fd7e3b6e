"""The per-pixel categorical baseline: its closed-form fit and likelihood against numpy on
gen_digits, the uniform model's 64 ln 17 nats, its samples' frequencies, and the task run
through the loop."""

from __future__ import annotations

import importlib.util
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.analysis.pixel_baseline import (
    fit_pixel_baseline,
    pixel_baseline_nll,
    sample_pixel_baseline,
    to_levels,
)
from jaxlab.config import ConfigError
from jaxlab.data.gen_digits import gen_digits_examples
from jaxlab.train import train_and_evaluate
from jaxlab.train.setup import build_experiment
from tests.conftest import ROOT


def _levels(split: str) -> np.ndarray:
    return to_levels(gen_digits_examples(split)["image"], 17)


def _numpy_nll(train: np.ndarray, images: np.ndarray, levels: int, a: float) -> np.ndarray:
    """Per-image NLL with per-pixel probabilities (count + a) / (N + levels a), by loops
    over the levels (independent of the jax one-hot / take_along_axis implementation)."""
    flat_train, flat = train.reshape(len(train), -1), images.reshape(len(images), -1)
    counts = np.stack([(flat_train == k).sum(0) for k in range(levels)], -1).astype(np.float64)
    probs = (counts + a) / (len(train) + levels * a)
    return -np.log(probs[np.arange(flat.shape[1]), flat]).sum(1)


def test_fit_and_nll_match_numpy_on_gen_digits_and_the_uniform_model_is_64_ln_17():
    train, valid = _levels("train"), _levels("validation")
    for a in (0.5, 1e-3):
        log_probs = fit_pixel_baseline(train, 17, a)
        assert log_probs.shape == (8, 8, 1, 17)
        np.testing.assert_allclose(jnp.exp(log_probs).sum(-1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(
            pixel_baseline_nll(log_probs, jnp.asarray(valid)),
            _numpy_nll(train, valid, 17, a),
            rtol=1e-5,
        )
    # No counts, any pseudo-count: the uniform model, 64 ln 17 = 181.3 nats per image.
    uniform = fit_pixel_baseline(np.zeros((0, 8, 8, 1), np.int32), 17, 1.0)
    nll = pixel_baseline_nll(uniform, jnp.asarray(valid))
    np.testing.assert_allclose(nll, 64 * math.log(17), rtol=1e-6)
    assert round(64 * math.log(17), 1) == 181.3


def test_samples_draw_every_pixel_from_its_categorical():
    log_probs = fit_pixel_baseline(_levels("train")[:, :2, :2], 17, 0.5)  # 4 pixels
    images = sample_pixel_baseline(log_probs, jax.random.key(0), 4000)
    assert images.shape == (4000, 2, 2, 1) and images.dtype == jnp.float32
    freq = jax.nn.one_hot(to_levels(images, 17), 17).mean(0)
    probs = jnp.exp(log_probs)
    stderr = jnp.sqrt(probs * (1 - probs) / 4000)
    assert float(jnp.max(jnp.abs(freq - probs) / (stderr + 1e-3))) < 5


def _config(name: str = "gen_digits_pixel_baseline", arg: str = ""):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_the_task_fits_one_pass_and_reports_nats_and_bits_per_dim(tmp_path):
    """The documented config (5 steps of 200 = the train split once) gives numpy's NLL of
    the validation images: 110.46 nats (issue 10: 110.5)."""
    config = _config()
    config.evaluators = {}
    config.checkpoint_every_steps = 0
    metrics = train_and_evaluate(config, str(tmp_path))
    expected = _numpy_nll(_levels("train"), _levels("validation"), 17, 0.5).mean()
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)
    assert round(metrics["loss"], 1) == 110.5
    assert metrics["bits_per_dim"] == pytest.approx(expected / 64 / math.log(2), rel=1e-5)


def test_bad_options_are_config_errors():
    for key, value, match in (
        ("binarize", "otsu", "task.binarize"),
        ("levels", 1, "task.levels"),
        ("pseudo_count", -1.0, "task.pseudo_count"),
    ):
        config = _config()
        config.task[key] = value
        with pytest.raises(ConfigError, match=match):
            build_experiment(config)
    config = _config()
    config.task.binarize = "threshold"
    task = build_experiment(config).task
    assert task.levels == 2
