"""Tests of jaxlab.losses against values computed by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import losses


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_softmax_cross_entropy_smoothing_targets_by_hand(eps):
    num_classes = 5
    logits = jax.random.normal(jax.random.key(0), (4, num_classes)) * 3
    labels = jnp.array([0, 4, 2, 2])
    got = losses.softmax_cross_entropy(logits, labels, label_smoothing=eps)
    # The definition: 1 - eps*(K-1)/K on the label, eps/K on each other class.
    targets = np.full((4, num_classes), eps / num_classes)
    targets[np.arange(4), np.asarray(labels)] = 1 - eps * (num_classes - 1) / num_classes
    np.testing.assert_allclose(targets.sum(-1), 1.0)
    expected = -(targets * _log_softmax(logits)).sum(-1)
    assert got.shape == (4,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_cross_entropy_is_float32_for_low_precision_logits():
    logits = jnp.array([[1.0, 2.0, 0.5]], jnp.bfloat16)
    got = losses.softmax_cross_entropy(logits, jnp.array([1]))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, -_log_softmax(np.float32(logits))[:, 1], rtol=1e-6)


def test_accuracy_and_top_k():
    logits = jnp.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    labels = jnp.array([2, 0])
    np.testing.assert_array_equal(losses.accuracy(logits, labels), [0.0, 1.0])
    np.testing.assert_array_equal(losses.top_k_accuracy(logits, labels, 2), [1.0, 1.0])
    np.testing.assert_array_equal(losses.top_k_accuracy(logits, labels, 1), [0.0, 1.0])
