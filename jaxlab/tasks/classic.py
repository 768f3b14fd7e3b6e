"""The course's first classifiers as tasks trained by the loop on any image dataset:
k-nearest neighbours (`knn`), a linear classifier with the multiclass SVM loss
(`linear_svm`) and with the softmax loss (`softmax_regression`).

Why tasks and not models under `classification`: kNN has no parameters nor gradient (its
"training" stores the train split, its eval chooses k by cross-validation), and the SVM's
hinge loss is a different objective, not a different network; both are what a task owns.
The two linear tasks take any model of the registry (`config.model.name`, 'linear' by
default in their configs), so an SVM on an MLP's scores is one override away.

kNN (`config.task`: `metric` 'l1' | 'l2', `k` (0: chosen by cross-validation among `ks`),
`ks` (the candidates), `folds` (>= 2)). The state is a memory of `steps_per_epoch *
batch_size` flattened images and their labels; train step `s` writes its global batch into
slots `(s mod steps_per_epoch) * B + [0, B)`. The pipeline feeds each epoch as one
permutation of the split without its remainder, so after one epoch the memory holds the
whole train split when the batch size divides it (digits: 1437 = 3 * 479), else the
epoch's examples. At eval, `init_eval_carry` runs `folds`-fold cross-validation on the
memory (slot i is in fold `i mod folds`; the slots are in shuffled order) and keeps the
smallest k of best accuracy; each eval batch is classified by a majority vote of its k
nearest memory entries, ties going to the smallest label (scikit-learn's `mode`).

Linear SVM: `multiclass_hinge_loss(s, y) = sum_{j != y} max(0, s_j - s_y + margin)` (the
course's definition: C times torch's `multi_margin_loss`, which divides by C), averaged
over the batch; `task.margin` > 0 (default 1). The L2 penalty is the optimizer's weight
decay. Softmax regression: the cross entropy. Both report `loss` and `accuracy`.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import ml_collections

from jaxlab import losses
from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, Task, TaskSetup
from jaxlab.tasks.supervised import ApplyFn, SupervisedTask, label_weights

KNN_METRICS = ("l1", "l2")
DEFAULT_KS = (1, 3, 5, 7, 9, 11, 15)
_QUERY_CHUNK = 64  # queries per distance block (L1 materializes [chunk, M, D])


# --- kNN ------------------------------------------------------------------------------


def pairwise_distances(queries: jax.Array, memory: jax.Array, metric: str) -> jax.Array:
    """[Q, M] L1 or squared-L2 distances between rows (squared L2 ranks like L2)."""
    if metric == "l1":
        return jnp.sum(jnp.abs(queries[:, None, :] - memory[None, :, :]), axis=-1)
    sq = jnp.sum(queries**2, 1)[:, None] + jnp.sum(memory**2, 1)[None, :]
    return jnp.maximum(sq - 2.0 * queries @ memory.T, 0.0)


def knn_predict(
    queries: jax.Array,
    memory: jax.Array,
    memory_labels: jax.Array,
    ks: tuple[int, ...],
    num_classes: int,
    metric: str = "l2",
    exclude: jax.Array | None = None,
) -> jax.Array:
    """int32 [len(ks), Q]: the majority label of each query's k nearest memory rows for
    every k of `ks` (ties: the smallest label). `exclude` ([Q, M] bool, optional) removes
    memory rows from a query's candidates (cross-validation folds, unfilled slots)."""
    max_k = max(ks)
    dist = pairwise_distances(queries, memory, metric)
    if exclude is not None:
        dist = jnp.where(exclude, jnp.inf, dist)
    _, idx = jax.lax.top_k(-dist, max_k)  # nearest first; equal distances: lower index first
    onehot = jax.nn.one_hot(memory_labels[idx], num_classes)  # [Q, max_k, C]
    ranks = jnp.arange(max_k)
    votes = jnp.stack([jnp.sum(onehot * (ranks < k)[None, :, None], 1) for k in ks])
    return jnp.argmax(votes, axis=-1).astype(jnp.int32)


def _chunked(fn, queries: jax.Array, *extra: jax.Array) -> jax.Array:
    """fn(queries_chunk, *extra_chunks) -> [K, chunk] over query chunks (lax.map), [K, Q]."""
    q = queries.shape[0]
    pad = -q % _QUERY_CHUNK
    args = [jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)) for a in (queries, *extra)]
    args = [a.reshape(-1, _QUERY_CHUNK, *a.shape[1:]) for a in args]
    out = jax.lax.map(lambda xs: fn(*xs), tuple(args))  # [n, K, chunk]
    return jnp.moveaxis(out, 0, 1).reshape(out.shape[1], -1)[:, :q]


