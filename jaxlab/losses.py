"""Pure loss and per-example score functions (no model code).

Ignored labels. An integer label outside [0, C) for C classes (the 255 "void" label of
segmentation datasets, the -1 or 0-padding convention of a token batch remapped below 0) marks
a position that is not scored: `softmax_cross_entropy`, `accuracy` and `top_k_accuracy` return
exactly 0 there, finite whatever the logits hold (even -inf or NaN), and the gradient of the
loss with respect to those logits is exactly 0 where they are finite. Averages must then
leave those positions out of the denominator: `masked_mean` / `masked_cross_entropy`
divide by the number of valid (and, where given, unmasked) positions, so a batch that is
half void pixels is not scored as half as large. For labels in [0, C) every function
returns the same bits as before ignoring existed.

Masks follow clu's convention: a mask is aligned with the LEADING axes of the values it masks
(an example mask [B] for per-token values [B, T]) and then broadcast (`broadcast_mask`).

Why not optax's `softmax_cross_entropy_with_integer_labels(logits, labels, where=...)`
(optax 0.2.8 has `where`): it computes logsumexp(logits) - logits[label], which differs in
the last bits from the one-hot form used here (existing runs and tests rely on those bits);
it has no label smoothing; and its `where` only masks the output and the normaliser, the
out-of-range label is still gathered (255 gives NaN and -1 wraps to the last class without
`where`). Instead the one-hot target of an ignored label is all zeros (`jax.nn.one_hot` of an
out-of-range index; smoothed targets are selected to zeros there) and the loss is selected
to 0 afterwards. The logits themselves are not touched: selecting the ignored positions'
logits to zeros first would also make NaN logits there harmless for the gradient, but it
changes how XLA fuses the softmax and with it the last bits of every gradient, and the
classification loop is kept bit-for-bit identical to its earlier versions (a test holds
it to a recorded digest).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def valid_label_mask(labels: jax.Array, num_classes: int) -> jax.Array:
    """Bool array of `labels`' shape: True where 0 <= label < num_classes (a scored label)."""
    labels = jnp.asarray(labels)
    return (labels >= 0) & (labels < num_classes)


def broadcast_mask(mask: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """`mask != 0` as a bool array of `shape`, the mask aligned with the leading axes.

    A mask of fewer dimensions than `shape` gets trailing unit axes first, so an example
    mask [B] covers per-token values [B, T] and per-pixel values [B, H, W] (clu's `Average`
    convention); after that the usual broadcasting applies ([B, 1] or [1, T] masks work).
    Raises ValueError when the mask has more dimensions than `shape` or does not broadcast.
    """
    mask = jnp.asarray(mask)
    if mask.ndim > len(shape):
        raise ValueError(f"mask of shape {mask.shape} has more dimensions than values {shape}")
    mask = mask.reshape(mask.shape + (1,) * (len(shape) - mask.ndim))
    return jnp.broadcast_to(mask != 0, shape)


def softmax_cross_entropy(
    logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0
) -> jax.Array:
    """Cross entropy of integer `labels` [...] under softmax(`logits` [..., C]), in float32.

    With label smoothing eps the target is 1 - eps*(K-1)/K on the label and eps/K elsewhere.
    A label outside [0, C) is ignored: its loss is exactly 0, and its gradient with respect
    to the logits is exactly 0 (see the module docstring).
    """
    logits = logits.astype(jnp.float32)
    num_classes = logits.shape[-1]
    valid = valid_label_mask(labels, num_classes)
    targets = jax.nn.one_hot(labels, num_classes)  # all zeros for an ignored label
    if label_smoothing:
        targets = jnp.where(valid[..., None], optax.smooth_labels(targets, label_smoothing), 0.0)
    return jnp.where(valid, optax.softmax_cross_entropy(logits, targets), 0.0)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-position 0/1 correctness of the arg-max prediction, as float32.

    A label outside [0, C) never equals an arg-max, so it scores 0; leave it out of the
    mean with `valid_label_mask` (or use `jaxlab.metrics.accuracy`, which does).
    """
    return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)


def top_k_accuracy(logits: jax.Array, labels: jax.Array, k: int) -> jax.Array:
    """Per-position 0/1: is the label among the k highest logits (ties counted against).

    A label outside [0, C) scores 0 (rather than gathering an out-of-range logit).
    """
    valid = valid_label_mask(labels, logits.shape[-1])
    safe_labels = jnp.where(valid, labels, 0)
    label_logit = jnp.take_along_axis(logits, safe_labels[..., None], axis=-1)
    rank = jnp.sum(logits > label_logit, axis=-1)
    return ((rank < k) & valid).astype(jnp.float32)


def masked_mean(values: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """sum(values where mask) / max(count(mask), 1) as a float32 scalar.

    `mask` follows `broadcast_mask` (e.g. [B] for values [B, T]); None means all entries.
    Masked-out entries are selected away, so a NaN there reaches neither value nor gradient.
    An all-masked batch gives 0 (not NaN).
    """
    values = jnp.asarray(values).astype(jnp.float32)
    if mask is None:
        mask = jnp.ones(values.shape, bool)
    mask = broadcast_mask(mask, values.shape)
    total = jnp.sum(jnp.where(mask, values, 0.0))
    count = jnp.sum(mask, dtype=jnp.int32)
    return total / jnp.maximum(count, 1).astype(jnp.float32)


def masked_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    label_smoothing: float = 0.0,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Mean cross entropy over the positions with a label in [0, C) and a nonzero `mask`.

    = sum(loss * valid) / max(count(valid), 1), a float32 scalar, where valid is the label
    validity and'ed with `mask` (aligned with the labels' leading axes, see
    `broadcast_mask`). The loss to minimise for segmentation and padded token batches.
    """
    valid = valid_label_mask(labels, logits.shape[-1])
    if mask is not None:
        valid = valid & broadcast_mask(mask, valid.shape)
    return masked_mean(softmax_cross_entropy(logits, labels, label_smoothing), valid)
