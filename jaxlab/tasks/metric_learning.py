"""The task `metric_learning`: an embedding trained with the triplet loss.

The encoder is any registered model (`config.model`) whose output width (`num_classes`) is
`task.embedding_dim`; with `task.projector_dims` non-empty, an MLP head maps the embedding
to the space where the loss is computed (embedding -> MLP -> loss, as SimCLR's projection
head), and the embedding before the head is the one evaluated. The loss is the triplet loss
on L2-normalized vectors (`jaxlab.losses_metric`, where the conventions are), with
`task.margin` in (0, 2).

Sampling (`task.sampling`):
- 'random': one triplet per row of the batch: the row is the anchor, the positive a random
  other row of its class, the negative a random row of another class
  (`sample_random_triplets`). Anchors, positives and negatives are concatenated along the
  batch [3B, ...] and embedded in one forward pass (so batch norm sees them together).
- 'batch_all', 'batch_hard', 'semi_hard': the batch is embedded once and the triplets are
  mined among its rows (under pmap among the rows of all devices, gathered with
  `StepContext.all_gather`). Use P x K batches (`dataset.pk_classes`, see
  `jaxlab.data.pk_sampler`) so every anchor has positives.

A class with a single example in the batch has no positive. With `task.augment_positives`
(default True) such an anchor gets a strongly augmented copy of itself as its positive
(`strong_augment`: a random translation by up to `task.augment_shift` pixels, brightness and
contrast jitter of strength `task.augment_jitter`, and Gaussian noise); in the mining modes
the augmented copies of the whole batch are appended as extra rows, only those of
single-example classes taking part. Without it such anchors are left out.

Train metrics: `loss`, and the collapse monitors `mean_distance` (the mean pairwise
distance of the batch's normalized loss vectors: 0 when the embedding has collapsed) and
`active_fraction` (the fraction of triplets, anchors or pairs with a positive loss; a
collapsed embedding has every triplet active at loss = margin). Eval metrics on each eval
batch (masked, weighted by its real examples): the batch-hard `loss` (whatever the train
sampling: it needs [B, B] memory where batch-all and semi-hard need [B, B, B], too much for
eval batches of hundreds) and `mean_distance`.

Evaluators (`config.evaluators`): `knn` and `linear_probe` (from `RepresentationTask`) on
`embed` (the normalized embedding, or the raw pre-head embedding with a projector head),
and `recall` (Recall@k on the eval split, `recall_at_k`). On `nca_digits` the `knn`
evaluator with k 3 and metric 'l2' is scikit-learn's NCA-example score.

`config.task` keys: margin (0.2), sampling ('batch_hard'), embedding_dim (32),
projector_dims (() : no head), augment_positives (True), augment_shift (1),
augment_jitter (0.2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import metrics as clu_metrics

from jaxlab import losses_metric as lm
from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.evaluators import EvalContext, EvalResult, Evaluator
from jaxlab.tasks.representation import RepresentationTask, embed_split
from jaxlab.tasks.supervised import ApplyFn, SupervisedState, SupervisedTask

SAMPLING = ("random", *lm.MINING)
OPTIONS = {
    "name": None,
    "margin": lm.DEFAULT_MARGIN,
    "sampling": "batch_hard",
    "embedding_dim": 32,
    "projector_dims": (),
    "augment_positives": True,
    "augment_shift": 1,
    "augment_jitter": 0.2,
}
RECALL_METRICS = ("l2", "cosine")
_RECALL_CHUNK = 512


class EmbeddingNet(nn.Module):
    """An encoder and an optional projector MLP: returns (embedding, loss vector), the loss
    vector being the head's output (or the embedding itself when `head_dims` is empty)."""

    encoder: nn.Module
    head_dims: Sequence[int] = ()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, jax.Array]:
        embedding = self.encoder(x, train=train)
        out = embedding
        for i, width in enumerate(self.head_dims):
            if i:
                out = nn.relu(out)
            out = nn.Dense(width, name=f"projector_{i}")(out)
        return embedding, out


