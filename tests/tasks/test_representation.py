"""The representation-learning base: kNN and the linear probe against scikit-learn, the
features of whole splits, and the evaluators reading the backbone in inference mode."""

from __future__ import annotations

import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from jaxlab import data
from jaxlab.config import ConfigError, default_config
from jaxlab.tasks.base import StepContext, TaskSetup
from jaxlab.tasks.evaluators import EvalContext
from jaxlab.tasks.representation import (
    RepresentationTask,
    embed_split,
    fit_softmax_regression,
    knn_predict,
    make_knn_evaluator,
    make_linear_probe_evaluator,
    split_config,
)


@pytest.mark.parametrize("metric, sk_metric", [("cosine", "cosine"), ("l2", "euclidean")])
def test_knn_matches_scikit_learn(metric, sk_metric):
    rng = np.random.default_rng(0)
    memory, labels = rng.normal(size=(120, 6)), rng.integers(0, 4, 120)
    queries = rng.normal(size=(50, 6))
    for k in (1, 5):
        ours = knn_predict(memory, labels, queries, k=k, metric=metric, num_classes=4)
        sk = KNeighborsClassifier(k, metric=sk_metric, algorithm="brute").fit(memory, labels)
        np.testing.assert_array_equal(ours, sk.predict(queries))


def test_softmax_regression_matches_scikit_learn():
    rng = np.random.default_rng(1)
    n, weight_decay = 90, 0.05
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + np.eye(3, 4)[y] * 1.5
    w, b = fit_softmax_regression(x, y, 3, steps=1500, learning_rate=0.1, weight_decay=weight_decay)
    sk = LogisticRegression(C=1.0 / (weight_decay * n), tol=1e-10, max_iter=10_000).fit(x, y)
    ours = jax.nn.softmax(x @ w + b)
    np.testing.assert_allclose(ours, sk.predict_proba(x), atol=2e-3)


class BnDropoutNet(nn.Module):
    """An encoder whose training mode differs: dropout and batch statistics."""

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = nn.Dense(8)(x.reshape(x.shape[0], -1))
        x = nn.BatchNorm(use_running_average=not train, momentum=0.5)(x)
        return nn.Dropout(0.5, deterministic=not train)(nn.relu(x))


class FrozenEncoderTask(RepresentationTask):
    """The smallest concrete representation task: an encoder that is never trained."""

    name = "frozen_encoder"

    def __init__(self) -> None:
        self.model = BnDropoutNet()

    def init_state(self, batch, ctx: StepContext):
        return self.model.init(ctx.rng("params"), batch["image"][:1], train=False)

    def train_step(self, state, batch, ctx: StepContext):
        return state, {}

    def eval_step(self, state, batch, carry, ctx: StepContext):
        return carry, {}

    def embed(self, task_state, images: jax.Array) -> jax.Array:
        return self.model.apply(task_state, images, train=False)


@pytest.fixture(scope="module")
def frozen(data_dir):
    config = default_config()
    config.dataset.data_dir = data_dir
    config.eval_batch_size = 500
    info = data.get_dataset_info(config)
    task = FrozenEncoderTask()
    ctx = StepContext(step=jnp.zeros((), jnp.int32), rngs={"params": jax.random.key(0)})
    state = task.init_state({"image": jnp.zeros((1, 8, 8, 1))}, ctx)
    # Running statistics away from their init (mean 0, var 1): reading them matters.
    stats = state["batch_stats"]["BatchNorm_0"]
    state["batch_stats"]["BatchNorm_0"] = {"mean": stats["mean"] + 0.3, "var": stats["var"] * 2}
    setup = TaskSetup(config, info, 10, 10, None, {})
    return task, state, config, info, setup


def test_embed_split_reads_whole_splits_in_order_without_padding(frozen):
    task, state, config, _, _ = frozen
    _, y_train, _, y_test = data.load_digits_split()
    x, y = embed_split(task, state, config, "train")
    assert x.shape == (1437, 8) and x.dtype == np.float32
    np.testing.assert_array_equal(y, y_train)
    np.testing.assert_array_equal(embed_split(task, state, config, "eval")[1], y_test)
    with pytest.raises(ConfigError, match="valid choices: train, eval"):
        embed_split(task, state, config, "validation")


def test_evaluators_use_the_backbone_in_inference_mode(frozen):
    task, state, config, info, setup = frozen
    before = jax.tree.map(np.array, state)
    ctx = EvalContext(
        step=1,
        state=types.SimpleNamespace(task=state),
        task=task,
        parallel=types.SimpleNamespace(to_host=lambda tree: tree),
        config=config,
        info=info,
        rng=jax.random.key(1),
    )
    knn = make_knn_evaluator(task, setup, ml_collections.ConfigDict({"k": 3, "metric": "l2"}))
    probe = make_linear_probe_evaluator(task, setup, ml_collections.ConfigDict({"steps": 50}))
    results = [e.run(ctx).scalars["accuracy"] for e in (knn, probe)]
    assert all(0.5 < r <= 1 for r in results)
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.array, state))
    # The features are deterministic and are the inference-mode outputs (running
    # statistics, no dropout), which differ from the training-mode ones.
    first = embed_split(task, state, config, "train")[0][:5]
    np.testing.assert_array_equal(first, embed_split(task, state, config, "train")[0][:5])
    train_config = split_config(config, "train")
    batches = data.create_eval_iterator(train_config, data.get_dataset_info(train_config))
    images = jnp.asarray(next(batches)["image"][:5])
    np.testing.assert_allclose(first, task.model.apply(state, images, train=False), atol=1e-6)
    trained = task.model.apply(
        state, images, train=True, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"]
    )[0]
    assert not np.allclose(first, trained, atol=1e-3)


def test_evaluator_options_are_checked(frozen):
    task, _, _, _, setup = frozen
    with pytest.raises(ConfigError, match="valid choices: cosine, l2"):
        make_knn_evaluator(task, setup, ml_collections.ConfigDict({"metric": "dot"}))
    with pytest.raises(ConfigError, match="evaluators.knn.k must be > 0"):
        make_knn_evaluator(task, setup, ml_collections.ConfigDict({"k": 0}))
    with pytest.raises(ConfigError, match="unknown evaluators.linear_probe option 'lr'"):
        make_linear_probe_evaluator(task, setup, ml_collections.ConfigDict({"lr": 0.1}))
    assert {"knn", "linear_probe"} <= set(task.evaluators())
