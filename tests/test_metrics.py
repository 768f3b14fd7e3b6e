"""Tests of jaxlab.metrics against numpy counts, in and out of jit, merged and reduced."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from clu import metrics as clu_metrics

from jaxlab import metrics

VALUES = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]], np.float32)  # [B=2, T=3]


def _zeros(m):
    return jax.tree.map(jnp.zeros_like, m)


def _assert_metric_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def _gathered_reduce(per_device):
    """The loop's pmap reduction, run under vmap with a named axis on one device."""

    def per_shard(m):
        return jax.tree.map(lambda x: jax.lax.all_gather(x, "d"), m).reduce()

    out = jax.vmap(per_shard, axis_name="d")(per_device)
    return jax.tree.map(lambda x: x[0], out)  # every shard holds the same reduced metric


def test_average_with_example_and_token_masks():
    example_mask = np.array([0, 1])
    m = metrics.average(VALUES, example_mask)
    assert m.total.dtype == jnp.float32 and m.count.dtype == jnp.int32
    assert (float(m.total), int(m.count)) == (56.0, 3)
    token_mask = np.array([[1, 0, 1], [0, 0, 1]])
    m = metrics.average(VALUES, token_mask)
    assert (float(m.total), int(m.count)) == (37.0, 3)
    assert math.isclose(m.compute(), 37 / 3, rel_tol=1e-6)
    m = metrics.average(VALUES, np.array([[1, 0, 1]]))  # [1, T]: broadcast over the batch
    assert (float(m.total), int(m.count)) == (45.0, 4)
    m = metrics.average(VALUES)
    assert (float(m.total), int(m.count)) == (63.0, 6)


def test_average_keeps_float32_int32_and_skips_nan_outside_the_mask():
    m = metrics.average(jnp.array([1.0, 2.0], jnp.bfloat16), jnp.array([True, True]))
    assert m.total.dtype == jnp.float32 and m.count.dtype == jnp.int32
    m = metrics.average(jnp.array([1, 2, 3]), jnp.array([1, 1, 0]))
    assert m.total.dtype == jnp.float32 and float(m.total) == 3.0
    m = metrics.average(jnp.array([1.0, jnp.nan]), jnp.array([1, 0]))
    assert (float(m.total), int(m.count)) == (1.0, 1)
    m = metrics.average(jnp.float32(2.5))  # a scalar (a batch loss)
    assert (float(m.total), int(m.count)) == (2.5, 1)


def test_average_merge_equals_one_big_batch_and_zeros_are_empty():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(2, 4))
    ma, mb = rng.integers(0, 2, 3), rng.integers(0, 2, 2)
    merged = metrics.average(a, ma).merge(metrics.average(b, mb))
    whole = metrics.average(np.concatenate([a, b]), np.concatenate([ma, mb]))
    np.testing.assert_allclose(merged.total, whole.total, rtol=1e-6)
    assert int(merged.count) == int(whole.count)
    empty = _zeros(merged)
    _assert_metric_equal(empty, clu_metrics.Average.empty())
    _assert_metric_equal(empty.merge(empty), empty)
    _assert_metric_equal(empty.merge(merged), merged)


def test_average_reduce_over_devices_equals_merge():
    parts = [metrics.average(VALUES * i, np.array([1, i % 2])) for i in range(3)]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *parts)
    want = parts[0].merge(parts[1]).merge(parts[2])
    _assert_metric_equal(stacked.reduce(), want)
    _assert_metric_equal(_gathered_reduce(stacked), want)