def strong_augment(
    key: jax.Array, images: jax.Array, max_shift: int = 1, jitter: float = 0.2
) -> jax.Array:
    """A random view of each image [B, H, W, C]: a translation by up to `max_shift` pixels
    (zero padding, then a random crop back to H x W), brightness (+U(-j, j)) and contrast
    (x U(1 - j, 1 + j) about the image mean) jitter and N(0, (j / 4)^2) noise, `j = jitter`.
    Written in JAX (not tf.data) because it makes positives inside the train step."""
    b, h, w, _ = images.shape
    k_shift, k_bright, k_contrast, k_noise = jax.random.split(key, 4)
    pad = max(int(max_shift), 0)
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(k_shift, (b, 2), 0, 2 * pad + 1)
    shifted = jax.vmap(
        lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1]))
    )(padded, offsets)
    bright = jax.random.uniform(k_bright, (b, 1, 1, 1), minval=-jitter, maxval=jitter)
    contrast = jax.random.uniform(k_contrast, (b, 1, 1, 1), minval=1 - jitter, maxval=1 + jitter)
    mean = jnp.mean(shifted, axis=(1, 2, 3), keepdims=True)
    out = (shifted - mean) * contrast + mean + bright
    return out + (jitter / 4) * jax.random.normal(k_noise, out.shape, out.dtype)


def _check_options(options: ml_collections.ConfigDict) -> dict[str, Any]:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown task option task.{unknown[0]} for task 'metric_learning'; valid: "
            f"{', '.join(k for k in OPTIONS if k != 'name')}"
        )
    opts = {k: options.get(k, v) for k, v in OPTIONS.items() if k != "name"}
    opts["margin"] = lm.check_margin(opts["margin"])
    check_choice("task.sampling", opts["sampling"], SAMPLING)
    check_positive("task.embedding_dim", opts["embedding_dim"], integer=True)
    dims = tuple(opts["projector_dims"] or ())
    for d in dims:
        check_positive("task.projector_dims entry", d, integer=True)
    opts["projector_dims"] = dims
    if not isinstance(opts["augment_positives"], bool):
        raise ConfigError(
            f"task.augment_positives must be True or False, got {opts['augment_positives']!r}"
        )
    check_positive("task.augment_shift", opts["augment_shift"], allow_zero=True, integer=True)
    check_positive("task.augment_jitter", opts["augment_jitter"], allow_zero=True)
    return opts


def _singletons(labels: jax.Array) -> jax.Array:
    """bool [B]: rows whose class has no other row in the batch."""
    return jnp.sum(labels[:, None] == labels[None, :], axis=1) == 1


