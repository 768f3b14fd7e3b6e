"""Pure loss and per-example score functions (no model code)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def softmax_cross_entropy(
    logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0
) -> jax.Array:
    """Per-example cross entropy of integer `labels` under softmax(`logits`), in float32.

    With label smoothing eps the target is 1 - eps*(K-1)/K on the label and eps/K elsewhere.
    """
    logits = logits.astype(jnp.float32)
    num_classes = logits.shape[-1]
    targets = jax.nn.one_hot(labels, num_classes)
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(logits, targets)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example 0/1 correctness of the arg-max prediction, as float32."""
    return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)


def top_k_accuracy(logits: jax.Array, labels: jax.Array, k: int) -> jax.Array:
    """Per-example 0/1: is the label among the k highest logits (ties counted against)."""
    label_logit = jnp.take_along_axis(logits, labels[:, None], axis=-1)
    rank = jnp.sum(logits > label_logit, axis=-1)
    return (rank < k).astype(jnp.float32)
