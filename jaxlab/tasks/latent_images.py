"""What the autoencoder and VAE tasks share: binarization, a base class for tasks with an
encoder and a decoder, and their image evaluators.

`LatentImageTask` (a `GenerativeTask` built on `SupervisedTask`'s one-model steps) asks for
`latent_means(task_state, images)` ([B, d]: the code, or the mean of q(z|x)) and
`decode_images(task_state, z)` ([B, H, W, C] in [0, 1]). Its evaluators
(`config.evaluators.<name>`, each with `every_steps`):

- `reconstructions` (option `num`, default 16): the first `num` eval images, each followed
  by its reconstruction `decode(latent_mean(x))` (pairs side by side, 4 pairs per row).
- `interpolations` (options `pairs` default 4, `steps` default 8): for eval images
  (0, 1), (2, 3), ...: the decoded linear interpolation of their latent means, one pair per
  row, the endpoints included.
- `latent_scatter` (option `num`, default 0: the whole eval split): the latent means of the
  eval images coloured by class, drawn with matplotlib; a 2-D latent as it is, a larger one
  by its first two principal components. Also reports `explained_variance` of the plot's
  two axes (1 for a 2-D latent).

The evaluators show the images as the task sees them: binarized by threshold when
`task.binarize` is set (dynamic binarization included, for a stable picture).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_positive
from jaxlab.tasks.base import PyTree, TaskSetup
from jaxlab.tasks.evaluators import EvalContext, EvalResult, Evaluator
from jaxlab.tasks.generative import GenerativeTask
from jaxlab.tasks.supervised import SupervisedState, SupervisedTask

BINARIZE = ("", "threshold", "dynamic")


def binarize(images: jax.Array, mode: str, key: jax.Array | None = None) -> jax.Array:
    """Images in [0, 1] as they are (''), thresholded (> 0.5: 'threshold') or Bernoulli
    samples with the pixel intensity as probability ('dynamic', from `key`)."""
    if mode == "":
        return images
    if mode == "threshold":
        return (images > 0.5).astype(images.dtype)
    if mode == "dynamic":
        return jax.random.bernoulli(key, images).astype(images.dtype)
    raise ConfigError(f"unknown task.binarize {mode!r}; valid choices: {', '.join(BINARIZE)}")


def check_task_keys(task: ml_collections.ConfigDict, name: str, valid: tuple[str, ...]) -> None:
    """ConfigError for a `config.task` key that task `name` does not read."""
    unknown = sorted(set(task) - {"name", *valid})
    if unknown:
        raise ConfigError(
            f"task {name!r} has no option(s) {', '.join(f'task.{k}' for k in unknown)}; "
            f"valid: {', '.join(valid)}"
        )


class LatentImageTask(GenerativeTask, SupervisedTask):
    """A one-model generative task with an encoder and a decoder (see the module doc).
    Subclasses call `SupervisedTask.__init__`, set `image_shape` and `binarize_mode`."""

    image_shape: tuple[int, int, int]
    binarize_mode: str = ""

    def eval_variables(self, task_state: SupervisedState) -> dict[str, PyTree]:
        """The model variables used for evaluation and sampling (the EMA when kept)."""
        params = task_state.params if self.ema_decay is None else task_state.ema_params
        return {"params": params, **task_state.model_state}

    def shown_images(self, images: jax.Array) -> jax.Array:
        """The eval images as the evaluators feed them (thresholded when binarizing)."""
        return binarize(images, "threshold" if self.binarize_mode else "")

    @abc.abstractmethod
    def latent_means(self, task_state: SupervisedState, images: jax.Array) -> jax.Array:
        """[B, d] latent means (codes) of images [B, H, W, C]."""

    @abc.abstractmethod
    def decode_images(self, task_state: SupervisedState, z: jax.Array) -> jax.Array:
        """[B, H, W, C] images in [0, 1] decoded from latents [B, d]."""

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        return {
            **super().evaluators(),
            "reconstructions": ReconstructionsEvaluator,
            "interpolations": InterpolationsEvaluator,
            "latent_scatter": LatentScatterEvaluator,
        }


def _options(name: str, options: ml_collections.ConfigDict, defaults: dict[str, int]) -> dict:
    unknown = sorted(set(options) - {*defaults, "every_steps"})
    if unknown:
        raise ConfigError(
            f"evaluators.{name}: unknown option(s) {', '.join(unknown)}; valid: "
            f"{', '.join(defaults)}, every_steps"
        )
    out = {k: options.get(k, v) for k, v in defaults.items()}
    for k, v in out.items():
        check_positive(f"evaluators.{name}.{k}", v, integer=True, allow_zero=defaults[k] == 0)
    return out


def _real_eval_examples(ctx: EvalContext, num: int) -> Iterator[dict[str, np.ndarray]]:
    """The eval batches' real rows (mask > 0), batch by batch, `num` in all (0: all)."""
    seen = 0
    for batch in ctx.eval_batches():
        keep = np.asarray(batch["mask"]) > 0
        rows = {k: np.asarray(v)[keep] for k, v in batch.items() if k != "mask"}
        if num:
            rows = {k: v[: num - seen] for k, v in rows.items()}
        seen += len(rows["image"])
        yield rows
        if num and seen >= num:
            return


