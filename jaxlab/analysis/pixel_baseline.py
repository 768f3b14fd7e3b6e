"""The independent per-pixel categorical model in closed form (the reference likelihood of
the generative benchmarks, the `pixel_baseline` task and the `sample_quality` evaluator's
baseline samples).

Every pixel is a categorical over `levels` values (17 for gen_digits, 256 for 8-bit images,
2 for binarized ones), independent of the others, with probabilities
(count + pseudo_count) / (N + levels * pseudo_count) from N training images. This module
imports nothing of jaxlab.tasks, so the task and the evaluator can both use it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.config import check_positive

DEFAULT_PSEUDO_COUNT = 0.5  # see configs/gen_digits_pixel_baseline.py


def image_levels(dataset_name: str) -> int:
    """The pixel values of a dataset's [0, 1] images: 17 for gen_digits, else 256 (8-bit)."""
    return 17 if dataset_name == "gen_digits" else 256


def to_levels(images: np.ndarray | jax.Array, levels: int) -> np.ndarray | jax.Array:
    """[0, 1] images -> int32 levels `round(x * (levels - 1))` (numpy in, numpy out; jax in,
    jax out); for levels 2 this is the threshold x > 0.5."""
    xp = jnp if isinstance(images, jax.Array) else np
    return xp.clip(xp.rint(images * (levels - 1)), 0, levels - 1).astype(xp.int32)


def fit_pixel_baseline(
    images_levels: np.ndarray | jax.Array, levels: int, pseudo_count: float = DEFAULT_PSEUDO_COUNT
) -> jax.Array:
    """Log-probabilities [H, W, C, levels] of the independent per-pixel categorical fitted in
    closed form to int images [N, H, W, C] in 0..levels-1: log((count + a) / (N + levels a))
    with a = `pseudo_count` (0: maximum likelihood; unseen values then get -inf)."""
    check_positive("pseudo_count", pseudo_count, allow_zero=True)
    counts = jax.nn.one_hot(jnp.asarray(images_levels), levels, dtype=jnp.float32).sum(0)
    return log_probs_from_counts(counts, pseudo_count)


def log_probs_from_counts(counts: jax.Array, pseudo_count: float) -> jax.Array:
    """log((counts + a) / (total + levels a)) over the last axis (the levels)."""
    smoothed = counts + pseudo_count
    return jnp.log(smoothed) - jnp.log(smoothed.sum(-1, keepdims=True))


def pixel_baseline_nll(log_probs: jax.Array, images_levels: jax.Array) -> jax.Array:
    """Negative log-likelihood (nats) per image [N] of int images [N, H, W, C] under the
    per-pixel log-probabilities [H, W, C, levels]."""
    picked = jnp.take_along_axis(
        jnp.broadcast_to(log_probs, (images_levels.shape[0], *log_probs.shape)),
        jnp.asarray(images_levels)[..., None],
        axis=-1,
    )
    return -picked.reshape(images_levels.shape[0], -1).sum(-1)


def sample_pixel_baseline(log_probs: jax.Array, key: jax.Array, num: int) -> jax.Array:
    """`num` images [num, H, W, C] float32 in [0, 1]: every pixel drawn independently from
    its categorical, level k shown as k / (levels - 1)."""
    levels = log_probs.shape[-1]
    draws = jax.random.categorical(key, log_probs, shape=(num, *log_probs.shape[:-1]))
    return draws.astype(jnp.float32) / (levels - 1)
