"""Tests of jaxlab.losses against values computed by hand."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
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


def _cross_entropy_before_ignoring(logits, labels, label_smoothing=0.0):
    # The implementation before ignored labels existed: valid labels must give these bits.
    logits = logits.astype(jnp.float32)
    targets = jax.nn.one_hot(labels, logits.shape[-1])
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(logits, targets)


@pytest.mark.parametrize("shape", [(4,), (2, 3)])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_valid_labels_give_the_same_bits_as_before(shape, eps):
    num_classes = 7
    logits = jax.random.normal(jax.random.key(1), (*shape, num_classes)) * 4
    labels = jax.random.randint(jax.random.key(2), shape, 0, num_classes)
    for wrap in (lambda f: f, jax.jit):
        got = wrap(partial(losses.softmax_cross_entropy, label_smoothing=eps))(logits, labels)
        want = wrap(partial(_cross_entropy_before_ignoring, label_smoothing=eps))(logits, labels)
        np.testing.assert_array_equal(got, want)


LOGITS = jnp.array(
    [[[2.0, -1.0, 0.5], [0.3, 0.2, 0.1]], [[-1.0, 3.0, 0.0], [1.0, 1.0, 4.0]]]
)  # [B=2, T=2, C=3]
LABELS = jnp.array([[0, 255], [-1, 2]])
VALID = np.array([[True, False], [False, True]])


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_ignored_labels_have_zero_loss_and_leave_the_denominator(eps):
    got = losses.softmax_cross_entropy(LOGITS, LABELS, eps)
    assert got.shape == (2, 2)
    np.testing.assert_array_equal(np.asarray(got)[~VALID], 0.0)
    # Valid positions: the per-example (label-smoothed) loss of those examples alone.
    valid_logits = jnp.stack([LOGITS[0, 0], LOGITS[1, 1]])
    valid_ce = losses.softmax_cross_entropy(valid_logits, jnp.array([0, 2]), eps)
    np.testing.assert_array_equal(np.asarray(got)[VALID], valid_ce)
    # Mean over the 2 valid positions, not the 4 positions.
    np.testing.assert_allclose(
        losses.masked_cross_entropy(LOGITS, LABELS, eps), valid_ce.sum() / 2, rtol=1e-6
    )
    # An example mask [B] on top: only example 0's valid position remains.
    np.testing.assert_allclose(
        losses.masked_cross_entropy(LOGITS, LABELS, eps, mask=jnp.array([1, 0])),
        valid_ce[0],
        rtol=1e-6,
    )


def test_ignored_positions_are_finite_with_nonfinite_logits():
    logits = LOGITS.at[0, 1].set(jnp.array([-jnp.inf, jnp.nan, 1.0]))
    got = losses.softmax_cross_entropy(logits, LABELS, 0.1)
    assert np.all(np.isfinite(got)) and got[0, 1] == 0.0
    # Large but finite logits at an ignored position: finite gradients, exactly 0 there.
    logits = LOGITS.at[0, 1].set(jnp.array([-1e30, 1e30, 1.0]))
    grads = jax.grad(lambda x: losses.masked_cross_entropy(x, LABELS, 0.1))(logits)
    assert np.all(np.isfinite(grads)) and np.all(grads[0, 1] == 0.0)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_masked_mean_gradient_is_zero_at_ignored_positions(eps):
    grads = jax.grad(lambda x: losses.masked_cross_entropy(x, LABELS, eps))(LOGITS)
    assert np.all(np.isfinite(grads))
    np.testing.assert_array_equal(np.asarray(grads)[~VALID], 0.0)
    # At a valid position: (softmax - target) / number of valid positions.
    probs = np.exp(_log_softmax(LOGITS[0, 0]))
    target = np.full(3, eps / 3)
    target[0] = 1 - eps * 2 / 3
    np.testing.assert_allclose(grads[0, 0], (probs - target) / 2, rtol=1e-5, atol=1e-7)


def test_masked_mean_of_nothing_is_zero_and_nan_outside_the_mask_is_ignored():
    values = jnp.array([[1.0, jnp.nan], [3.0, 5.0]])
    mask = jnp.array([[1, 0], [1, 1]])
    assert losses.masked_mean(values, mask) == 3.0
    assert losses.masked_mean(values, jnp.array([0, 1])) == 4.0  # example mask [B]
    assert losses.masked_mean(values, jnp.zeros((2, 2))) == 0.0
    assert losses.masked_cross_entropy(LOGITS, jnp.full((2, 2), 255)) == 0.0


def test_accuracy_and_top_k_score_ignored_labels_zero():
    np.testing.assert_array_equal(losses.accuracy(LOGITS, LABELS), [[1.0, 0.0], [0.0, 1.0]])
    # k=3 covers every class: every valid label is in the top k, no ignored one is.
    np.testing.assert_array_equal(losses.top_k_accuracy(LOGITS, LABELS, 3), VALID)
    np.testing.assert_array_equal(
        losses.valid_label_mask(jnp.array([-1, 0, 2, 3, 255]), 3), [0, 1, 1, 0, 0]
    )
