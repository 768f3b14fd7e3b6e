"""`pixel_baseline`: the independent per-pixel categorical model, the reference likelihood of
the generative benchmarks, as a jaxlab task.

Every pixel is a categorical over `levels` values, independent of the others, fitted in
closed form: p(pixel = k) = (count_k + a) / (N + levels a), counts over the N training
images seen, a = `task.pseudo_count` (default 0.5, the Jeffreys prior; 0 is maximum
likelihood, which gives -inf to values absent at a pixel in training). There is no gradient:
the train step adds the batch's one-hot counts to the state, so one pass over the train split
(`num_train_steps * batch_size` = its size, as configs/gen_digits_pixel_baseline.py sets)
is the fit; more epochs multiply the counts, which leaves the unsmoothed frequencies unchanged
but weakens the pseudo-count.

Options (`config.task`):
  levels        0 (default): the dataset's (gen_digits 17, 8-bit images 256); or 2..256.
  pseudo_count  a >= 0 (default 0.5).
  binarize      '' (default), 'threshold' (x > 0.5) or 'dynamic' (a Bernoulli draw with
                probability x, from the step's 'binarize' rng): Bernoulli pixels (levels 2).

Eval metrics: `loss`, the negative log-likelihood of the eval images in nats per image
(exact: the model is discrete), and `bits_per_dim`. `sample_images` draws every pixel
independently (level k shown as k / (levels - 1)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp

from jaxlab.analysis.pixel_baseline import (
    DEFAULT_PSEUDO_COUNT,
    image_levels,
    log_probs_from_counts,
    pixel_baseline_nll,
    sample_pixel_baseline,
    to_levels,
)
from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.generative import GenerativeTask, bits_per_dim, require_unit_images

BINARIZE_CHOICES = ("", "threshold", "dynamic")


@flax.struct.dataclass
class PixelBaselineState:
    """The per-pixel counts [H, W, C, levels] of the training images seen so far."""

    counts: jax.Array


class PixelBaselineTask(GenerativeTask):
    """The independent per-pixel categorical (see the module docstring)."""

    name = "pixel_baseline"
    rng_streams = ("binarize",)
    train_metric_names = ("loss",)
    eval_metric_names = ("loss", "bits_per_dim")

    def __init__(self, setup: TaskSetup) -> None:
        require_unit_images(setup, self.name)
        options = setup.config.task
        self.image_shape = tuple(setup.info.image_shape)
        self.binarize = options.get("binarize", "")
        check_choice("task.binarize", self.binarize, BINARIZE_CHOICES)
        levels = int(options.get("levels", 0))
        if self.binarize:
            if levels not in (0, 2):
                raise ConfigError(f"task.levels must be 0 or 2 with task.binarize, got {levels}")
            levels = 2
        if levels == 0:
            levels = image_levels(setup.config.dataset.name)
        if not 2 <= levels <= 256:
            raise ConfigError(f"task.levels must be 0 (the dataset's) or in 2..256, got {levels}")
        self.levels = levels
        self.pseudo_count = float(options.get("pseudo_count", DEFAULT_PSEUDO_COUNT))
        check_positive("task.pseudo_count", self.pseudo_count, allow_zero=True)

    def _levels(self, images: jax.Array, ctx: StepContext) -> jax.Array:
        """The int levels [N, H, W, C] of [0, 1] images (binarized when configured)."""
        if self.binarize == "dynamic":
            return jax.random.bernoulli(ctx.rng("binarize"), images).astype(jnp.int32)
        return to_levels(images, self.levels)

    def log_probs(self, state: PixelBaselineState) -> jax.Array:
        """The smoothed per-pixel log-probabilities [H, W, C, levels]."""
        return log_probs_from_counts(state.counts, self.pseudo_count)

    def init_state(self, batch: Batch, ctx: StepContext) -> PixelBaselineState:
        return PixelBaselineState(jnp.zeros((*self.image_shape, self.levels), jnp.float32))

    def train_step(
        self, state: PixelBaselineState, batch: Batch, ctx: StepContext
    ) -> tuple[PixelBaselineState, Metrics]:
        levels = self._levels(batch["image"], ctx)
        counts = ctx.psum(jax.nn.one_hot(levels, self.levels, dtype=jnp.float32).sum(0))
        new = PixelBaselineState(state.counts + counts)
        return new, {"loss": average(pixel_baseline_nll(self.log_probs(new), levels))}

    def eval_step(
        self, state: PixelBaselineState, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        nll = pixel_baseline_nll(self.log_probs(state), self._levels(batch["image"], ctx))
        mask = batch["mask"]
        dims = self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        return carry, {
            "loss": average(nll, mask),
            "bits_per_dim": average(bits_per_dim(nll, dims), mask),
        }

    def sample_images(self, task_state: PixelBaselineState, key: jax.Array, num: int) -> jax.Array:
        return sample_pixel_baseline(self.log_probs(task_state), key, num)

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        return {**super().evaluators()}
