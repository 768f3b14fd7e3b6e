"""Representation learning: the base of the tasks that learn features without (or before)
labels, and the two evaluations their papers use on frozen features.

`RepresentationTask` is an abstract mixin on `Task`: a subclass implements
`embed(task_state, images) -> float32 [N, D]`, the features of its frozen backbone in
inference mode (no dropout, running batch statistics read and never updated; a pure,
jit-able function of its arguments), and gets two evaluators by name (merge them with
`{**super().evaluators(), ...}` when it offers more):

- `knn` (`config.evaluators.knn`): the train split's features are the memory, the eval
  split's the queries; each query takes the majority label of its `k` nearest memory
  entries under `metric` ('cosine': largest cosine similarity; 'l2': smallest Euclidean
  distance), ties going to the smallest label (scikit-learn's `KNeighborsClassifier` with
  uniform weights and the brute-force search gives the same answers). Reports `accuracy`
  (logged as `knn/accuracy`). Options: `k` (default 20), `metric` (default 'cosine'),
  `every_steps`.
- `linear_probe` (`config.evaluators.linear_probe`): a softmax regression trained on the
  frozen, standardized (train mean and std) train-split features, evaluated on the eval
  split. It minimizes `mean CE + weight_decay / 2 * ||W||^2` (the bias is not decayed) with
  full-batch Adam under a cosine-decayed learning rate, `steps` updates inside one
  `lax.fori_loop` (a few milliseconds on digits). Reports `accuracy` (logged as
  `linear_probe/accuracy`). Options: `steps` (default 1000), `learning_rate` (default
  0.05), `weight_decay` (default 1e-4), `every_steps`. Written here rather than calling
  scikit-learn so that it runs on the accelerator for CIFAR-sized feature sets; the tests
  check it against scikit-learn's `LogisticRegression` with `C = 1 / (weight_decay * N)`
  (the same objective).

Both evaluators embed whole splits with `embed_split`, on the host's default device,
with every process reading the whole split (features of a split are small; no
cross-process gather is needed, and every process computes the same numbers).
"""

from __future__ import annotations

import abc
import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxlab import data
from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.models import build_model
from jaxlab.tasks.base import PyTree, Task, TaskSetup
from jaxlab.tasks.evaluators import EvalContext, EvalResult, Evaluator

KNN_METRICS = ("cosine", "l2")
SPLITS = ("train", "eval")
_KNN_CHUNK = 512  # queries per compiled kNN call (bounds the [chunk, N_train] scores)

EmbedFn = Callable[[PyTree, jax.Array], jax.Array]


class RepresentationTask(Task):
    """A task whose product is an encoder: implement `embed`; `evaluators()` offers `knn`
    and `linear_probe` (see the module docstring)."""

    @abc.abstractmethod
    def embed(self, task_state: PyTree, images: jax.Array) -> jax.Array:
        """float32 [N, D]: the features of `images` [N, H, W, C] from the frozen backbone in
        inference mode (no dropout, batch statistics read, not updated); pure and jit-able."""

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        """The parent's evaluators plus `knn` and `linear_probe`."""
        return {
            **super().evaluators(),
            "knn": make_knn_evaluator,
            "linear_probe": make_linear_probe_evaluator,
        }


# --- helpers the representation tasks share -------------------------------------------------


def check_task_options(
    task_name: str, options: ml_collections.ConfigDict, known: tuple[str, ...]
) -> None:
    """ConfigError naming the first key of `config.task` that task `task_name` does not read
    (a misspelt option would otherwise be ignored), with the valid keys."""
    unknown = sorted(set(options) - {"name", *known})
    if unknown:
        raise ConfigError(
            f"task {task_name!r} has no option task.{unknown[0]}; valid: "
            f"{', '.join(f'task.{k}' for k in known)}"
        )


def build_encoder(setup: TaskSetup, feature_dim: int, bn_axis_name: str | None = None) -> Any:
    """The zoo model `config.model` with `num_classes = feature_dim`: its classifier layer
    becomes the linear map to the representation (`bn_axis_name` where it has that field)."""
    config = setup.config
    return build_model(
        config.model.name,
        {k: v for k, v in config.model.to_dict().items() if k != "name"},
        num_classes=feature_dim,
        bn_axis_name=bn_axis_name,
    )


def apply_variables(
    apply_fn: Callable[..., Any],
    variables: Mapping[str, PyTree],
    x: Any,
    *,
    train: bool,
    rng: jax.Array | None = None,
) -> tuple[Any, dict[str, PyTree]]:
    """(output, new non-param collections) of `apply_fn(variables, x, train=train)`: in
    training mode every collection but 'params' is mutable (batch statistics update) and
    dropout draws from `rng`; in inference mode nothing changes."""
    state = {k: v for k, v in variables.items() if k != "params"}
    if not train:
        return apply_fn(variables, x, train=False), state
    rngs = {"dropout": rng} if rng is not None else {}
    if not state:
        return apply_fn(variables, x, train=True, rngs=rngs), {}
    out, new_state = apply_fn(variables, x, train=True, rngs=rngs, mutable=list(state))
    return out, dict(new_state)


