"""Sample quality for generative models: a Fréchet distance in a jaxlab classifier's feature
space, the class-histogram entropy and the mean confidence, with real images and the
independent per-pixel baseline for scale (the `sample_quality` evaluator).

The feature network is a jaxlab classification run on the same dataset, given by its workdir
(`evaluators.sample_quality.classifier`); for gen_digits it is the run of
`configs/gen_digits_classifier.py`. Its best checkpoint is used (the latest when the run kept
no best), with the parameter EMA when the run kept one. It must have seen [0, 1] images as
the generative models do (TFDS sets: `dataset.normalize=False`). The features are the input
of the classifier's output layer (the module named `head`, jaxlab's convention for
classifier heads, see `init_head`): for `small_cnn` the globally average-pooled activations
of the last block. They are captured with `flax.linen.intercept_methods` (the argument of
`head.__call__`), which works for every jaxlab classifier with a `head` without changing the
model; `capture_intermediates` would record the head's output, not its input.

Scalars (`sample_quality/<key>` in the logs):
  fd, entropy, confidence                       the model's `num` samples
  fd_real, entropy_real, confidence_real        a second real split (gen_digits: 'test' when
                                                the eval split is 'validation', else
                                                'validation'; TFDS sets without a validation
                                                split: the first `num` images of 'train')
  fd_baseline, entropy_baseline, confidence_baseline
                                                `num` samples of the per-pixel categorical
                                                baseline fitted on the train split
Every Fréchet distance is to the eval split's features (all of its images). `entropy` is that
of the histogram of the predicted classes (nats; ln 10 = 2.303 for ten balanced classes),
`confidence` the mean of the largest softmax probability.

The per-pixel baseline (jaxlab.analysis.pixel_baseline, also the task `pixel_baseline`)
models every pixel as an independent categorical over `levels` values (17 for gen_digits,
256 for 8-bit images, 2 for binarized ones: the task's `levels` when it has one) with
probabilities (count + 0.5) / (N + levels * 0.5) from the train split's images.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxlab.analysis.pixel_baseline import (
    DEFAULT_PSEUDO_COUNT,
    image_levels,
    log_probs_from_counts,
    pixel_counts,
    sample_pixel_baseline,
    to_levels,
)
from jaxlab.config import ConfigError, check_positive
from jaxlab.tasks.base import Task, TaskSetup
from jaxlab.tasks.evaluators import EvalContext, EvalResult, Evaluator

QUALITY_OPTIONS = ("classifier", "num", "seed", "every_steps")
# Where configs/gen_digits_classifier.py's documented run writes (relative to the repository
# root): the `classifier` of the gen_digits configs' sample_quality evaluator.
GEN_DIGITS_CLASSIFIER = "runs/gen_digits_classifier"
HEAD_NAME = "head"


# --- statistics ---------------------------------------------------------------------------


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (unbiased, float64) of features [N, D]."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need features [N >= 2, D], got shape {features.shape}")
    return features.mean(0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix (eigendecomposition; negative
    round-off eigenvalues are clipped to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """The Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (the squared 2-Wasserstein
    distance): |mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)).

    The trace of (cov1 cov2)^(1/2) is computed as tr((S cov2 S)^(1/2)) with S = cov1^(1/2):
    S cov2 S is similar to cov1 cov2 (S^-1 (S cov2 S) S = cov1 cov2 when S is invertible, by
    continuity otherwise) and symmetric PSD, so its square root's trace is the sum of the
    square roots of its eigenvalues (numpy.linalg.eigh, clipped at 0). This avoids the
    complex round-off of a general matrix square root (scipy.linalg.sqrtm of cov1 cov2,
    which the tests compare against). float64 throughout.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size,) * 2:
        raise ValueError(
            f"shapes differ: mu {mu1.shape} / {mu2.shape}, cov {cov1.shape} / {cov2.shape}"
        )
    root = _sqrt_psd(cov1)
    middle = root @ cov2 @ root
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def class_entropy(probs: np.ndarray) -> float:
    """Entropy (nats) of the histogram of the predicted classes (argmax) of probs [N, K]."""
    counts = np.bincount(np.asarray(probs).argmax(-1), minlength=np.shape(probs)[-1])
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def mean_confidence(probs: np.ndarray) -> float:
    """The mean over images of the largest class probability of probs [N, K]."""
    return float(np.asarray(probs, np.float64).max(-1).mean())


# --- the feature classifier ---------------------------------------------------------------


