"""Adversarial examples for any classifier: FGSM, PGD, random sign noise, and the accuracy
under attack per epsilon.

Everything works in the model's input space (the images the model is fed: standardized
with the dataset's mean and std for jaxlab's classifiers) on a `logits_fn(x) -> [N, C]`.
Budgets are given on the [0, 1] pixel scale and converted per channel with `PixelSpace`,
so `eps = 0.2` means 20% of the pixel range whatever the normalization; every attack clips
its images to the valid pixel range `[PixelSpace.lo, PixelSpace.hi]` (pixel values 0 and 1
mapped into the model's space) at every step.

- FGSM (Goodfellow et al., 2015): `x + eps * sign(grad_x CE(f(x), y))`, clipped.
- PGD (Madry et al., 2018): `steps` signed-gradient steps of size `step_size` from `x` (or
  a uniform random start in the ball), each followed by the projection onto the L-inf ball
  of radius eps around `x` and the clip to the valid range. `lax.fori_loop` over steps.
- Random sign noise: `x + eps * s`, `s` uniform in {-1, +1}, clipped (the control: a
  perturbation of the same size that is not aimed).

Written here rather than taken from a library: no adversarial-robustness package for JAX is
a dependency of jaxlab, and each attack is a few lines on `jax.grad`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

LogitsFn = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class PixelSpace:
    """The map between [0, 1] pixels and the model's inputs: `x = (p - mean) / std` per
    channel (mean 0 and std 1 for a model fed raw [0, 1] pixels)."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    @property
    def lo(self) -> np.ndarray:
        """The smallest valid input per channel (pixel value 0), float32 [C]."""
        return self.from_pixels(np.zeros(len(self.mean), np.float32))

    @property
    def hi(self) -> np.ndarray:
        """The largest valid input per channel (pixel value 1), float32 [C]."""
        return self.from_pixels(np.ones(len(self.mean), np.float32))

    def from_pixels(self, p: np.ndarray | jax.Array) -> np.ndarray | jax.Array:
        """[0, 1] pixels -> model inputs (channels last)."""
        return (p - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)

    def to_pixels(self, x: np.ndarray | jax.Array) -> np.ndarray | jax.Array:
        """Model inputs -> [0, 1] pixels (channels last)."""
        return x * np.asarray(self.std, np.float32) + np.asarray(self.mean, np.float32)

    def scale(self, eps: float | jax.Array) -> jax.Array:
        """A pixel-scale budget as the per-channel budget in model units: eps / std."""
        return jnp.asarray(eps, jnp.float32) / jnp.asarray(self.std, jnp.float32)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example cross-entropy computed as softplus(logsumexp_{j != y} z_j - z_y).

    The same function as `optax.softmax_cross_entropy_with_integer_labels`, written so that
    its gradient stays exact for confident predictions: there the usual form's gradient
    `softmax(z) - onehot(y)` rounds `p_y - 1` to 0 in float32 and loses the true class's
    term, which turns FGSM's sign(gradient) into another direction (a confident model then
    looks robust: gradient masking by saturation).
    """
    num_classes = logits.shape[-1]
    own = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, num_classes, dtype=bool), -jnp.inf, logits)
    return jax.nn.softplus(jax.nn.logsumexp(others, axis=-1) - own)


def input_gradient(logits_fn: LogitsFn, x: jax.Array, labels: jax.Array) -> jax.Array:
    """The gradient of the summed cross-entropy of `logits_fn(x)` w.r.t. the inputs."""
    return jax.grad(lambda z: cross_entropy(logits_fn(z), labels).sum())(x)


def fgsm(
    logits_fn: LogitsFn, x: jax.Array, labels: jax.Array, eps: float | jax.Array, space: PixelSpace
) -> jax.Array:
    """The fast gradient sign method: one step of size `eps` (pixel scale), clipped."""
    g = input_gradient(logits_fn, x, labels)
    return jnp.clip(x + space.scale(eps) * jnp.sign(g), space.lo, space.hi)


def pgd(
    logits_fn: LogitsFn,
    x: jax.Array,
    labels: jax.Array,
    eps: float | jax.Array,
    space: PixelSpace,
    *,
    steps: int = 10,
    step_size: float | jax.Array | None = None,
    key: jax.Array | None = None,
) -> jax.Array:
    """Projected gradient descent in the L-inf ball of radius `eps` (pixel scale).

    `step_size` (pixel scale) defaults to 2.5 * eps / steps (Madry et al.); `key` given: a
    uniform random start in the ball. Every step projects onto the ball and clips to the
    valid range, so the result always lies in both.
    """
    radius = space.scale(eps)
    alpha = space.scale(2.5 * jnp.asarray(eps) / steps if step_size is None else step_size)
    lo, hi = jnp.maximum(x - radius, space.lo), jnp.minimum(x + radius, space.hi)
    start = x
    if key is not None:
        start = jnp.clip(x + jax.random.uniform(key, x.shape, minval=-1.0) * radius, lo, hi)

    def step(_: int, z: jax.Array) -> jax.Array:
        z = z + alpha * jnp.sign(input_gradient(logits_fn, z, labels))
        return jnp.clip(z, lo, hi)  # the ball's box intersected with the valid range

    return jax.lax.fori_loop(0, steps, step, start)


def random_sign_noise(
    key: jax.Array, x: jax.Array, eps: float | jax.Array, space: PixelSpace
) -> jax.Array:
    """`x` plus `eps` (pixel scale) times uniform random signs, clipped to the valid range."""
    signs = jax.random.rademacher(key, x.shape, dtype=x.dtype)
    return jnp.clip(x + space.scale(eps) * signs, space.lo, space.hi)


ATTACKS = ("fgsm", "pgd", "noise")


def make_attack(
    name: str, logits_fn: LogitsFn, space: PixelSpace, *, pgd_steps: int = 10
) -> Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]:
    """A jitted `(x, labels, eps, key) -> adversarial x` for `name` in ATTACKS (eps traced,
    so one compilation serves every epsilon)."""
    if name == "fgsm":
        fn = lambda x, y, eps, key: fgsm(logits_fn, x, y, eps, space)  # noqa: E731
    elif name == "pgd":
        fn = lambda x, y, eps, key: pgd(  # noqa: E731
            logits_fn, x, y, eps, space, steps=pgd_steps, key=key
        )
    elif name == "noise":
        fn = lambda x, y, eps, key: random_sign_noise(key, x, eps, space)  # noqa: E731
    else:
        raise ValueError(f"unknown attack {name!r}; valid choices: {', '.join(ATTACKS)}")
    return jax.jit(fn)


def accuracy_under_attack(
    logits_fn: LogitsFn,
    images: np.ndarray,
    labels: np.ndarray,
    epsilons: Sequence[float],
    space: PixelSpace,
    attack: str = "fgsm",
    *,
    batch_size: int = 512,
    seed: int = 0,
    pgd_steps: int = 10,
) -> np.ndarray:
    """Accuracy (float64 [len(epsilons)]) of `logits_fn` on `images` after `attack` with
    each epsilon (pixel scale); batches of `batch_size`, the key of batch b `fold_in(seed, b)`."""
    run = make_attack(attack, logits_fn, space, pgd_steps=pgd_steps)
    predict = jax.jit(lambda z: jnp.argmax(logits_fn(z), -1))
    out = np.zeros(len(epsilons))
    for i, eps in enumerate(epsilons):
        correct = 0
        for b, start in enumerate(range(0, len(images), batch_size)):
            x = jnp.asarray(images[start : start + batch_size])
            y = jnp.asarray(labels[start : start + batch_size])
            key = jax.random.fold_in(jax.random.key(seed), b)
            adv = run(x, y, jnp.float32(eps), key)
            correct += int(jnp.sum(predict(adv) == y))
        out[i] = correct / len(images)
    return out