def _first_images(ctx: EvalContext, num: int) -> np.ndarray:
    images = np.concatenate([b["image"] for b in _real_eval_examples(ctx, num)])
    if len(images) < num:
        raise ConfigError(f"the eval split has {len(images)} images, the evaluator needs {num}")
    return images


class _LatentEvaluator(Evaluator):
    defaults: dict[str, int] = {}

    def __init__(self, task: Any, setup: TaskSetup, options: ml_collections.ConfigDict) -> None:
        if not isinstance(task, LatentImageTask):
            raise ConfigError(f"evaluator {self.name!r} needs an autoencoder or vae task")
        self.task = task
        self.options = _options(self.name, options, self.defaults)
        self.every_steps = int(options.get("every_steps", 0))
        self._means = jax.jit(lambda s, x: task.latent_means(s, task.shown_images(x)))
        self._decode = jax.jit(task.decode_images)


class ReconstructionsEvaluator(_LatentEvaluator):
    """`config.evaluators.reconstructions`: eval images beside their reconstructions."""

    name = "reconstructions"
    defaults = {"num": 16}

    def run(self, ctx: EvalContext) -> EvalResult:
        state = ctx.host(ctx.state.task)
        images = _first_images(ctx, self.options["num"])
        shown = np.asarray(self.task.shown_images(jnp.asarray(images)))
        recon = np.asarray(self._decode(state, self._means(state, images)))
        pairs = np.stack([shown, recon], axis=1).reshape((-1, *images.shape[1:]))
        error = float(np.mean(np.sum((shown - recon) ** 2, axis=(1, 2, 3))))
        return EvalResult(scalars={"squared_error": error}, images={"grid": pairs})


class InterpolationsEvaluator(_LatentEvaluator):
    """`config.evaluators.interpolations`: decoded interpolations between latent means."""

    name = "interpolations"
    defaults = {"pairs": 4, "steps": 8}

    def run(self, ctx: EvalContext) -> EvalResult:
        state = ctx.host(ctx.state.task)
        pairs, steps = self.options["pairs"], self.options["steps"]
        z = np.asarray(self._means(state, _first_images(ctx, 2 * pairs)))
        start, end = z[0::2], z[1::2]  # [pairs, d]
        t = np.linspace(0.0, 1.0, steps)[None, :, None]
        path = (1 - t) * start[:, None] + t * end[:, None]  # [pairs, steps, d]
        images = self._decode(state, jnp.asarray(path.reshape((pairs * steps, -1))))
        return EvalResult(images={"grid": np.asarray(images)})


def principal_components(z: np.ndarray, num: int = 2) -> tuple[np.ndarray, float]:
    """(z projected on its first `num` principal components [N, num], the fraction of the
    variance they explain)."""
    centered = z - z.mean(0)
    _, s, vt = np.linalg.svd(centered, full_matrices=False)
    explained = float((s[:num] ** 2).sum() / max((s**2).sum(), 1e-30))
    return centered @ vt[:num].T, explained


def scatter_image(points: np.ndarray, labels: np.ndarray | None, title: str) -> np.ndarray:
    """A matplotlib scatter of 2-D points coloured by label, as a float [H, W, 3] image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
    try:
        colours = labels if labels is not None else np.zeros(len(points))
        sc = ax.scatter(points[:, 0], points[:, 1], c=colours, cmap="tab10", s=6)
        if labels is not None:
            fig.colorbar(sc, ax=ax, ticks=np.unique(labels))
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
    finally:
        plt.close(fig)
    return rgba[..., :3].astype(np.float32) / 255.0


class LatentScatterEvaluator(_LatentEvaluator):
    """`config.evaluators.latent_scatter`: eval latent means coloured by class (PCA when
    the latent has more than 2 dimensions)."""

    name = "latent_scatter"
    defaults = {"num": 0}

    def run(self, ctx: EvalContext) -> EvalResult:
        state = ctx.host(ctx.state.task)
        means, labels = [], []
        for rows in _real_eval_examples(ctx, self.options["num"]):
            means.append(np.asarray(self._means(state, rows["image"])))
            if "label" in rows:
                labels.append(rows["label"])
        z = np.concatenate(means)
        label = np.concatenate(labels) if labels else None
        if z.shape[1] == 2:
            points, explained, title = z, 1.0, "latent means"
        else:
            points, explained = principal_components(z)
            title = f"latent means, PCA ({100 * explained:.0f}% of the variance)"
        return EvalResult(
            scalars={"explained_variance": explained},
            images={"scatter": scatter_image(points, label, title)},
        )


__all__ = [
    "BINARIZE",
    "InterpolationsEvaluator",
    "LatentImageTask",
    "LatentScatterEvaluator",
    "ReconstructionsEvaluator",
    "binarize",
    "check_task_keys",
]
