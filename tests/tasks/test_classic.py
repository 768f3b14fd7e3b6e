"""The classic classifiers: kNN against scikit-learn (predictions, cross-validated k, the
task's memory and eval), the multiclass SVM loss against numpy implementations of the
course's and torch's definitions, and the tasks' refusals of bad options."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxlab.config import ConfigError, default_config, finish_config
from jaxlab.data import load_digits_split
from jaxlab.data.features import DatasetInfo, Feature
from jaxlab.tasks import TaskSetup
from jaxlab.tasks.base import Optimizer, StepContext
from jaxlab.tasks.classic import (
    KnnTask,
    cross_validate_k,
    knn_predict,
    make_knn_task,
    make_linear_svm_task,
    multiclass_hinge_loss,
)


@pytest.fixture(scope="module")
def digits():
    """300 train and 120 test digits, pixels / 16."""
    x_train, y_train, x_test, y_test = load_digits_split()
    flat = lambda x: (x.reshape(len(x), -1) / 16.0).astype(np.float32)  # noqa: E731
    return flat(x_train[:300]), y_train[:300], flat(x_test[:120]), y_test[:120]


@pytest.mark.parametrize("metric, p", [("l1", 1), ("l2", 2)])
def test_knn_predictions_equal_sklearn(digits, metric, p):
    from sklearn.neighbors import KNeighborsClassifier

    xt, yt, xs, ys = digits
    preds = np.asarray(
        knn_predict(jnp.asarray(xs), jnp.asarray(xt), jnp.asarray(yt), (1, 5), 10, metric)
    )
    for row, k in zip(preds, (1, 5), strict=False):
        ref = KNeighborsClassifier(k, p=p, algorithm="brute").fit(xt, yt).predict(xs)
        np.testing.assert_array_equal(row, ref)


def test_cross_validated_k_equals_sklearn_cross_val_score(digits):
    from sklearn.model_selection import PredefinedSplit, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    xt, yt, _, _ = digits
    ks, folds = (1, 3, 7), 3
    valid = jnp.ones(len(xt), bool)
    acc, k = cross_validate_k(jnp.asarray(xt), jnp.asarray(yt), valid, ks, 10, "l2", folds)
    split = PredefinedSplit(np.arange(len(xt)) % folds)
    ref = [
        cross_val_score(KNeighborsClassifier(kk), xt, yt, cv=split).mean() for kk in ks
    ]  # equal fold sizes: the mean of fold accuracies is the pooled accuracy
    np.testing.assert_allclose(np.asarray(acc), ref, atol=1e-6)
    assert int(k) == ks[int(np.argmax(ref))]


def _info() -> DatasetInfo:
    features = {
        "image": Feature((8, 8, 1), "float32", "image"),
        "label": Feature((), "int32", "label"),
    }
    return DatasetInfo("digits", features, dict(features), 10, 300, 120)


def _setup(task: dict, steps_per_epoch: int = 3, batch_size: int = 100) -> TaskSetup:
    c = default_config()
    c.model.name = "linear"
    c.task = ml_collections.ConfigDict({"name": "knn", **task})
    c.batch_size = batch_size
    c = finish_config(c)
    opt = Optimizer(tx=optax.sgd(0.1), schedule=optax.constant_schedule(0.1))
    return TaskSetup(c, _info(), 10, steps_per_epoch, None, {"default": opt})


def test_knn_task_memorizes_one_epoch_and_scores_like_sklearn(digits):
    from sklearn.neighbors import KNeighborsClassifier

    xt, yt, xs, ys = digits
    task = make_knn_task(_setup({"metric": "l2", "ks": (1, 3, 5), "folds": 3}))
    assert isinstance(task, KnnTask) and task.memory_size == 300
    perm = np.random.default_rng(0).permutation(300)  # one shuffled epoch, 3 batches
    images = xt.reshape(-1, 8, 8, 1)
    ctx = lambda s: StepContext(step=jnp.asarray(s), rngs={})  # noqa: E731
    state = task.init_state({"image": jnp.asarray(images[:2])}, ctx(0))
    step = jax.jit(task.train_step)
    for s in range(3):
        idx = perm[s * 100 : (s + 1) * 100]
        state, m = step(state, {"image": images[idx], "label": yt[idx]}, ctx(s))
    assert float(m["filled"].compute()) == 1.0
    batch = {
        "image": np.concatenate([xs.reshape(-1, 8, 8, 1), np.zeros((8, 8, 8, 1), np.float32)]),
        "label": np.concatenate([ys, np.zeros(8, ys.dtype)]),
        "mask": np.concatenate([np.ones(120), np.zeros(8)]).astype(np.float32),  # 8 padded
    }
    k = task.init_eval_carry(state, batch)
    _, metrics = jax.jit(task.eval_step)(state, batch, k, ctx(3))
    ref = KNeighborsClassifier(int(k), p=2).fit(xt, yt).score(xs, ys)
    assert float(metrics["accuracy"].compute()) == pytest.approx(ref)
    assert float(metrics["k"].compute()) == int(k)


def _course_hinge(scores: np.ndarray, labels: np.ndarray, margin: float) -> np.ndarray:
    out = np.zeros(len(labels))
    for i, (s, y) in enumerate(zip(scores, labels, strict=False)):
        for j in range(len(s)):
            if j != y:
                out[i] += max(0.0, s[j] - s[y] + margin)
    return out


def _torch_multi_margin(scores: np.ndarray, labels: np.ndarray, margin: float) -> np.ndarray:
    """torch.nn.functional.multi_margin_loss(p=1, reduction='none'): sum over i != y of
    max(0, margin - x[y] + x[i]) / x.size(0)."""
    c = scores.shape[1]
    sy = scores[np.arange(len(labels)), labels][:, None]
    terms = np.maximum(0.0, margin - sy + scores)
    terms[np.arange(len(labels)), labels] = 0.0
    return terms.sum(1) / c


@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_svm_loss_is_the_course_sum_and_c_times_torch(margin):
    rng = np.random.default_rng(1)
    scores, labels = rng.normal(size=(16, 7)), rng.integers(0, 7, 16)
    got = np.asarray(multiclass_hinge_loss(jnp.asarray(scores), jnp.asarray(labels), margin))
    np.testing.assert_allclose(got, _course_hinge(scores, labels, margin), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        got, 7 * _torch_multi_margin(scores, labels, margin), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "task, message",
    [
        ({"metric": "cosine"}, "task.metric"),
        ({"k": -1}, "task.k"),
        ({"folds": 1}, "task.folds"),
        ({"ks": (0, 3)}, "task.ks"),
    ],
)
def test_knn_refuses_bad_options(task, message):
    with pytest.raises(ConfigError, match=message):
        make_knn_task(_setup(task))


def test_svm_refuses_a_bad_margin():
    with pytest.raises(ConfigError, match="task.margin"):
        make_linear_svm_task(_setup({"name": "linear_svm", "margin": 0.0}))
