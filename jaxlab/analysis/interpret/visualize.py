"""What units respond to: maximally activating patches of a channel, and class
visualization by regularized gradient ascent.

- Maximally activating patches: the `k` (image, position) pairs of the eval images where a
  channel of a layer is largest, each with its receptive field on that image, found as the
  bounding box of the pixels with a nonzero gradient of that activation (exact for the
  network's local operations; no per-architecture arithmetic of strides and kernels).
- Class visualization (Simonyan et al., 2014; Yosinski et al., 2015): from a gray image,
  `steps` ascent steps on logit_c(x) - l2 * ||x - gray||^2, each on a randomly shifted copy
  (jitter, undone after the step), a Gaussian blur every `blur_every` steps, the image
  clipped to the valid pixel range; every class at once (vmapped batch), `lax.fori_loop`
  over steps. Steps are normalized by the gradient's RMS so one rate suits any model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.analysis.attacks import PixelSpace

LogitsFn = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class TopActivation:
    """One maximally activating position of a channel."""

    image: int  # index into the images
    position: tuple[int, int]  # (row, column) in the layer's map
    value: float
    box: tuple[int, int, int, int]  # receptive field in the image: rows [r0, r1), cols [c0, c1)


def max_activating_patches(
    layer_fn: LogitsFn, images: np.ndarray, channel: int, k: int
) -> list[TopActivation]:
    """The `k` largest activations of `channel` of `layer_fn(x) -> [N, h, w, C]` over
    `images` [N, H, W, C] (each position counted once), largest first, with their receptive
    fields."""
    acts = np.asarray(jax.jit(layer_fn)(jnp.asarray(images)))
    if acts.ndim != 4 or not 0 <= channel < acts.shape[-1]:
        raise ValueError(f"channel must be in 0..{acts.shape[-1] - 1} of a 4-d map, got {channel}")
    flat = acts[..., channel].reshape(-1)
    order = np.argsort(-flat, kind="stable")[:k]
    n, i, j = np.unravel_index(order, acts.shape[:3])

    def grad_one(image: jax.Array, row: jax.Array, col: jax.Array) -> jax.Array:
        return jax.grad(lambda z: layer_fn(z[None])[0, row, col, channel])(image)

    grads = np.asarray(
        jax.jit(jax.vmap(grad_one))(jnp.asarray(images[n]), jnp.asarray(i), jnp.asarray(j))
    )
    out = []
    for t in range(len(order)):
        support = np.abs(grads[t]).max(-1) > 0
        rows, cols = np.nonzero(support)
        if rows.size == 0:  # a flat spot (a ReLU at 0): no field to show
            box = (0, images.shape[1], 0, images.shape[2])
        else:
            box = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
        out.append(TopActivation(int(n[t]), (int(i[t]), int(j[t])), float(flat[order[t]]), box))
    return out


def gaussian_blur(x: jax.Array, sigma: float) -> jax.Array:
    """Blurs [N, H, W, C] images per channel with a separable Gaussian (radius 2 sigma,
    at least 1), edges replicated."""
    radius = max(1, round(2 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = jnp.asarray(taps / taps.sum(), x.dtype)
    pad = ((0, 0), (radius, radius), (radius, radius), (0, 0))
    z = jnp.pad(x, pad, mode="edge")
    h, w = x.shape[1], x.shape[2]
    rows = sum(taps[k] * z[:, k : k + h, :, :] for k in range(len(taps)))
    return sum(taps[k] * rows[:, :, k : k + w, :] for k in range(len(taps)))


def class_visualization(
    logits_fn: LogitsFn,
    classes: jax.Array,
    image_shape: tuple[int, int, int],
    space: PixelSpace,
    key: jax.Array,
    *,
    steps: int = 200,
    learning_rate: float = 0.05,
    l2: float = 1e-3,
    blur_every: int = 10,
    blur_sigma: float = 0.5,
    jitter: int = 1,
) -> jax.Array:
    """Images [K, H, W, C] (model inputs) maximizing logit[classes[k]], from gray."""
    gray = jnp.broadcast_to(
        jnp.asarray(space.from_pixels(np.full(image_shape[-1], 0.5, np.float32))),
        (len(classes), *image_shape),
    )
    lo, hi = jnp.asarray(space.lo), jnp.asarray(space.hi)

    def objective(z: jax.Array) -> jax.Array:
        scores = jnp.take_along_axis(logits_fn(z), classes[:, None], axis=-1).sum()
        return scores - l2 * jnp.sum((z - gray) ** 2)

    def step(t: jax.Array, x: jax.Array) -> jax.Array:
        shift = jax.random.randint(jax.random.fold_in(key, t), (2,), -jitter, jitter + 1)
        z = jnp.roll(x, (shift[0], shift[1]), axis=(1, 2))
        g = jax.grad(objective)(z)
        g = g / (jnp.sqrt(jnp.mean(g**2, axis=(1, 2, 3), keepdims=True)) + 1e-12)
        x = jnp.roll(z + learning_rate * g, (-shift[0], -shift[1]), axis=(1, 2))
        x = jax.lax.cond(
            (blur_every > 0) & ((t + 1) % max(blur_every, 1) == 0),
            lambda a: gaussian_blur(a, blur_sigma),
            lambda a: a,
            x,
        )
        return jnp.clip(x, lo, hi)

    return jax.lax.fori_loop(0, steps, step, gray)
