"""Checks of the explanations, and the feature-space views.

- Deletion check: remove (set to the background, pixel value 0) the `k` ink pixels an
  attribution map ranks highest and measure the accuracy drop, against removing `k` ink
  pixels drawn at random (the mean over several draws). Both choose among the ink pixels
  (pixel value above `ink_threshold`), the only ones whose removal changes the image, so
  the comparison is of the ranking alone.
- Model-randomization sanity check (Adebayo et al., 2018): the Spearman rank correlation,
  per image, between the maps of the trained model and of the same architecture
  re-initialized; a map that explains the model must change when the weights do (low
  correlation), a map that merely detects edges of the input does not.
- Nearest neighbours in a feature space (L2 or cosine), and 2-d views of features by
  scikit-learn's t-SNE and PCA.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.config import ConfigError

NEIGHBOUR_METRICS = ("l2", "cosine")
EMBEDDINGS = ("tsne", "pca")


def top_ink_masks(scores: np.ndarray, ink: np.ndarray, k: int) -> np.ndarray:
    """bool [N, H, W]: per image, the `k` ink pixels of highest score (ties: the earlier
    pixel in row-major order); all ink where an image has fewer than `k` ink pixels."""
    n = scores.shape[0]
    flat = np.where(ink.reshape(n, -1), scores.reshape(n, -1), -np.inf)
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    masks = np.zeros(flat.shape, bool)
    np.put_along_axis(masks, order, True, axis=1)
    return (masks & ink.reshape(n, -1)).reshape(scores.shape)


def random_ink_masks(rng: np.random.Generator, ink: np.ndarray, k: int) -> np.ndarray:
    """bool [N, H, W]: per image, `k` ink pixels drawn uniformly without replacement."""
    return top_ink_masks(rng.random(ink.shape), ink, k)


def remove_pixels(images: np.ndarray, masks: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """`images` [N, H, W, C] with the pixels of `masks` [N, H, W] set to `fill` [C]."""
    return np.where(masks[..., None], np.asarray(fill, images.dtype), images)


def deletion_check(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    maps: dict[str, np.ndarray],
    ink: np.ndarray,
    fill: np.ndarray,
    k: int,
    *,
    random_draws: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracies after removing the top-`k` ink pixels of each map in `maps` ({name:
    [N, H, W]}) and `k` random ink pixels; drops from the clean accuracy and each map's drop
    divided by the random drop (`ratio_<name>`)."""
    clean = float(np.mean(predict(images) == labels))
    out = {"clean": clean}
    rng = np.random.default_rng(seed)
    random_acc = [
        float(
            np.mean(predict(remove_pixels(images, random_ink_masks(rng, ink, k), fill)) == labels)
        )
        for _ in range(random_draws)
    ]
    out["random"] = float(np.mean(random_acc))
    random_drop = clean - out["random"]
    for name, scores in maps.items():
        removed = remove_pixels(images, top_ink_masks(scores, ink, k), fill)
        out[name] = float(np.mean(predict(removed) == labels))
        drop = clean - out[name]
        out[f"ratio_{name}"] = drop / random_drop if random_drop > 0 else float("inf")
    return out


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of each row pair of `a`, `b` [N, ...] (flattened per
    row; ties get their average rank), float64 [N]."""
    from scipy.stats import rankdata

    n = a.shape[0]
    ra = rankdata(a.reshape(n, -1), axis=1)
    rb = rankdata(b.reshape(n, -1), axis=1)
    ra = ra - ra.mean(1, keepdims=True)
    rb = rb - rb.mean(1, keepdims=True)
    denom = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    return np.where(denom > 0, (ra * rb).sum(1) / np.where(denom > 0, denom, 1.0), 0.0)


def nearest_neighbours(
    queries: np.ndarray, memory: np.ndarray, k: int, metric: str = "l2"
) -> np.ndarray:
    """Indices int [Q, k] of the `k` nearest rows of `memory` [M, D] to each query [Q, D],
    nearest first, by L2 distance or cosine similarity."""
    if metric not in NEIGHBOUR_METRICS:
        raise ConfigError(
            f"unknown metric {metric!r}; valid choices: {', '.join(NEIGHBOUR_METRICS)}"
        )

    @jax.jit
    def search(q: jax.Array, m: jax.Array) -> jax.Array:
        if metric == "cosine":
            q = q / (jnp.linalg.norm(q, axis=1, keepdims=True) + 1e-12)
            m = m / (jnp.linalg.norm(m, axis=1, keepdims=True) + 1e-12)
            score = q @ m.T
        else:
            score = -(jnp.sum(q**2, 1)[:, None] - 2 * q @ m.T + jnp.sum(m**2, 1)[None])
        return jax.lax.top_k(score, k)[1]

    return np.asarray(search(jnp.asarray(queries), jnp.asarray(memory)))


def embed_2d(features: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """[N, D] features -> [N, 2] by scikit-learn's TSNE (PCA-initialized, perplexity
    min(30, (N - 1) / 3)) or PCA."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        perplexity = min(30.0, (len(features) - 1) / 3)
        return TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed
        ).fit_transform(features)
    raise ConfigError(f"unknown embedding {method!r}; valid choices: {', '.join(EMBEDDINGS)}")