class MetricLearningTask(RepresentationTask, SupervisedTask):
    """The task `metric_learning` (see the module docstring)."""

    def __init__(self, setup: TaskSetup) -> None:
        config = setup.config
        if not getattr(setup.info, "num_classes", None):
            raise ConfigError(
                f"task 'metric_learning' needs a dataset with labels; {setup.info.name!r} has none"
            )
        if "image" not in setup.info.features:
            raise ConfigError(
                f"task 'metric_learning' needs an 'image' feature; {setup.info.name!r} has "
                f"{', '.join(setup.info.features)}"
            )
        self.opts = _check_options(config.task)
        encoder = build_model(
            config.model.name,
            {k: v for k, v in config.model.to_dict().items() if k != "name"},
            num_classes=self.opts["embedding_dim"],
            bn_axis_name=setup.axis_name,
        )
        self.margin = self.opts["margin"]
        self.sampling = self.opts["sampling"]
        self.has_head = bool(self.opts["projector_dims"])
        super().__init__(
            name="metric_learning",
            model=EmbeddingNet(encoder=encoder, head_dims=self.opts["projector_dims"]),
            loss_fn=self._loss_fn,
            eval_fn=self._eval_fn,
            optimizer=setup.optimizer(),
            train_metric_names=("loss", "mean_distance", "active_fraction"),
            eval_metric_names=("loss", "mean_distance"),
            rng_streams=("params", "dropout", "triplets", "augment"),
            ema_decay=ema_decay(config),
        )

    # --- forward -----------------------------------------------------------------------

    def _forward(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        x: jax.Array,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, jax.Array, PyTree]:
        """(embedding, normalized loss vector, new model state) of images `x`."""
        variables = {"params": params, **model_state}
        if train and model_state:
            (emb, out), new_state = apply_fn(
                variables, x, train=True, rngs={"dropout": ctx.rng("dropout")},
                mutable=list(model_state),
            )  # fmt: skip
        elif train:
            emb, out = apply_fn(variables, x, train=True, rngs={"dropout": ctx.rng("dropout")})
            new_state = model_state
        else:
            (emb, out), new_state = apply_fn(variables, x, train=False), model_state
        return emb, lm.l2_normalize(out.astype(jnp.float32)), dict(new_state)

    def embed(self, task_state: SupervisedState, images: jax.Array) -> jax.Array:
        """The evaluated embedding in inference mode: the normalized loss vector without a
        projector head, the raw pre-head embedding with one (EMA parameters if kept)."""
        params = task_state.ema_params if self.ema_decay is not None else task_state.params
        emb, out = self.model.apply(
            {"params": params, **task_state.model_state}, images, train=False
        )
        if self.has_head:
            return emb.astype(jnp.float32)
        return lm.l2_normalize(out.astype(jnp.float32))

    # --- losses ------------------------------------------------------------------------

    def _random_loss(
        self, apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch,
        ctx: StepContext,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:  # fmt: skip
        x, labels = batch["image"], batch["label"]
        b = x.shape[0]
        pos, neg, has_pos, has_neg = lm.sample_random_triplets(ctx.rng("triplets"), labels)
        positives = x[pos]
        use = has_neg & has_pos
        if self.opts["augment_positives"]:
            views = strong_augment(
                ctx.rng("augment"), x, self.opts["augment_shift"], self.opts["augment_jitter"]
            )
            positives = jnp.where(has_pos[:, None, None, None], positives, views)
            use = has_neg
        inputs = jnp.concatenate([x, positives, x[neg]], axis=0)
        _, z, new_state = self._forward(apply_fn, params, model_state, inputs, ctx, True)
        hinge = lm.triplet_loss(z[:b], z[b : 2 * b], z[2 * b :], self.margin)
        count = jnp.maximum(jnp.sum(use), 1)
        loss = jnp.sum(jnp.where(use, hinge, 0.0)) / count
        metrics = {
            "loss": average(loss),
            "mean_distance": average(lm.mean_pairwise_distance(z[:b])),
            "active_fraction": average(hinge > 0, use),
        }
        return loss, (new_state, metrics)

    def _mined_loss(
        self, apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch,
        ctx: StepContext,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:  # fmt: skip
        x, labels = batch["image"], batch["label"]
        valid = jnp.ones(labels.shape, bool)
        if self.opts["augment_positives"]:
            views = strong_augment(
                ctx.rng("augment"), x, self.opts["augment_shift"], self.opts["augment_jitter"]
            )
            # Singleton classes are judged on the global batch under pmap.
            global_labels = ctx.all_gather(labels)
            counts = jnp.sum(labels[:, None] == global_labels[None, :], axis=1)
            x = jnp.concatenate([x, views], axis=0)
            labels = jnp.concatenate([labels, labels], axis=0)
            valid = jnp.concatenate([valid, counts == 1], axis=0)
        _, z, new_state = self._forward(apply_fn, params, model_state, x, ctx, True)
        z, labels, valid = ctx.all_gather(z), ctx.all_gather(labels), ctx.all_gather(valid)
        loss, active = lm.mined_triplet_loss(self.sampling, z, labels, self.margin, valid)
        metrics = {
            "loss": average(loss),
            "mean_distance": average(lm.mean_pairwise_distance(z, valid)),
            "active_fraction": average(active),
        }
        return loss, (new_state, metrics)

    def _loss_fn(
        self, apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch,
        ctx: StepContext, train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:  # fmt: skip
        if self.sampling == "random":
            return self._random_loss(apply_fn, params, model_state, batch, ctx)
        return self._mined_loss(apply_fn, params, model_state, batch, ctx)

    def _eval_fn(
        self, apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch,
        ctx: StepContext,
    ) -> Metrics:  # fmt: skip
        _, z, _ = self._forward(apply_fn, params, model_state, batch["image"], ctx, False)
        valid = batch["mask"] > 0
        loss, _ = lm.batch_hard_triplet_loss(z, batch["label"], self.margin, valid)
        n = jnp.sum(valid).astype(jnp.int32)
        weighted = lambda v: clu_metrics.Average(total=v * n, count=n)  # noqa: E731
        return {
            "loss": weighted(loss),
            "mean_distance": weighted(lm.mean_pairwise_distance(z, valid)),
        }

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        """`knn` and `linear_probe` (RepresentationTask) and `recall` (Recall@k)."""
        return {**super().evaluators(), "recall": make_recall_evaluator}


# --- Recall@k ---------------------------------------------------------------------------------


def recall_at_k(
    features: np.ndarray, labels: np.ndarray, ks: Sequence[int], metric: str = "l2"
) -> dict[int, float]:
    """Recall@k of the retrieval benchmarks (Oh Song et al. 2016): each example of the set
    queries all the others (itself excluded); it scores 1 at k when one of its k nearest
    neighbours ('l2' distance or 'cosine' similarity) has its label. Returns {k: mean}."""
    check_choice("recall metric", metric, RECALL_METRICS)
    x = np.asarray(features, np.float64)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels)
    n, kmax = len(x), min(max(ks), len(x) - 1)
    sq = np.sum(x**2, axis=1)
    hits = np.zeros((n, kmax), bool)
    for start in range(0, n, _RECALL_CHUNK):
        q = x[start : start + _RECALL_CHUNK]
        d = sq[start : start + len(q), None] + sq[None, :] - 2 * q @ x.T
        d[np.arange(len(q)), np.arange(start, start + len(q))] = np.inf
        nearest = np.argsort(d, axis=1, kind="stable")[:, :kmax]
        hits[start : start + len(q)] = labels[nearest] == labels[start : start + len(q), None]
    found = np.cumsum(hits, axis=1) > 0
    return {int(k): float(np.mean(found[:, min(k, kmax) - 1])) for k in ks}


class RecallEvaluator(Evaluator):
    """Recall@k of the eval split's embeddings (`recall_at_k`); reports `recall@{k}`."""

    def __init__(
        self, task: RepresentationTask, setup: TaskSetup, options: ml_collections.ConfigDict
    ) -> None:
        unknown = sorted(set(options) - {"ks", "metric", "every_steps"})
        if unknown:
            raise ConfigError(
                f"unknown evaluators.recall option {unknown[0]!r}; valid choices: ks, metric, "
                "every_steps"
            )
        self.name, self.task = "recall", task
        self.ks = tuple(options.get("ks", (1, 2, 4, 8)))
        if not self.ks:
            raise ConfigError("evaluators.recall.ks must list at least one k, e.g. (1, 2, 4, 8)")
        for k in self.ks:
            check_positive("evaluators.recall.ks entry", k, integer=True)
        self.metric = options.get("metric", "l2")
        check_choice("evaluators.recall.metric", self.metric, RECALL_METRICS)
        self.every_steps = int(options.get("every_steps", 0))
        self._embed = jax.jit(task.embed)

    def run(self, ctx: EvalContext) -> EvalResult:
        state = ctx.host(ctx.state.task)
        x, y = embed_split(self.task, state, ctx.config, "eval", embed_fn=self._embed)
        recalls = recall_at_k(x, y, self.ks, self.metric)
        return EvalResult(scalars={f"recall@{k}": v for k, v in recalls.items()})


def make_recall_evaluator(
    task: RepresentationTask, setup: TaskSetup, options: Mapping[str, Any]
) -> RecallEvaluator:
    """The `recall` evaluator (options: ks (default (1, 2, 4, 8)), metric ('l2' |
    'cosine'), every_steps)."""
    return RecallEvaluator(task, setup, options)


def make_metric_learning_task(setup: TaskSetup) -> MetricLearningTask:
    """Builds the task `metric_learning` (see the module docstring); ConfigError for a
    dataset without labels or images, or a bad task option."""
    return MetricLearningTask(setup)