def cross_validate_k(
    memory: jax.Array,
    labels: jax.Array,
    valid: jax.Array,
    ks: tuple[int, ...],
    num_classes: int,
    metric: str,
    folds: int,
) -> tuple[jax.Array, jax.Array]:
    """(accuracy per k of `ks` [len(ks)], the smallest k of best accuracy) by `folds`-fold
    cross-validation on the valid memory rows: row i is in fold `i mod folds` and is
    classified by the rows of the other folds."""
    fold = jnp.arange(memory.shape[0]) % folds

    def predict(q, q_fold):
        exclude = (q_fold[:, None] == fold[None, :]) | ~valid[None, :]
        return knn_predict(q, memory, labels, ks, num_classes, metric, exclude)

    preds = _chunked(predict, memory, fold)  # [K, M]
    correct = (preds == labels[None, :]) & valid[None, :]
    acc = jnp.sum(correct, 1) / jnp.maximum(jnp.sum(valid), 1)
    return acc, jnp.asarray(ks, jnp.int32)[jnp.argmax(acc)]


@flax.struct.dataclass
class KnnState:
    """The kNN memory: flattened train images, their labels, which slots hold data."""

    memory: jax.Array  # float32 [M, D]
    labels: jax.Array  # int32 [M]
    filled: jax.Array  # bool [M]