def test_accuracy_ignores_out_of_range_labels_and_masked_examples():
    logits = jnp.array([[[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])  # [2, 2, C=2]
    labels = jnp.array([[1, 255], [0, -1]])
    m = metrics.accuracy(logits, labels)
    assert (float(m.total), int(m.count)) == (1.0, 2)
    m = metrics.accuracy(logits, labels, mask=jnp.array([1, 0]))
    assert (float(m.total), int(m.count)) == (1.0, 1)
    assert type(m) is clu_metrics.Average


def _numpy_confusion(predictions, labels, num_classes, mask=None):
    predictions, labels = np.ravel(predictions), np.ravel(labels)
    keep = (labels >= 0) & (labels < num_classes)
    if mask is not None:
        keep &= np.ravel(mask).astype(bool)
    index = labels[keep] * num_classes + predictions[keep]
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def _numpy_mean_iou(matrix):
    ious = []
    for c in range(matrix.shape[0]):
        tp = matrix[c, c]
        union = matrix[c, :].sum() + matrix[:, c].sum() - tp
        if union:
            ious.append(tp / union)
    return np.mean(ious)


def _segmentation_batches(num_batches, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    shape = (2, 3, 4)  # [B, H, W]
    preds = rng.integers(0, num_classes, (num_batches, *shape))
    labels = rng.integers(0, num_classes, (num_batches, *shape))
    labels[rng.random(labels.shape) < 0.2] = 255
    labels[rng.random(labels.shape) < 0.1] = -1
    return preds, labels


def test_confusion_matrix_merged_batches_equal_numpy_over_the_concatenation():
    num_classes = 4
    preds, labels = _segmentation_batches(3, num_classes)
    acc = metrics.ConfusionMatrix.zeros(num_classes)
    for p, t in zip(preds, labels, strict=True):
        acc = acc.merge(metrics.ConfusionMatrix.from_predictions(p, t, num_classes))
    want = _numpy_confusion(preds, labels, num_classes)
    assert acc.matrix.dtype == jnp.int32 and acc.matrix.shape == (num_classes, num_classes)
    np.testing.assert_array_equal(acc.matrix, want)
    assert int(acc.matrix.sum()) == int(((labels >= 0) & (labels != 255)).sum())
    out = acc.compute()
    np.testing.assert_allclose(out["mean_iou"], _numpy_mean_iou(want), rtol=1e-12)
    np.testing.assert_allclose(out["pixel_accuracy"], np.trace(want) / want.sum(), rtol=1e-12)
    per_class, mean_iou = metrics.iou_from_confusion(want)
    assert mean_iou == out["mean_iou"]
    np.testing.assert_array_equal([out[f"iou/{c}"] for c in range(num_classes)], per_class)


def test_confusion_matrix_mask_of_leading_axes():
    preds, labels = _segmentation_batches(1, 3, seed=1)
    mask = np.array([1, 0])  # example mask [B] over per-pixel labels [B, H, W]
    m = metrics.ConfusionMatrix.from_predictions(preds[0], labels[0], 3, mask=mask)
    full_mask = np.broadcast_to(mask[:, None, None], labels[0].shape)
    np.testing.assert_array_equal(m.matrix, _numpy_confusion(preds[0], labels[0], 3, full_mask))


def test_mean_iou_leaves_out_absent_classes_and_keeps_predicted_only_ones():
    # Class 0: TP 2. Class 1: target once, predicted as 0. Class 2: only predicted (IoU 0).
    # Class 3: in neither (left out of the mean).
    labels = np.array([0, 0, 1, 0])
    preds = np.array([0, 0, 0, 2])
    out = metrics.ConfusionMatrix.from_predictions(preds, labels, 4).compute()
    iou0 = 2 / (2 + 1 + 1)  # TP 2, FP 1 (the 1 predicted as 0), FN 1 (the 0 predicted as 2)
    assert out["iou/0"] == iou0 and out["iou/1"] == 0.0 and out["iou/2"] == 0.0
    assert math.isnan(out["iou/3"])
    assert math.isfinite(out["mean_iou"])
    assert math.isclose(out["mean_iou"], (iou0 + 0.0 + 0.0) / 3)
    assert out["pixel_accuracy"] == 0.5


def test_confusion_matrix_of_nothing_and_empty():
    m = metrics.ConfusionMatrix.from_predictions(np.array([1]), np.array([255]), 2)
    out = m.compute()
    assert math.isnan(out["mean_iou"]) and math.isnan(out["pixel_accuracy"])
    with pytest.raises(NotImplementedError, match="zeros"):
        metrics.ConfusionMatrix.empty()
    _assert_metric_equal(_zeros(m), metrics.ConfusionMatrix.zeros(2))


def test_confusion_matrix_reduce_equals_merge_and_runs_in_jit():
    num_classes = 3
    preds, labels = _segmentation_batches(4, num_classes, seed=2)

    @jax.jit
    def accumulate(preds, labels):
        acc = metrics.ConfusionMatrix.zeros(num_classes)
        for p, t in zip(preds, labels, strict=True):
            acc = acc.merge(metrics.ConfusionMatrix.from_predictions(p, t, num_classes))
        return acc

    merged = accumulate(preds, labels)
    np.testing.assert_array_equal(merged.matrix, _numpy_confusion(preds, labels, num_classes))
    per_device = jax.jit(
        jax.vmap(lambda p, t: metrics.ConfusionMatrix.from_predictions(p, t, num_classes))
    )(preds, labels)
    assert per_device.matrix.shape == (4, num_classes, num_classes)
    _assert_metric_equal(per_device.reduce(), merged)
    _assert_metric_equal(_gathered_reduce(per_device), merged)


def test_confusion_matrix_from_model_output_uses_argmax():
    logits = jnp.array([[0.0, 2.0], [3.0, 1.0], [0.0, 1.0]])
    m = metrics.ConfusionMatrix.from_model_output(logits=logits, labels=jnp.array([1, 1, 255]))
    np.testing.assert_array_equal(m.matrix, [[0, 0], [1, 1]])


def test_collected_merges_two_batches_on_the_host():
    a = metrics.collected(predictions=jnp.array([[1, 2], [3, 4]]), loss=jnp.float32(0.5))
    b = jax.jit(lambda: metrics.collected(predictions=jnp.array([[5, 6]]), loss=0.25))()
    merged = clu_metrics.CollectingMetric.empty().merge(a).merge(b)
    assert type(a) is type(b)
    out = merged.compute()
    np.testing.assert_array_equal(out["predictions"], [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(out["loss"], [0.5, 0.25])
    with pytest.raises(RuntimeError, match="Tracer"):
        jax.jit(lambda x: a.merge(metrics.collected(predictions=x, loss=0.0)))(jnp.ones((1, 2)))


def test_collected_reduce_gathers_devices():
    per_device = jax.tree.map(
        lambda *x: jnp.stack(x),
        metrics.collected(samples=jnp.array([1.0, 2.0])),
        metrics.collected(samples=jnp.array([3.0, 4.0])),
    )
    np.testing.assert_array_equal(per_device.reduce().compute()["samples"], [1, 2, 3, 4])


def test_ignore_mask():
    np.testing.assert_array_equal(
        metrics.ignore_mask(jnp.array([[-1, 0], [2, 255]]), 3), [[False, True], [True, False]]
    )
