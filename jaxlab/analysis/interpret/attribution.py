"""Attribution maps: which input pixels a class score depends on.

- Vanilla gradient (Simonyan et al., 2014): d logit_t / d x; shown as the maximum over
  channels of its absolute value (`mode='abs'`), or of its negative part
  (`mode='negative'`: the pixels whose increase lowers the class score).
- SmoothGrad (Smilkov et al., 2017): the mean gradient over `samples` copies of the input
  with Gaussian noise of std `sigma` (model units), the copies vmapped.
- Gradient x input (Shrikumar et al., 2016; the "input x gradient" saliency of the
  attribution literature): (x - x') * d logit_t / d x, signed, with the input measured from
  a baseline x' (the black image: then it is the gradient w.r.t. the [0, 1] pixels times the
  pixel values, whatever the normalization). It is the first-order estimate of the score
  lost when a pixel is set to the baseline, which is what the deletion check measures.
- Integrated gradients (Sundararajan et al., 2017): (x - x') times the mean gradient on the
  straight path from the baseline x' to x (midpoint rule over `steps` points, vmapped); the
  attributions sum to logit_t(x) - logit_t(x') up to the rule's error (completeness).
- Occlusion sensitivity (Zeiler & Fergus, 2014): the drop of the class probability when a
  `patch` x `patch` square (moved by `stride`) is set to `fill`; a pixel's value is the
  mean drop over the squares that cover it. All squares of an image vmapped.

PAIR's `saliency` package is not a jaxlab dependency (it is not installed, and nothing is
downloaded), so SmoothGrad and integrated gradients are written here, on `jax.grad` and
`jax.vmap`; every function is pure and jit-able with the options static.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

LogitsFn = Callable[[jax.Array], jax.Array]
SALIENCY_MODES = ("abs", "negative")


def class_gradient(logits_fn: LogitsFn, x: jax.Array, targets: jax.Array) -> jax.Array:
    """d logit[n, targets[n]] / d x[n] for every image n (inference-mode models treat the
    images of a batch independently, so one gradient of the sum gives them all)."""

    def score(z: jax.Array) -> jax.Array:
        logits = logits_fn(z)
        return jnp.take_along_axis(logits, targets[:, None], axis=-1).sum()

    return jax.grad(score)(x)


def saliency_map(gradient: jax.Array, mode: str = "abs") -> jax.Array:
    """[N, H, W, C] gradients -> [N, H, W] maps: the channel maximum of |g| ('abs') or of
    max(-g, 0) ('negative')."""
    if mode == "abs":
        return jnp.max(jnp.abs(gradient), axis=-1)
    if mode == "negative":
        return jnp.max(jnp.maximum(-gradient, 0.0), axis=-1)
    raise ValueError(f"unknown saliency mode {mode!r}; valid choices: {', '.join(SALIENCY_MODES)}")


def smoothgrad(
    logits_fn: LogitsFn,
    x: jax.Array,
    targets: jax.Array,
    key: jax.Array,
    *,
    sigma: float | jax.Array,
    samples: int = 25,
) -> jax.Array:
    """The mean `class_gradient` over `samples` noisy copies x + N(0, sigma^2)."""
    noise = sigma * jax.random.normal(key, (samples, *x.shape), x.dtype)
    grads = jax.vmap(lambda n: class_gradient(logits_fn, x + n, targets))(noise)
    return grads.mean(0)


def gradient_times_input(
    logits_fn: LogitsFn, x: jax.Array, targets: jax.Array, baseline: jax.Array
) -> jax.Array:
    """(x - baseline) * `class_gradient` at x, signed, [N, H, W, C]; `baseline` broadcasts
    against x (integrated gradients with a single point at x)."""
    return (x - baseline) * class_gradient(logits_fn, x, targets)


def integrated_gradients(
    logits_fn: LogitsFn,
    x: jax.Array,
    targets: jax.Array,
    baseline: jax.Array,
    *,
    steps: int = 32,
) -> jax.Array:
    """(x - baseline) * mean of `class_gradient` at baseline + a (x - baseline), a at the
    midpoints (k + 1/2) / steps; `baseline` broadcasts against x."""
    alphas = (jnp.arange(steps, dtype=x.dtype) + 0.5) / steps
    delta = x - baseline
    grads = jax.vmap(lambda a: class_gradient(logits_fn, baseline + a * delta, targets))(alphas)
    return delta * grads.mean(0)


def occlusion_windows(height: int, width: int, patch: int, stride: int) -> np.ndarray:
    """The squares as masks, float32 [P, H, W] (1 inside), row-major; squares start every
    `stride` pixels and lie inside the image."""
    if not 1 <= patch <= min(height, width) or stride < 1:
        raise ValueError(
            f"occlusion patch must be in 1..{min(height, width)} and stride >= 1, "
            f"got patch {patch}, stride {stride}"
        )
    starts_h = range(0, height - patch + 1, stride)
    starts_w = range(0, width - patch + 1, stride)
    masks = np.zeros((len(starts_h) * len(starts_w), height, width), np.float32)
    for k, (i, j) in enumerate((i, j) for i in starts_h for j in starts_w):
        masks[k, i : i + patch, j : j + patch] = 1.0
    return masks


def occlusion_map(
    logits_fn: LogitsFn,
    x: jax.Array,
    targets: jax.Array,
    fill: float | jax.Array,
    windows: np.ndarray,
) -> jax.Array:
    """[N, H, W]: per pixel, the mean drop of p(target) over the `windows` (masks
    [P, H, W], `occlusion_windows`) covering it when they are set to `fill`; 0 where no
    window covers the pixel."""
    masks = jnp.asarray(windows)[..., None]  # [P, H, W, 1]

    def target_prob(z: jax.Array) -> jax.Array:
        probs = jax.nn.softmax(logits_fn(z), axis=-1)
        return jnp.take_along_axis(probs, targets[:, None], axis=-1)[:, 0]

    clean = target_prob(x)
    occluded = jax.vmap(lambda m: target_prob(x * (1 - m) + fill * m))(masks)  # [P, N]
    drops = clean[None] - occluded
    cover = jnp.asarray(windows).sum(0)
    heat = jnp.einsum("pn,phw->nhw", drops, jnp.asarray(windows))
    return heat / jnp.maximum(cover, 1.0)
