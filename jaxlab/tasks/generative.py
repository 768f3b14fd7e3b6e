"""What every generative task shares: drawing images, the `samples` evaluator, bits per dim.

A generative task (autoencoder, VAE, PixelCNN, GAN, flow, diffusion) subclasses
`GenerativeTask` and implements `sample_images(task_state, key, num)`: `num` images
[N, H, W, C] float32 in [0, 1], a pure function of the state and the key (jit-compilable,
`num` static). The `samples` evaluator (`config.evaluators.samples`, options `num`, `seed`,
`every_steps`) draws them from a fixed key, so the grids logged over training show the same
noise batch turned into images by ever better weights; the `sample_quality` evaluator
(jaxlab.analysis.sample_quality) scores them.

Images reach a generative task in [0, 1]: the offline `gen_digits` always, TFDS image
datasets with `dataset.normalize=False` (`require_unit_images` refuses a config that
standardizes them).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_positive
from jaxlab.tasks.base import PyTree, Task, TaskSetup
from jaxlab.tasks.evaluators import EvalContext, EvalResult, Evaluator

SAMPLES_EVALUATOR = "samples"
QUALITY_EVALUATOR = "sample_quality"


def require_unit_images(setup: TaskSetup, task_name: str) -> None:
    """ConfigError unless the dataset gives images in [0, 1]: a generated source (always) or
    a TFDS one with `dataset.normalize=False`."""
    dataset = setup.config.dataset
    if dataset.get("normalize", True) and "image" in setup.info.features:
        from jaxlab.data.registry import get_source
        from jaxlab.data.tfds_source import TfdsSource

        if isinstance(get_source(dataset.name), TfdsSource):
            raise ConfigError(
                f"task {task_name!r} models pixels in [0, 1]: set dataset.normalize=False "
                f"(dataset {dataset.name!r} standardizes them otherwise)"
            )


def bits_per_dim(nats_per_example: jax.Array | float, num_dims: int) -> jax.Array | float:
    """Nats per example -> bits per dimension: `nats / (num_dims * ln 2)`."""
    return nats_per_example / (num_dims * math.log(2.0))


class GenerativeTask(Task):
    """A task that draws images. Subclasses set `image_shape` (H, W, C) in their
    constructor and implement `sample_images`; their `evaluators()` should include
    `super().evaluators()`."""

    image_shape: tuple[int, int, int]

    @abc.abstractmethod
    def sample_images(self, task_state: PyTree, key: jax.Array, num: int) -> jax.Array:
        """`num` images [num, H, W, C] float32 in [0, 1] drawn with `key` (pure; jit-able
        with `num` static)."""

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        return {SAMPLES_EVALUATOR: SamplesEvaluator, QUALITY_EVALUATOR: _sample_quality}


def _sample_quality(task: Task, setup: TaskSetup, options: ml_collections.ConfigDict) -> Any:
    """`config.evaluators.sample_quality` (jaxlab.analysis.sample_quality, imported on use)."""
    from jaxlab.analysis.sample_quality import SampleQualityEvaluator

    return SampleQualityEvaluator(task, setup, options)


class SamplesEvaluator(Evaluator):
    """`config.evaluators.samples`: a grid of `num` images (default 64) drawn by the task's
    `sample_images` from the fixed key `seed` (default 0), every `every_steps` steps and at
    the end; written to TensorBoard (`samples/grid`) and to
    `workdir/images/samples_grid_<step>.png`."""

    name = SAMPLES_EVALUATOR

    def __init__(self, task: Task, setup: TaskSetup, options: ml_collections.ConfigDict) -> None:
        if not isinstance(task, GenerativeTask):
            raise ConfigError(f"evaluator 'samples' needs a generative task, got {task.name!r}")
        unknown = sorted(set(options) - {"num", "seed", "every_steps"})
        if unknown:
            raise ConfigError(
                f"evaluators.samples: unknown option(s) {', '.join(unknown)}; valid: num, "
                "seed, every_steps"
            )
        self.num, self.seed = options.get("num", 64), options.get("seed", 0)
        check_positive("evaluators.samples.num", self.num, integer=True)
        check_positive("evaluators.samples.seed", self.seed, allow_zero=True, integer=True)
        self.every_steps = int(options.get("every_steps", 0))
        self._sample = jax.jit(task.sample_images, static_argnums=2)

    def run(self, ctx: EvalContext) -> EvalResult:
        key = jax.random.key(self.seed)
        images = self._sample(ctx.host(ctx.state.task), key, self.num)
        images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
        return EvalResult(images={"grid": images})
