"""`pixelcnn`: exact likelihood training of an autoregressive image model, and ancestral
sampling from it.

Images reach the task in [0, 1] (generative contract). They become integer levels
`x = rint(image * (L - 1))` in {0, ..., L - 1}, L = `model.levels` (17 for gen_digits, 256
for 8-bit images), or, with `task.binarize`, binary pixels (L must then be 2):
'threshold' (image > 0.5) or 'dynamic' (Bernoulli(image), a fresh draw at every step from the
step's 'binarize' rng stream; at eval from the eval step's stream). The model reads
`x / (L - 1)` and returns logits [B, H, W, C, L]; the negative log-likelihood of an image is
exact:

    NLL(x) = -sum_{i, j, c} log softmax(logits)[i, j, c, x_ijc]   (nats per image)

Metrics (train and eval): `loss`, the mean NLL in nats per image (eval: over the real rows
of the batch, its 'mask'), and `bits_per_dim` = NLL / (H W C ln 2).

`sample_images` draws ancestral samples: a canvas of zeros, then for each of the H * W * C
subpixels in raster and channel order (a `lax.fori_loop`) the network runs on the current
canvas and only that subpixel is drawn from softmax(logits / T), T = `task.sample_temperature`
(default 1; 0 takes the argmax, the greedy sample). The EMA parameters are used when
`optimizer.ema_decay` is set.

`config.task` keys: `binarize` ('', 'threshold', 'dynamic'), `sample_temperature` (>= 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxlab import losses
from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.generative import GenerativeTask, bits_per_dim, require_unit_images
from jaxlab.tasks.supervised import ApplyFn, SupervisedState, SupervisedTask

BINARIZE = ("", "threshold", "dynamic")
TASK_KEYS = ("name", "binarize", "sample_temperature")


def image_levels(
    images: jax.Array, levels: int, binarize: str = "", key: jax.Array | None = None
) -> jax.Array:
    """int32 levels of [0, 1] images: `rint(images * (levels - 1))`, or binary pixels
    ('threshold': images > 0.5; 'dynamic': Bernoulli(images) drawn with `key`)."""
    if binarize == "threshold":
        return (images > 0.5).astype(jnp.int32)
    if binarize == "dynamic":
        return jax.random.bernoulli(key, jnp.clip(images, 0.0, 1.0)).astype(jnp.int32)
    return jnp.rint(images * (levels - 1)).astype(jnp.int32)


def nll_per_image(logits: jax.Array, levels: jax.Array) -> jax.Array:
    """[B] nats: the summed categorical cross entropies of `levels` [B, H, W, C] under
    `logits` [B, H, W, C, L]."""
    return losses.softmax_cross_entropy(logits, levels).sum(axis=(1, 2, 3))


class PixelCNNTask(SupervisedTask, GenerativeTask):
    """The `pixelcnn` task (module docstring): a `SupervisedTask` whose loss is the exact
    NLL, and a `GenerativeTask` whose samples are drawn subpixel by subpixel."""

    def __init__(self, setup: TaskSetup) -> None:
        config = setup.config
        require_unit_images(setup, "pixelcnn")
        unknown = sorted(set(config.task) - set(TASK_KEYS))
        if unknown:
            raise ConfigError(
                f"task 'pixelcnn' has no option(s) {', '.join(unknown)}; valid: "
                f"{', '.join(TASK_KEYS[1:])}"
            )
        self.binarize = config.task.get("binarize", "")
        check_choice("task.binarize", self.binarize, BINARIZE)
        self.temperature = config.task.get("sample_temperature", 1.0)
        check_positive("task.sample_temperature", self.temperature, allow_zero=True)
        self.temperature = float(self.temperature)
        model = build_model(
            config.model.name, {k: v for k, v in config.model.to_dict().items() if k != "name"}
        )
        self.levels = int(model.levels)
        if self.levels < 2:
            raise ConfigError(f"model.levels must be >= 2, got {self.levels}")
        if self.binarize and self.levels != 2:
            raise ConfigError(
                f"task.binarize={self.binarize!r} gives binary pixels: set model.levels=2, "
                f"got {self.levels}"
            )
        self.image_shape = tuple(setup.info.features["image"].shape)
        self.num_dims = self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        names = ("loss", "bits_per_dim")
        super().__init__(
            name="pixelcnn",
            model=model,
            loss_fn=self._loss_fn,
            eval_fn=self._eval_fn,
            optimizer=setup.optimizer(),
            train_metric_names=names,
            eval_metric_names=names,
            rng_streams=("params", "dropout", "binarize"),
            ema_decay=ema_decay(config),
        )

    def to_levels(self, images: jax.Array, ctx: StepContext) -> jax.Array:
        """The int32 levels the model is trained on (binarized per `task.binarize`)."""
        key = ctx.rng("binarize") if self.binarize == "dynamic" else None
        return image_levels(images, self.levels, self.binarize, key)

    def nll(self, variables: PyTree, levels: jax.Array) -> jax.Array:
        """[B] nats per image of integer `levels` [B, H, W, C] under the model."""
        logits = self.model.apply(variables, levels / (self.levels - 1), train=False)
        return nll_per_image(logits, levels)

    def _metrics(self, nll: jax.Array, mask: jax.Array | None) -> Metrics:
        return {
            "loss": average(nll, mask),
            "bits_per_dim": average(bits_per_dim(nll, self.num_dims), mask),
        }

    def _loss_fn(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        levels = self.to_levels(batch["image"], ctx)
        variables = {"params": params, **model_state}
        logits = apply_fn(variables, levels / (self.levels - 1), train=train)
        nll = nll_per_image(logits, levels)
        return nll.mean(), (model_state, self._metrics(nll, None))

    def _eval_fn(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
    ) -> Metrics:
        levels = self.to_levels(batch["image"], ctx)
        nll = self.nll({"params": params, **model_state}, levels)
        return self._metrics(nll, batch.get("mask"))

    def sample_levels(
        self, variables: PyTree, key: jax.Array, num: int, temperature: float
    ) -> jax.Array:
        """int32 [num, H, W, C]: ancestral samples, one subpixel per `fori_loop` step in
        raster and channel order, each drawn from softmax(logits / temperature) of the
        network run on the canvas so far (temperature 0: the argmax)."""
        h, w, c = self.image_shape
        dims = h * w * c

        def draw(position: jax.Array, canvas: jax.Array) -> jax.Array:
            x = canvas.reshape(num, h, w, c) / (self.levels - 1)
            logits = self.model.apply(variables, x, train=False).reshape(num, dims, -1)
            logits = jax.lax.dynamic_index_in_dim(logits, position, axis=1, keepdims=False)
            if temperature == 0:
                value = jnp.argmax(logits, axis=-1)
            else:
                sub = jax.random.fold_in(key, position)
                value = jax.random.categorical(sub, logits / temperature, axis=-1)
            return canvas.at[:, position].set(value.astype(jnp.int32))

        canvas = jax.lax.fori_loop(0, dims, draw, jnp.zeros((num, dims), jnp.int32))
        return canvas.reshape(num, h, w, c)

    def sample_images(self, task_state: SupervisedState, key: jax.Array, num: int) -> jax.Array:
        """`num` ancestral samples [num, H, W, C] in [0, 1] (levels / (L - 1)) at
        `task.sample_temperature`, with the EMA parameters when there are some."""
        params = task_state.ema_params if self.ema_decay is not None else task_state.params
        variables = {"params": params, **task_state.model_state}
        levels = self.sample_levels(variables, key, num, self.temperature)
        return levels.astype(jnp.float32) / (self.levels - 1)

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        return {**GenerativeTask.evaluators(self), **SupervisedTask.evaluators(self)}


def make_pixelcnn_task(setup: TaskSetup) -> PixelCNNTask:
    """Builds the `pixelcnn` task of `setup.config` (see the module docstring).

    Raises ConfigError for standardized images, an unknown task option, a bad binarize or
    temperature, or binarized pixels with model.levels != 2.
    """
    return PixelCNNTask(setup)