class KnnTask(Task):
    """k-nearest neighbours (see the module docstring). Train metric `filled` (the fraction
    of the memory written); eval metrics `accuracy` and `k` (the k used)."""

    name = "knn"
    rng_streams = ()
    optimizer_names = ()
    train_metric_names = ("filled",)
    eval_metric_names = ("accuracy", "k")

    def __init__(
        self,
        num_classes: int,
        memory_size: int,
        metric: str = "l2",
        k: int = 0,
        ks: tuple[int, ...] = DEFAULT_KS,
        folds: int = 5,
    ) -> None:
        self.num_classes, self.memory_size = num_classes, memory_size
        self.metric, self.k, self.ks, self.folds = metric, k, tuple(ks), folds

    def init_state(self, batch: Batch, ctx: StepContext) -> KnnState:
        """An empty memory sized for one epoch."""
        dim = int(jnp.size(batch["image"][0]))
        return KnnState(
            memory=jnp.zeros((self.memory_size, dim), jnp.float32),
            labels=jnp.zeros((self.memory_size,), jnp.int32),
            filled=jnp.zeros((self.memory_size,), bool),
        )

    def train_step(
        self, state: KnnState, batch: Batch, ctx: StepContext
    ) -> tuple[KnnState, Metrics]:
        """Writes the global batch into its epoch slots."""
        x = ctx.all_gather(batch["image"]).astype(jnp.float32)
        y = ctx.all_gather(batch["label"]).astype(jnp.int32)
        b = x.shape[0]
        start = (ctx.step % (self.memory_size // b)) * b
        state = KnnState(
            memory=jax.lax.dynamic_update_slice(state.memory, x.reshape(b, -1), (start, 0)),
            labels=jax.lax.dynamic_update_slice(state.labels, y, (start,)),
            filled=jax.lax.dynamic_update_slice(state.filled, jnp.ones((b,), bool), (start,)),
        )
        return state, {"filled": average(jnp.mean(state.filled.astype(jnp.float32)))}

    def init_eval_carry(self, state: KnnState, batch: Batch) -> jax.Array:
        """The k of this evaluation: `task.k`, or the cross-validated one."""
        if self.k:
            return jnp.asarray(self.k, jnp.int32)
        _, k = cross_validate_k(
            state.memory,
            state.labels,
            state.filled,
            self.ks,
            self.num_classes,
            self.metric,
            self.folds,
        )
        return k

    def eval_step(
        self, state: KnnState, batch: Batch, carry: jax.Array, ctx: StepContext
    ) -> tuple[jax.Array, Metrics]:
        """Accuracy of the batch under the carried k."""
        x = batch["image"].astype(jnp.float32).reshape(batch["image"].shape[0], -1)
        exclude = jnp.broadcast_to(~state.filled[None, :], (x.shape[0], self.memory_size))
        ks = self.ks if not self.k else (self.k,)
        preds = knn_predict(
            x, state.memory, state.labels, ks, self.num_classes, self.metric, exclude
        )
        pred = preds[jnp.argmax(jnp.asarray(ks) == carry)]
        weights = label_weights(batch, batch["label"], self.num_classes)
        return carry, {
            "accuracy": average((pred == batch["label"]).astype(jnp.float32), weights),
            "k": average(jnp.broadcast_to(carry, pred.shape).astype(jnp.float32), weights),
        }


def make_knn_task(setup: TaskSetup) -> KnnTask:
    """Builds the kNN task from `config.task` (ConfigError for a bad metric, k or folds)."""
    task, info = setup.config.task, setup.info
    if not getattr(info, "num_classes", None):
        raise ConfigError(f"task 'knn' needs a dataset with classes; {info.name!r} has none")
    metric = task.get("metric", "l2")
    check_choice("task.metric", metric, KNN_METRICS)
    k = task.get("k", 0)
    check_positive("task.k", k, allow_zero=True, integer=True)
    ks = tuple(task.get("ks", DEFAULT_KS))
    for value in ks:
        check_positive("task.ks", value, integer=True)
    folds = task.get("folds", 5)
    check_positive("task.folds", folds, integer=True)
    if folds < 2:
        raise ConfigError(f"task.folds must be >= 2, got {folds}")
    batch = setup.config.batch_size
    return KnnTask(
        num_classes=int(info.num_classes),
        memory_size=setup.steps_per_epoch * batch,
        metric=metric,
        k=int(k),
        ks=ks,
        folds=int(folds),
    )


# --- linear classifiers -------------------------------------------------------------------


def multiclass_hinge_loss(scores: jax.Array, labels: jax.Array, margin: float = 1.0) -> jax.Array:
    """[...]: `sum_{j != y} max(0, s_j - s_y + margin)` per example (scores [..., C])."""
    correct = jnp.take_along_axis(scores, labels[..., None], axis=-1)
    hinge = jnp.maximum(0.0, scores - correct + margin)
    not_label = jax.nn.one_hot(labels, scores.shape[-1]) == 0
    return jnp.sum(jnp.where(not_label, hinge, 0.0), axis=-1)


def _linear_fns(objective: str, margin: float, num_classes: int):
    def per_example(scores: jax.Array, labels: jax.Array) -> jax.Array:
        if objective == "hinge":
            return multiclass_hinge_loss(scores, labels, margin)
        return losses.softmax_cross_entropy(scores, labels)

    def metrics_of(scores: jax.Array, labels: jax.Array, weights: jax.Array) -> Metrics:
        return {
            "loss": average(per_example(scores, labels), weights),
            "accuracy": average(losses.accuracy(scores, labels), weights),
        }

    def loss_fn(
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        labels = batch["label"]
        variables = {"params": params, **model_state}
        mutable = list(model_state) if train and model_state else False
        rngs = {"dropout": ctx.rng("dropout")}
        out = apply_fn(variables, batch["image"], train=train, rngs=rngs, mutable=mutable)
        scores, new_state = out if mutable else (out, model_state)
        weights = losses.valid_label_mask(labels, num_classes)
        safe = jnp.clip(labels, 0, num_classes - 1)
        loss = losses.masked_mean(per_example(scores, safe), weights)
        return loss, (dict(new_state), metrics_of(scores, labels, weights))

    def eval_fn(
        apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        scores = apply_fn({"params": params, **model_state}, batch["image"], train=False)
        weights = label_weights(batch, batch["label"], num_classes)
        return metrics_of(scores, jnp.clip(batch["label"], 0, num_classes - 1), weights)

    return loss_fn, eval_fn


def make_linear_classifier_task(setup: TaskSetup, objective: str) -> SupervisedTask:
    """A classifier of `config.model` trained on the multiclass SVM loss (`objective`
    'hinge') or the softmax loss ('softmax'); ConfigError for a bad margin."""
    config, info = setup.config, setup.info
    name = "linear_svm" if objective == "hinge" else "softmax_regression"
    if not getattr(info, "num_classes", None):
        raise ConfigError(f"task {name!r} needs a dataset with classes; {info.name!r} has none")
    margin = config.task.get("margin", 1.0)
    check_positive("task.margin", margin)
    num_classes = int(info.num_classes)
    model = build_model(
        config.model.name,
        {k: v for k, v in config.model.to_dict().items() if k != "name"},
        num_classes=num_classes,
        bn_axis_name=setup.axis_name,
    )
    loss_fn, eval_fn = _linear_fns(objective, float(margin), num_classes)
    return SupervisedTask(
        name=name,
        model=model,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        optimizer=setup.optimizer(),
        train_metric_names=("loss", "accuracy"),
        eval_metric_names=("loss", "accuracy"),
    )


def make_linear_svm_task(setup: TaskSetup) -> SupervisedTask:
    """The `linear_svm` task (multiclass hinge loss)."""
    return make_linear_classifier_task(setup, "hinge")


def make_softmax_regression_task(setup: TaskSetup) -> SupervisedTask:
    """The `softmax_regression` task (softmax cross entropy)."""
    return make_linear_classifier_task(setup, "softmax")


def knn_config_defaults(task: ml_collections.ConfigDict) -> None:
    """Fills the kNN keys of `config.task` (so each can be overridden from the CLI)."""
    task.metric = "l2"
    task.k = 0
    task.ks = DEFAULT_KS
    task.folds = 5
