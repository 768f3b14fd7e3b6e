"""Batch-level mixing of train batches: mixup and cutmix, pure JAX.

Both pair each example `i` with example `perm[i]` of the same batch (`perm` a random
permutation) and mix the pair with one weight `lam` for the whole batch:

- mixup (Zhang et al., 2018): lam ~ Beta(alpha, alpha), x = lam * x + (1 - lam) * x[perm].
- cutmix (Yun et al., 2019): lam ~ Beta(alpha, alpha) sets a box of area fraction about
  1 - lam (sides H*sqrt(1 - lam), W*sqrt(1 - lam), centre uniform over the pixels, clipped at
  the borders) in which x[perm] is pasted; lam is then recomputed from the box actually
  pasted, 1 - box area / (H*W), so the labels weigh exactly the pixels each image kept.

The labels are mixed the same way: the loss is lam * CE(y) + (1 - lam) * CE(y[perm]),
which equals the cross entropy against the soft target lam * onehot(y) + (1 - lam) *
onehot(y[perm]) (CE is linear in its target). With both alphas positive one of the two is
drawn per batch with probability 1/2, as timm does. optax and flax have no mixing ops, so
they are written here.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp

from jaxlab import losses


@flax.struct.dataclass
class MixedBatch:
    """Mixed images, the permutation that paired them, and the weight of the originals."""

    images: jax.Array
    perm: jax.Array  # int32 [B]: example i was mixed with example perm[i]
    lam: jax.Array  # float32 scalar: weight of the original image and label


def sample_lambda(key: jax.Array, alpha: float) -> jax.Array:
    """lam ~ Beta(alpha, alpha), as float32."""
    return jax.random.beta(key, alpha, alpha).astype(jnp.float32)


def mixup(images: jax.Array, perm: jax.Array, lam: jax.Array) -> jax.Array:
    """lam * images + (1 - lam) * images[perm]."""
    lam = jnp.asarray(lam, images.dtype)
    return lam * images + (1 - lam) * images[perm]


def cutmix_box(
    key: jax.Array, height: int, width: int, lam: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """A random box of area fraction about 1 - lam, clipped at the borders.

    Returns (mask [height, width] bool, True inside the box; the lam of that box,
    1 - box area / (height * width)).
    """
    cut = jnp.sqrt(1.0 - lam)
    cut_h = jnp.floor(height * cut).astype(jnp.int32)
    cut_w = jnp.floor(width * cut).astype(jnp.int32)
    key_y, key_x = jax.random.split(key)
    cy = jax.random.randint(key_y, (), 0, height)
    cx = jax.random.randint(key_x, (), 0, width)
    y0, x0 = jnp.clip(cy - cut_h // 2, 0, height), jnp.clip(cx - cut_w // 2, 0, width)
    y1 = jnp.clip(cy - cut_h // 2 + cut_h, 0, height)
    x1 = jnp.clip(cx - cut_w // 2 + cut_w, 0, width)
    ys, xs = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
    mask = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
    area = ((y1 - y0) * (x1 - x0)).astype(jnp.float32)
    return mask, 1.0 - area / (height * width)


def cutmix(images: jax.Array, perm: jax.Array, mask: jax.Array) -> jax.Array:
    """images [B, H, W, C] with images[perm] pasted where `mask` [H, W] is True."""
    return jnp.where(mask[None, :, :, None], images[perm], images)


def mix_batch(
    key: jax.Array, images: jax.Array, mixup_alpha: float, cutmix_alpha: float
) -> MixedBatch:
    """Mixes a batch [B, H, W, C] by mixup or cutmix (the one whose alpha is positive; one of
    the two with probability 1/2 when both are). At least one alpha must be positive."""
    if not (mixup_alpha > 0 or cutmix_alpha > 0):
        raise ValueError("mix_batch needs mixup_alpha > 0 or cutmix_alpha > 0")
    key_perm, key_lam, key_box, key_choice = jax.random.split(key, 4)
    perm = jax.random.permutation(key_perm, images.shape[0])

    def by_mixup(_: None) -> tuple[jax.Array, jax.Array]:
        lam = sample_lambda(key_lam, mixup_alpha)
        return mixup(images, perm, lam), lam

    def by_cutmix(_: None) -> tuple[jax.Array, jax.Array]:
        _, height, width, _ = images.shape
        mask, lam = cutmix_box(key_box, height, width, sample_lambda(key_lam, cutmix_alpha))
        return cutmix(images, perm, mask), lam

    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = jax.random.bernoulli(key_choice, 0.5)
        mixed, lam = jax.lax.cond(use_cutmix, by_cutmix, by_mixup, None)
    elif cutmix_alpha > 0:
        mixed, lam = by_cutmix(None)
    else:
        mixed, lam = by_mixup(None)
    return MixedBatch(images=mixed, perm=perm, lam=lam)


def mixed_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    perm: jax.Array,
    lam: jax.Array,
    label_smoothing: float = 0.0,
) -> jax.Array:
    """Per-example lam * CE(labels) + (1 - lam) * CE(labels[perm]), each label-smoothed."""
    ce = losses.softmax_cross_entropy
    return lam * ce(logits, labels, label_smoothing) + (1 - lam) * ce(
        logits, labels[perm], label_smoothing
    )


def dominant_labels(labels: jax.Array, perm: jax.Array, lam: jax.Array) -> jax.Array:
    """The label of the larger share of each mixed example: labels if lam >= 1/2, else
    labels[perm] (train accuracy under mixing counts against it)."""
    return jnp.where(lam >= 0.5, labels, labels[perm])