# --- features of a split --------------------------------------------------------------------


def split_config(config: ml_collections.ConfigDict, split: str) -> ml_collections.ConfigDict:
    """A copy of `config` whose eval split is `split` ('train': `dataset.train_split`,
    'eval': `dataset.eval_split`), read unaugmented by the eval pipeline."""
    check_choice("split", split, SPLITS)
    out = copy.deepcopy(config)
    with out.unlocked():
        out.dataset.eval_split = config.dataset[f"{split}_split"]
    return out


def embed_split(
    task: RepresentationTask,
    state: PyTree,
    config: ml_collections.ConfigDict,
    split: str,
    *,
    embed_fn: EmbedFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 [N, D], labels int [N]) of every example of `split` ('train' or
    'eval'), in order, unaugmented, padding dropped. `state` is a host copy of the task
    state; `embed_fn` a compiled `task.embed` to reuse (default: `jax.jit(task.embed)`)."""
    cfg = split_config(config, split)
    info = data.get_dataset_info(cfg)
    fn = embed_fn or jax.jit(task.embed)
    features, labels = [], []
    for batch in data.create_eval_iterator(cfg, info):
        real = np.asarray(batch["mask"]) > 0
        if not real.any():
            continue
        z = np.asarray(fn(state, jnp.asarray(batch["image"])), np.float32)
        features.append(z[real])
        labels.append(np.asarray(batch["label"])[real])
    return np.concatenate(features), np.concatenate(labels)


# --- kNN -----------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("k", "metric", "num_classes"))
def _knn_chunk(
    memory: jax.Array,
    memory_labels: jax.Array,
    queries: jax.Array,
    k: int,
    metric: str,
    num_classes: int,
) -> jax.Array:
    if metric == "cosine":
        unit = lambda x: x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)  # noqa: E731
        scores = unit(queries) @ unit(memory).T
    else:  # negative squared distance: larger is nearer
        scores = 2 * queries @ memory.T - jnp.sum(memory**2, -1) - jnp.sum(queries**2, -1)[:, None]
    _, nearest = jax.lax.top_k(scores, k)
    votes = jnp.sum(jax.nn.one_hot(memory_labels[nearest], num_classes), axis=1)
    return jnp.argmax(votes, axis=-1)  # ties: the smallest label


def knn_predict(
    memory: np.ndarray,
    memory_labels: np.ndarray,
    queries: np.ndarray,
    *,
    k: int,
    metric: str = "cosine",
    num_classes: int | None = None,
) -> np.ndarray:
    """int [Q]: the majority label of each query's `k` nearest memory rows under `metric`
    ('cosine' | 'l2'); ties go to the smallest label."""
    check_choice("knn metric", metric, KNN_METRICS)
    k = min(int(k), len(memory))
    num_classes = int(num_classes or int(np.max(memory_labels)) + 1)
    memory_j = jnp.asarray(memory, jnp.float32)
    labels_j = jnp.asarray(memory_labels, jnp.int32)
    out = [
        np.asarray(
            _knn_chunk(
                memory_j,
                labels_j,
                jnp.asarray(queries[i : i + _KNN_CHUNK], jnp.float32),
                k=k,
                metric=metric,
                num_classes=num_classes,
            )
        )
        for i in range(0, len(queries), _KNN_CHUNK)
    ]
    return np.concatenate(out) if out else np.zeros((0,), np.int32)


# --- linear probe ---------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("num_classes", "steps"))
def _fit_softmax_regression(
    x: jax.Array,
    y: jax.Array,
    num_classes: int,
    steps: int,
    learning_rate: jax.Array,
    weight_decay: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
    params = (jnp.zeros((x.shape[1], num_classes), jnp.float32), jnp.zeros((num_classes,)))

    def objective(p: tuple[jax.Array, jax.Array]) -> jax.Array:
        logits = x @ p[0] + p[1]
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        return jnp.mean(ce) + 0.5 * weight_decay * jnp.sum(p[0] ** 2)

    def update(_: int, carry: tuple[Any, Any]) -> tuple[Any, Any]:
        p, opt_state = carry
        grads = jax.grad(objective)(p)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state

    params, _ = jax.lax.fori_loop(0, steps, update, (params, tx.init(params)))
    return params


def fit_softmax_regression(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    steps: int = 1000,
    learning_rate: float = 0.05,
    weight_decay: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """(W [D, C], b [C]) minimizing `mean_i CE(x_i W + b, y_i) + weight_decay/2 ||W||^2` by
    `steps` full-batch Adam updates with a cosine-decayed learning rate."""
    w, b = _fit_softmax_regression(
        jnp.asarray(x, jnp.float32),
        jnp.asarray(y, jnp.int32),
        int(num_classes),
        int(steps),
        jnp.float32(learning_rate),
        jnp.float32(weight_decay),
    )
    return np.asarray(w), np.asarray(b)


def linear_probe_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    num_classes: int,
    **fit_kwargs: Any,
) -> float:
    """Accuracy on (test_x, test_y) of a softmax regression fitted on the standardized
    (train mean and std) train features (`fit_softmax_regression`'s options)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    w, b = fit_softmax_regression((train_x - mean) / std, train_y, num_classes, **fit_kwargs)
    predictions = np.argmax(((test_x - mean) / std) @ w + b, axis=-1)
    return float(np.mean(predictions == test_y))


# --- evaluators -----------------------------------------------------------------------------


def _check_options(name: str, options: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - {*known, "every_steps"})
    if unknown:
        raise ConfigError(
            f"unknown evaluators.{name} option {unknown[0]!r}; valid choices: "
            f"{', '.join((*known, 'every_steps'))}"
        )


def _num_classes(setup: TaskSetup, name: str) -> int:
    num_classes = getattr(setup.info, "num_classes", None)
    if not num_classes:
        raise ConfigError(
            f"evaluator {name!r} needs a dataset with labels; {setup.info.name!r} has none"
        )
    return int(num_classes)


class _FeatureEvaluator(Evaluator):
    """Embeds the train and eval splits with the task's frozen encoder, then scores them."""

    def __init__(self, name: str, task: RepresentationTask, setup: TaskSetup, every: int) -> None:
        self.name, self.every_steps, self.task = name, every, task
        self.num_classes = _num_classes(setup, name)
        self._embed = jax.jit(task.embed)

    def features(self, ctx: EvalContext) -> tuple[np.ndarray, ...]:
        """(train features, train labels, eval features, eval labels) of the current state."""
        state = ctx.host(ctx.state.task)
        train = embed_split(self.task, state, ctx.config, "train", embed_fn=self._embed)
        test = embed_split(self.task, state, ctx.config, "eval", embed_fn=self._embed)
        return (*train, *test)


class KnnEvaluator(_FeatureEvaluator):
    """kNN classification of the eval split with the train split as memory."""

    def __init__(
        self, task: RepresentationTask, setup: TaskSetup, options: ml_collections.ConfigDict
    ) -> None:
        _check_options("knn", options, ("k", "metric"))
        self.k = options.get("k", 20)
        check_positive("evaluators.knn.k", self.k, integer=True)
        self.metric = options.get("metric", "cosine")
        check_choice("evaluators.knn.metric", self.metric, KNN_METRICS)
        super().__init__("knn", task, setup, int(options.get("every_steps", 0)))

    def run(self, ctx: EvalContext) -> EvalResult:
        train_x, train_y, test_x, test_y = self.features(ctx)
        predictions = knn_predict(
            train_x, train_y, test_x, k=self.k, metric=self.metric, num_classes=self.num_classes
        )
        return EvalResult(scalars={"accuracy": float(np.mean(predictions == test_y))})


class LinearProbeEvaluator(_FeatureEvaluator):
    """A softmax regression on frozen train-split features, scored on the eval split."""

    def __init__(
        self, task: RepresentationTask, setup: TaskSetup, options: ml_collections.ConfigDict
    ) -> None:
        _check_options("linear_probe", options, ("steps", "learning_rate", "weight_decay"))
        self.steps = options.get("steps", 1000)
        check_positive("evaluators.linear_probe.steps", self.steps, integer=True)
        self.learning_rate = options.get("learning_rate", 0.05)
        check_positive("evaluators.linear_probe.learning_rate", self.learning_rate)
        self.weight_decay = options.get("weight_decay", 1e-4)
        check_positive("evaluators.linear_probe.weight_decay", self.weight_decay, allow_zero=True)
        super().__init__("linear_probe", task, setup, int(options.get("every_steps", 0)))

    def run(self, ctx: EvalContext) -> EvalResult:
        train_x, train_y, test_x, test_y = self.features(ctx)
        accuracy = linear_probe_accuracy(
            train_x,
            train_y,
            test_x,
            test_y,
            self.num_classes,
            steps=self.steps,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
        )
        return EvalResult(scalars={"accuracy": accuracy})


def make_knn_evaluator(
    task: RepresentationTask, setup: TaskSetup, options: ml_collections.ConfigDict
) -> KnnEvaluator:
    """The `knn` evaluator of `task` (options: k, metric, every_steps)."""
    return KnnEvaluator(task, setup, options)


def make_linear_probe_evaluator(
    task: RepresentationTask, setup: TaskSetup, options: ml_collections.ConfigDict
) -> LinearProbeEvaluator:
    """The `linear_probe` evaluator of `task` (options: steps, learning_rate,
    weight_decay, every_steps)."""
    return LinearProbeEvaluator(task, setup, options)
