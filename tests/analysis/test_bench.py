"""The loop-vs-minimal-step benchmark: result structure and like-for-like sides (no timing
assertions: the rates depend on the machine and its load)."""

from __future__ import annotations

import math

import jax
import ml_collections
import numpy as np
import pytest

from jaxlab.analysis.bench import BenchResult, benchmark, format_table, make_minimal_step
from jaxlab.config import ConfigError
from jaxlab.train import Trainer
from jaxlab.train.setup import build_experiment

pytestmark = pytest.mark.slow


@pytest.fixture
def bench_config(tiny_config):
    """The tiny conv net (one 8-wide block) at batch 128: 11 steps per epoch."""
    tiny_config.model.widths = (8,)
    tiny_config.batch_size = 128
    return tiny_config


def tiny_mlp(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    config.model = ml_collections.ConfigDict({"name": "mlp", "depth": 1, "width": 16})
    return config


@pytest.mark.parametrize("variant", ["small_cnn", "mlp"])
def test_benchmark_returns_positive_finite_rates(bench_config, variant):
    config = tiny_mlp(bench_config) if variant == "mlp" else bench_config
    result = benchmark(config, steps=3, repeats=2)  # warm-up crosses the log and epoch grids
    assert isinstance(result, BenchResult)
    assert (result.model, result.batch_size, result.steps, result.feed) == (variant, 128, 3, "host")
    assert result.warmup == 12  # max(log_every_steps 5, steps_per_epoch 11) + 1
    assert len(result.loop_runs) == len(result.minimal_runs) == 2
    for rate in (
        result.loop_steps_per_s,
        result.minimal_steps_per_s,
        result.ratio,
        *result.loop_runs,
        *result.minimal_runs,
    ):
        assert math.isfinite(rate) and rate > 0
    record = result.to_dict()
    assert record["ratio"] == result.ratio and record["target_met"] == (result.ratio >= 0.95)
    assert variant in format_table([result]).splitlines()[1]


def test_pipeline_feed_runs(bench_config):
    result = benchmark(tiny_mlp(bench_config), steps=2, repeats=1, warmup=1, feed="pipeline")
    assert result.feed == "pipeline" and result.loop_steps_per_s > 0


def test_bad_arguments_raise_config_error(bench_config):
    with pytest.raises(ConfigError, match="feed"):
        benchmark(bench_config, steps=2, repeats=1, feed="disk")
    with pytest.raises(ConfigError, match="steps"):
        benchmark(bench_config, steps=0)


def test_minimal_step_trains_like_the_loop_step(bench_config, tmp_path):
    """Same initial parameters and, after one step on the same batch, the same parameters:
    the benchmark compares the same computation, not two different trainings."""
    exp = build_experiment(bench_config)
    run = Trainer(exp, str(tmp_path))
    run.start(run.initial_state()[0])
    step_fn, params, model_state, opt_state = make_minimal_step(exp)
    jax.tree.map(np.testing.assert_array_equal, params, run.state.task.params)
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.random((128, 8, 8, 1), np.float32),
        "label": rng.integers(0, 10, 128).astype(np.int32),
    }
    run.train_one_step(batch, 0, 10)
    state = run.state.task
    params, model_state, _, loss = step_fn(
        params, model_state, opt_state, batch["image"], batch["label"]
    )
    run.checkpointer.close()
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    jax.tree.map(close, params, state.params)
    jax.tree.map(close, model_state, state.model_state)
    assert float(loss) > 0
