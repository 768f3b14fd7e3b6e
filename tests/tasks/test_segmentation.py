"""The segmentation task's pieces: mIoU over the whole eval set against scikit-learn, the
loss that ignores 255, class weights, frequency-weighted IoU, sliding-window evaluation,
colour overlays and the classical baseline's features."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from sklearn.metrics import jaccard_score

from jaxlab.analysis.seg_baseline import patch_features
from jaxlab.analysis.seg_overlay import colorize, overlay_grid, palette
from jaxlab.config import ConfigError
from jaxlab.tasks.segmentation import (
    SegmentationConfusion,
    _check_task,
    frequency_weighted_iou,
    inverse_frequency_weights,
    iou_table,
    segmentation_loss,
    sliding_window_logits,
)

C = 5  # class 4 never appears in targets nor predictions below


def accumulate(batches, mask=None):
    total = SegmentationConfusion.zeros(C)
    for i, (pred, label) in enumerate(batches):
        m = None if mask is None else mask[i]
        total = total.merge(
            SegmentationConfusion.from_predictions(jnp.asarray(pred), jnp.asarray(label), C, m)
        )
    return total


def test_miou_equals_sklearn_over_whole_eval_set_with_255_removed():
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(3):
        label = rng.integers(0, 4, (2, 6, 6))
        label[rng.random(label.shape) < 0.2] = 255
        pred = np.where(rng.random(label.shape) < 0.7, label % 255, rng.integers(0, 4, label.shape))
        pred = np.where(pred == 255, 0, pred)
        batches.append((pred, label))
    # The last batch's second row is eval padding: it must not count.
    mask = [None, None, np.array([1, 0])]
    out = accumulate(batches, mask).compute()
    preds = np.concatenate([b[0].ravel() for b in batches[:2]] + [batches[2][0][0].ravel()])
    labels = np.concatenate([b[1].ravel() for b in batches[:2]] + [batches[2][1][0].ravel()])
    keep = labels != 255
    present = np.union1d(np.unique(labels[keep]), np.unique(preds[keep]))
    expected = jaccard_score(labels[keep], preds[keep], labels=present, average="macro")
    assert out["mean_iou"] == pytest.approx(expected, abs=1e-12)
    assert 4 not in present and np.isnan(out["iou/4"])  # absent class: not in the mean
    assert out["pixel_accuracy"] == pytest.approx(np.mean(preds[keep] == labels[keep]))


def test_per_batch_average_of_miou_differs_from_whole_set():
    # Batch 1: 8 pixels of class 0 right, 8 of class 1 all predicted 0. Batch 2: one pixel
    # of class 1 right (class 0 absent there). Whole set: IoU_0 = 8/16, IoU_1 = 1/9. The
    # batch means, (1/2 + 0)/2 and 1, average to 0.625: the lone easy pixel counts as much
    # as the whole first batch.
    p1, l1 = np.zeros((1, 4, 4), int), np.zeros((1, 4, 4), int)
    l1[0, :2] = 1
    p2, l2 = np.ones((1, 1, 1), int), np.ones((1, 1, 1), int)
    whole = accumulate([(p1, l1), (p2, l2)]).compute()["mean_iou"]
    per_batch = np.mean([accumulate([b]).compute()["mean_iou"] for b in [(p1, l1), (p2, l2)]])
    assert whole == pytest.approx((8 / 16 + 1 / 9) / 2)
    assert per_batch == pytest.approx(((8 / 16 + 0) / 2 + 1.0) / 2)
    assert abs(whole - per_batch) > 0.3


def test_frequency_weighted_iou_and_table():
    m = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    iou = np.array([8 / 11, 3 / 6])
    assert frequency_weighted_iou(m) == pytest.approx((10 * iou[0] + 4 * iou[1]) / 14)
    table = iou_table(m, ["bg", "a", "b"])
    assert "| a | 0.5000 | 4 | 5 |" in table and "| b | - |" in table


def test_loss_ignores_255_out_of_the_denominator_and_weights_classes():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    labels = rng.integers(0, 3, (2, 3, 3))
    labels[0, 0] = 255
    valid = labels < 3
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    loss, _ = segmentation_loss(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(valid))
    assert float(loss) == pytest.approx(ce[valid].mean(), rel=1e-5)
    w = np.array([0.5, 2.0, 1.0], np.float32)
    loss, _ = segmentation_loss(
        jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(valid), jnp.asarray(w)
    )
    wl = w[np.where(valid, labels, 0)][valid]
    assert float(loss) == pytest.approx((wl * ce[valid]).sum() / wl.sum(), rel=1e-5)


def test_inverse_frequency_weights():
    w = inverse_frequency_weights(np.array([90, 10, 0]))
    inv = np.array([100 / 90, 100 / 10])
    np.testing.assert_allclose(w, [*(inv / inv.mean()), 1.0], rtol=1e-6)


def test_task_options_are_checked():
    task = ml_collections.ConfigDict({"name": "segmentation", "eval_mode": "tiles"})
    with pytest.raises(ConfigError, match="eval_mode.*full, sliding"):
        _check_task(ml_collections.ConfigDict({"task": task}), 3)
    task = ml_collections.ConfigDict({"name": "segmentation", "class_weights": (1.0, 2.0)})
    with pytest.raises(ConfigError, match="3 non-negative floats"):
        _check_task(ml_collections.ConfigDict({"task": task}), 3)


def test_sliding_window_covers_every_pixel_and_averages_overlaps():
    images = jnp.asarray(np.random.default_rng(2).normal(size=(2, 7, 9, 2)), jnp.float32)
    # A per-pixel predictor: sliding windows must reproduce it exactly (7 and 9 are not
    # multiples of the stride: the last windows sit flush with the border).
    out = sliding_window_logits(lambda x: 2 * x + 1, images, window=4, stride=3)
    np.testing.assert_allclose(out, 2 * images + 1, rtol=1e-6)
    # A predictor that depends on the window's position in the crop: overlaps are averaged.
    out = sliding_window_logits(lambda x: jnp.ones_like(x) * x.shape[1], images, 4, 3)
    np.testing.assert_allclose(out, 4.0)


def test_palette_overlay_and_patch_features():
    np.testing.assert_array_equal(
        palette(5)[1:], [[128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    )
    assert colorize(np.array([255]), 3)[0].tolist() == [1.0, 1.0, 1.0]
    grid = overlay_grid(
        np.zeros((2, 4, 4, 3)), np.ones((2, 4, 4), int), np.zeros((2, 4, 4), int), 3
    )
    assert grid.shape == (2, 4, 12, 3)
    np.testing.assert_allclose(grid[0, 0, 4], [0.5 * 128 / 255, 0, 0])
    x = np.arange(2 * 3 * 3 * 1, dtype=np.uint8).reshape(2, 3, 3, 1)
    f = patch_features(x)
    assert f.shape == (2, 3, 3, 9)
    np.testing.assert_allclose(f[0, 1, 1], np.arange(9) / 255.0, rtol=1e-6)


def test_random_scale_moves_image_and_mask_together_and_pads_mask_with_255():
    import tensorflow as tf

    from jaxlab.data.augment import parse_op, random_scale
    from jaxlab.data.features import Feature

    features = {
        "image": Feature((8, 8, 1), "float32", "image"),
        "label": Feature((8, 8), "int32", "mask", 255),
    }
    labels = np.arange(64, dtype=np.int32).reshape(8, 8) % 3
    example = {"image": tf.constant(labels[..., None].astype(np.float32)), "label": labels}
    example["label"] = tf.constant(labels)
    shrunk = random_scale(example, tf.constant([1, 2]), features, 0.5, 0.5)
    small, image = shrunk["label"].numpy(), shrunk["image"].numpy()[..., 0]
    assert small.shape == (8, 8) and (small[4:] == 255).all() and (small[:, 4:] == 255).all()
    assert set(np.unique(small[:4, :4])) <= {0, 1, 2}
    grown = random_scale(example, tf.constant([3, 4]), features, 2.0, 2.0)
    big = grown["label"].numpy()
    assert set(np.unique(big)) <= {0, 1, 2} and big.shape == (8, 8)  # nearest: labels only
    assert image.shape == (8, 8) and (image[4:] == 0).all()  # the image padded with 0
    same = random_scale(example, tf.constant([5, 6]), features, 1.0, 1.0)
    np.testing.assert_array_equal(same["label"].numpy(), labels)
    np.testing.assert_allclose(same["image"].numpy()[..., 0], labels)
    # reachable from the config's spec: dataset.augment = "random_scale:0.75:1.5,flip_lr"
    assert parse_op("random_scale:0.75:1.5") == (
        "random_scale",
        {"min_scale": 0.75, "max_scale": 1.5},
    )


def test_seg_digits_source_matches_its_builder():
    from jaxlab.data import seg_digits
    from jaxlab.data.registry import get_source

    assert get_source("seg_digits").num_classes == seg_digits.NUM_CLASSES