def features_and_logits(
    model: nn.Module, variables: Any, images: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(penultimate features [N, D], logits [N, K]) of a classifier: the features are the
    input of its submodule named `head` (the last call, when several are named so)."""
    captured: dict[str, jax.Array] = {}

    def interceptor(next_fun: Callable[..., Any], args: Any, kwargs: Any, context: Any) -> Any:
        if context.module.name == HEAD_NAME and context.method_name == "__call__":
            captured["features"] = args[0]
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        logits = model.apply(variables, images, train=False)
    if "features" not in captured:
        raise ConfigError(
            f"the classifier {type(model).__name__} has no submodule named {HEAD_NAME!r}: "
            "its features cannot be taken"
        )
    features = captured["features"]
    return features.reshape(features.shape[0], -1), logits


class FeatureClassifier:
    """A restored jaxlab classification run: `stats(images)` gives the features and class
    probabilities of [N, H, W, C] images (in batches, one compiled function)."""

    def __init__(self, workdir: str, batch_size: int = 256) -> None:
        from jaxlab.analysis.ensemble import load_config
        from jaxlab.train.checkpoint import run_checkpointer, variables_of
        from jaxlab.train.setup import build_experiment

        what = "evaluators.sample_quality.classifier"
        if not workdir:
            raise ConfigError(f"{what} is required: the workdir of a classification run")
        if not os.path.exists(os.path.join(workdir, "config.json")):
            raise ConfigError(f"{what}: {workdir!r} is not a jaxlab workdir (no config.json)")
        self.config = load_config(workdir)
        if self.config.task.name != "classification":
            raise ConfigError(
                f"{what}: {workdir!r} is a {self.config.task.name!r} run; the features need "
                "a 'classification' run"
            )
        if self.config.dataset.get("normalize", True) and self.config.dataset.name not in (
            "gen_digits",
        ):
            from jaxlab.data.registry import get_source
            from jaxlab.data.tfds_source import TfdsSource

            if isinstance(get_source(self.config.dataset.name), TfdsSource):
                raise ConfigError(
                    f"{what}: {workdir!r} was trained on standardized images; the samples "
                    "are in [0, 1] (train it with dataset.normalize=False)"
                )
        directory = os.path.join(workdir, "checkpoints")
        if not os.path.isdir(directory):
            raise ConfigError(f"{what}: no checkpoint in {workdir!r} (no checkpoints/ folder)")
        ckpt = run_checkpointer(workdir, self.config)
        try:
            self.step = ckpt.best_step() or ckpt.latest_step()
            if self.step is None:
                raise ConfigError(f"{what}: no complete checkpoint in {directory}")
            raw = ckpt.restore_raw(self.step)
        finally:
            ckpt.close()
        self.variables = variables_of(raw)
        if raw["task"].get("ema_params"):
            self.variables["params"] = raw["task"]["ema_params"]
        self.model = build_experiment(self.config).task.model
        self.batch_size = batch_size
        self._apply = jax.jit(lambda v, x: _features_probs(*features_and_logits(self.model, v, x)))

    def stats(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features [N, D] float64, probabilities [N, K]) of images [N, H, W, C], in
        batches of `batch_size` (the last one padded: one compilation for any N)."""
        images = np.asarray(images, np.float32)
        n, size = images.shape[0], self.batch_size
        feats, probs = [], []
        for start in range(0, n, size):
            chunk = images[start : start + size]
            real = chunk.shape[0]
            if real < size:
                chunk = np.concatenate(
                    [chunk, np.zeros((size - real, *chunk.shape[1:]), np.float32)]
                )
            f, p = self._apply(self.variables, jnp.asarray(chunk))
            feats.append(np.asarray(f)[:real])
            probs.append(np.asarray(p)[:real])
        return np.concatenate(feats).astype(np.float64), np.concatenate(probs)


def _features_probs(features: jax.Array, logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    return features, jax.nn.softmax(logits.astype(jnp.float32), -1)


def quality_scores(
    classifier: FeatureClassifier,
    images: np.ndarray,
    reference: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """{'fd', 'entropy', 'confidence'} of images against reference feature statistics."""
    features, probs = classifier.stats(images)
    mu, cov = feature_statistics(features)
    return {
        "fd": frechet_distance(mu, cov, *reference),
        "entropy": class_entropy(probs),
        "confidence": mean_confidence(probs),
    }


# --- real images ---------------------------------------------------------------------------


def second_real_split(dataset_name: str, eval_split: str, splits: tuple[str, ...]) -> str:
    """The real split compared with the eval split: 'test' for 'validation', 'validation'
    for anything else when the dataset has one, else 'train' (the TFDS sets mnist and
    cifar10, whose eval split is 'test')."""
    if eval_split == "validation" and "test" in splits:
        return "test"
    if eval_split != "validation" and "validation" in splits:
        return "validation"
    return "train"


def split_batches(config: ml_collections.ConfigDict, split: str) -> Iterator[np.ndarray]:
    """The [0, 1] images of a split in order, batch by batch, through the eval pipeline of
    `config` with `dataset.eval_split = split` (padding rows dropped)."""
    from jaxlab import data

    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.dataset.eval_split = split
    info = data.get_dataset_info(cfg)
    for batch in data.create_eval_iterator(cfg, info):
        yield np.asarray(batch["image"], np.float32)[np.asarray(batch["mask"]) > 0]


def split_images(
    config: ml_collections.ConfigDict, split: str, num: int | None = None
) -> np.ndarray:
    """The first `num` (None: all) [0, 1] images of a split, in order (`split_batches`)."""
    out, have = [], 0
    for images in split_batches(config, split):
        out.append(images)
        have += images.shape[0]
        if num is not None and have >= num:
            break
    images = np.concatenate(out)
    return images if num is None else images[:num]


def fit_baseline_on_split(
    config: ml_collections.ConfigDict,
    levels: int,
    split: str = "train",
    pseudo_count: float = DEFAULT_PSEUDO_COUNT,
) -> jax.Array:
    """The per-pixel baseline's log-probabilities [H, W, C, levels] fitted on a split of the
    configured dataset, counted batch by batch (`pixel_counts`)."""
    counts = sum(pixel_counts(to_levels(b, levels), levels) for b in split_batches(config, split))
    return log_probs_from_counts(jnp.asarray(counts, jnp.float32), pseudo_count)


def _dataset_splits(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The splits of the configured dataset (gen_digits: its three; TFDS: the builder's)."""
    if config.dataset.name == "gen_digits":
        from jaxlab.data.gen_digits import GEN_DIGITS_SPLITS

        return tuple(GEN_DIGITS_SPLITS)
    from jaxlab.data.pipeline import get_builder

    return tuple(get_builder(config).info.splits)


# --- the evaluator --------------------------------------------------------------------------


class SampleQualityEvaluator(Evaluator):
    """`config.evaluators.sample_quality` (see the module docstring): options `classifier`
    (required: the workdir of a classification run on the same dataset; for gen_digits the
    run of configs/gen_digits_classifier.py), `num` (samples; default the eval split's size),
    `seed` (of the samples' key, default 0), `every_steps` (0: only at the end).

    The real images' and the baseline's statistics do not change over training: they are
    computed on the first run and kept."""

    name = "sample_quality"

    def __init__(self, task: Task, setup: TaskSetup, options: ml_collections.ConfigDict) -> None:
        from jaxlab.tasks.generative import GenerativeTask

        if not isinstance(task, GenerativeTask):
            raise ConfigError(
                f"evaluator 'sample_quality' needs a generative task, got {task.name!r}"
            )
        unknown = sorted(set(options) - set(QUALITY_OPTIONS))
        if unknown:
            raise ConfigError(
                f"evaluators.sample_quality: unknown option(s) {', '.join(unknown)}; valid: "
                f"{', '.join(QUALITY_OPTIONS)}"
            )
        self.config = setup.config
        self.num = int(options.get("num", 0) or setup.info.num_eval_examples)
        self.seed = options.get("seed", 0)
        check_positive("evaluators.sample_quality.num", self.num, integer=True)
        check_positive("evaluators.sample_quality.seed", self.seed, allow_zero=True, integer=True)
        if self.num < 2:
            raise ConfigError(f"evaluators.sample_quality.num must be >= 2, got {self.num}")
        self.every_steps = options.get("every_steps", 0)
        check_positive(
            "evaluators.sample_quality.every_steps", self.every_steps, allow_zero=True, integer=True
        )
        self.classifier = FeatureClassifier(options.get("classifier", "") or "")
        if self.classifier.config.dataset.name != setup.config.dataset.name:
            raise ConfigError(
                f"evaluators.sample_quality.classifier is a run on "
                f"{self.classifier.config.dataset.name!r}; the samples are of "
                f"{setup.config.dataset.name!r}"
            )
        self.levels = int(getattr(task, "levels", 0) or image_levels(setup.config.dataset.name))
        self._sample = jax.jit(task.sample_images, static_argnums=2)
        self._reference: dict[str, float] | None = None

    def reference_scores(self) -> dict[str, float]:
        """The real and baseline scalars (`*_real`, `*_baseline`), computed once: the
        second real split's first `num` images, and `num` samples (key `seed + 1`) of the
        per-pixel baseline fitted on the train split (pseudo-count 0.5)."""
        if self._reference is None:
            config = self.config
            self._eval_stats = feature_statistics(
                self.classifier.stats(split_images(config, config.dataset.eval_split))[0]
            )
            other = second_real_split(
                config.dataset.name, config.dataset.eval_split, _dataset_splits(config)
            )
            real_images = split_images(config, other, self.num)
            real = quality_scores(self.classifier, real_images, self._eval_stats)
            log_probs = fit_baseline_on_split(config, self.levels)
            baseline_images = sample_pixel_baseline(
                log_probs, jax.random.key(self.seed + 1), self.num
            )
            baseline = quality_scores(
                self.classifier, np.asarray(baseline_images), self._eval_stats
            )
            self._reference = {
                **{f"{k}_real": v for k, v in real.items()},
                **{f"{k}_baseline": v for k, v in baseline.items()},
            }
        return self._reference

    def evaluate(self, task_state: Any) -> dict[str, float]:
        """All nine scalars for a (host) task state: its `num` samples from key `seed`,
        and the cached real and baseline ones."""
        reference = self.reference_scores()
        images = self._sample(task_state, jax.random.key(self.seed), self.num)
        images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
        return {**quality_scores(self.classifier, images, self._eval_stats), **reference}

    def run(self, ctx: EvalContext) -> EvalResult:
        return EvalResult(scalars=self.evaluate(ctx.host(ctx.state.task)))
