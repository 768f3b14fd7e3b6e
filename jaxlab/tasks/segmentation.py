"""Semantic segmentation: per-pixel cross entropy ignoring label 255, optional class
weights, and confusion-matrix metrics over the whole eval set.

Loss. With per-pixel cross entropy l_i, class weights w (1 when not given) and V the
pixels whose label is in [0, C) (255 and padding rows are left out of the denominator, not
counted as 0):

    L = sum_{i in V} w[y_i] l_i / sum_{i in V} w[y_i]

(PyTorch's CrossEntropyLoss(weight=w, ignore_index=255) convention). `config.task.
class_weights`: '' (none), 'inverse_frequency' (w_c = 1/f_c from the train split's label
counts, scaled to mean 1 over the classes present; a class never seen gets 1), or a tuple
of C floats.

Metrics. Train: `loss` (the unweighted per-pixel cross entropy, comparable across
weightings) and `pixel_accuracy`. Eval: `loss` and `iou`, a `SegmentationConfusion`
accumulated over the whole eval set (a fixed [C, C] int32 matrix, so the eval step compiles
once): `iou/mean_iou` over the classes present in prediction or target (an absent class is
not a 0 and not a NaN in the mean), `iou/pixel_accuracy`, `iou/fw_iou` (IoU weighted by
each class's share of the target pixels) and `iou/iou/<c>` per class. Averaging per-batch
mIoUs instead would weight small batches' rare classes wrongly (tests show a case).

Evaluation. `config.task.eval_mode` 'full' (the whole image at once) or 'sliding' (windows
of `window` pixels every `stride` pixels, logits averaged where windows overlap, every
pixel covered). Models upsample their logits to the input bilinearly with half-pixel
centres (align_corners=False) in training and evaluation alike (`upsample_bilinear`).

Evaluator `overlay` (`config.evaluators.overlay`: `num`, `every_steps`): colour overlays of
the predictions and targets of the first eval images (TensorBoard and PNG in the workdir's
`images/`, through the loop) and the per-class IoU table as text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxlab import losses
from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import ConfusionMatrix, average, iou_from_confusion
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.evaluators import EvalContext, EvalResult, Evaluator
from jaxlab.tasks.supervised import ApplyFn, SupervisedState, SupervisedTask

IGNORE = 255
EVAL_MODES = ("full", "sliding")
TASK_KEYS = ("name", "class_weights", "eval_mode", "window", "stride")


@flax.struct.dataclass
class SegmentationConfusion(ConfusionMatrix):
    """`ConfusionMatrix` whose `compute()` adds `fw_iou` (frequency-weighted IoU)."""

    def compute(self) -> dict[str, float]:
        """`mean_iou`, `pixel_accuracy`, `fw_iou` and `iou/<c>` (host)."""
        out = super().compute()
        out["fw_iou"] = frequency_weighted_iou(np.asarray(jax.device_get(self.matrix)))
        return out


def frequency_weighted_iou(matrix: np.ndarray) -> float:
    """sum_c (target pixels of c / all pixels) * IoU_c over the classes with target pixels
    (a class only predicted has weight 0); NaN when the matrix is empty."""
    matrix = np.asarray(matrix, np.float64)
    iou, _ = iou_from_confusion(matrix)
    freq = matrix.sum(1) / max(matrix.sum(), 1.0)
    seen = freq > 0
    return float(np.sum(freq[seen] * iou[seen])) if seen.any() else float("nan")


def iou_table(matrix: np.ndarray, class_names: Sequence[str] | None = None) -> str:
    """The per-class IoU table (markdown) of a confusion matrix: class, IoU, target pixels,
    predicted pixels; '-' for a class absent from both."""
    matrix = np.asarray(matrix, np.int64)
    iou, mean = iou_from_confusion(matrix)
    names = list(class_names or [str(c) for c in range(len(iou))])
    rows = ["| class | IoU | target px | predicted px |", "|---|---|---|---|"]
    for c, v in enumerate(iou):
        value = "-" if np.isnan(v) else f"{v:.4f}"
        rows.append(f"| {names[c]} | {value} | {matrix[c].sum()} | {matrix[:, c].sum()} |")
    rows.append(f"| mean (present) | {mean:.4f} | {matrix.sum()} | |")
    return "\n".join(rows)


def segmentation_loss(
    logits: jax.Array,
    labels: jax.Array,
    valid: jax.Array,
    class_weights: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """(the weighted mean L of the module docstring, per-pixel cross entropy [B, H, W]).

    `valid` marks the scored pixels (labels in [0, C), real examples); an all-ignored batch
    gives L = 0."""
    ce = losses.softmax_cross_entropy(logits, labels)
    w = valid.astype(jnp.float32)
    if class_weights is not None:
        safe = jnp.where(valid, labels, 0).astype(jnp.int32)
        w = w * jnp.asarray(class_weights, jnp.float32)[safe]
    loss = jnp.sum(jnp.where(valid, ce, 0.0) * w) / jnp.maximum(jnp.sum(w), 1e-12)
    return loss, ce


def inverse_frequency_weights(counts: np.ndarray) -> np.ndarray:
    """w_c = 1/f_c scaled to mean 1 over the classes with pixels (f_c: their share of the
    labelled pixels); 1 for a class without pixels."""
    counts = np.asarray(counts, np.float64)
    seen = counts > 0
    w = np.ones_like(counts)
    if seen.any():
        inv = counts.sum() / counts[seen]
        w[seen] = inv / inv.mean()
    return w.astype(np.float32)


def train_label_counts(config: ml_collections.ConfigDict, info: Any) -> np.ndarray:
    """Pixel counts per class over the train split (unaugmented; 255 and padding left out)."""
    from jaxlab import data

    counting = ml_collections.ConfigDict(config.to_dict())
    counting.dataset.eval_split = config.dataset.train_split
    counts = np.zeros(info.num_classes, np.int64)
    for batch in data.create_eval_iterator(counting, info, process_index=0, process_count=1):
        labels = np.asarray(batch["label"])[np.asarray(batch["mask"]) > 0]
        labels = labels[labels < info.num_classes]
        counts += np.bincount(labels.ravel().astype(np.int64), minlength=info.num_classes)
    return counts


def sliding_window_logits(
    predict: Callable[[jax.Array], jax.Array], images: jax.Array, window: int, stride: int
) -> jax.Array:
    """Logits [N, H, W, C] of `predict` (images [M, window, window, ...] -> logits) averaged
    over windows every `stride` pixels (the last window flush with the border, so every
    pixel is covered). All windows go through `predict` in one batch (vmap'd slicing); the
    overlap sums are scattered back with one `lax.scan`."""
    n, h, w = images.shape[:3]
    if window > min(h, w):
        return predict(images)

    def starts(size: int) -> list[int]:
        s = list(range(0, size - window + 1, stride))
        return s if s[-1] == size - window else [*s, size - window]

    offsets = jnp.array([(y, x) for y in starts(h) for x in starts(w)], jnp.int32)
    crops = jax.vmap(
        lambda o: jax.lax.dynamic_slice(
            images, (0, o[0], o[1], 0), (n, window, window, images.shape[3])
        )
    )(offsets)  # [K, N, win, win, ch]
    logits = predict(crops.reshape(-1, *crops.shape[2:]))
    logits = logits.reshape(offsets.shape[0], n, window, window, -1)
    total = jnp.zeros((n, h, w, logits.shape[-1]), logits.dtype)
    count = jnp.zeros((1, h, w, 1), logits.dtype)

    def add(carry, item):
        total, count = carry
        o, piece = item
        at = (0, o[0], o[1], 0)
        total = jax.lax.dynamic_update_slice(
            total, jax.lax.dynamic_slice(total, at, piece.shape) + piece, at
        )
        ones = jnp.ones((1, window, window, 1), logits.dtype)
        count = jax.lax.dynamic_update_slice(
            count, jax.lax.dynamic_slice(count, at, ones.shape) + ones, at
        )
        return (total, count), None

    (total, count), _ = jax.lax.scan(add, (total, count), (offsets, logits))
    return total / count


class SegmentationTask(SupervisedTask):
    """The `segmentation` task (see the module docstring)."""

    def predict_logits(self, task_state: SupervisedState, images: jax.Array) -> jax.Array:
        """Eval-mode logits [N, H, W, C] (full image or sliding window, EMA params if any)."""
        params = task_state.ema_params if self.ema_decay is not None else task_state.params
        variables = {"params": params, **task_state.model_state}
        return self.eval_logits(self.model.apply, variables, images)

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        return {**super().evaluators(), "overlay": make_overlay_evaluator}


def _check_task(config: ml_collections.ConfigDict, num_classes: int) -> tuple[Any, str, int, int]:
    task = config.task
    unknown = sorted(set(task) - set(TASK_KEYS))
    if unknown:
        raise ConfigError(
            f"task 'segmentation': unknown key(s) {', '.join(unknown)}; valid: "
            f"{', '.join(TASK_KEYS[1:])}"
        )
    weights = task.get("class_weights", "")
    if isinstance(weights, str):
        check_choice("task.class_weights", weights, ("", "inverse_frequency"))
    else:
        weights = tuple(float(v) for v in weights)
        if len(weights) != num_classes or min(weights) < 0:
            raise ConfigError(
                f"task.class_weights must be '', 'inverse_frequency' or {num_classes} "
                f"non-negative floats, got {task.class_weights!r}"
            )
    mode = task.get("eval_mode", "full")
    check_choice("task.eval_mode", mode, EVAL_MODES)
    window, stride = task.get("window", 0), task.get("stride", 0)
    if mode == "sliding":
        check_positive("task.window", window, integer=True)
        check_positive("task.stride", stride, integer=True)
    return weights, mode, int(window), int(stride)


def make_segmentation_task(setup: TaskSetup) -> SegmentationTask:
    """The `segmentation` task of `setup.config`; ConfigError for a dataset without
    per-pixel labels or bad `config.task` options."""
    config, info = setup.config, setup.info
    label = info.features.get("label")
    if label is None or label.kind != "mask" or not info.num_classes:
        raise ConfigError(
            f"task 'segmentation' needs a dataset with per-pixel labels; {info.name!r} has none"
        )
    num_classes = int(info.num_classes)
    weights, mode, window, stride = _check_task(config, num_classes)
    if weights == "inverse_frequency":
        counts = train_label_counts(config, info)
        class_weights = jnp.asarray(inverse_frequency_weights(counts))
        print(f"segmentation: class weights {np.round(np.asarray(class_weights), 3).tolist()}")
    elif weights:
        class_weights = jnp.asarray(weights, jnp.float32)
    else:
        class_weights = None
    model = build_model(
        config.model.name,
        {k: v for k, v in config.model.to_dict().items() if k != "name"},
        num_classes=num_classes,
        bn_axis_name=setup.axis_name,
    )

    def eval_logits(apply_fn: ApplyFn, variables: PyTree, images: jax.Array) -> jax.Array:
        def predict(x: jax.Array) -> jax.Array:
            return apply_fn(variables, x, train=False)

        if mode == "sliding":
            return sliding_window_logits(predict, images, window, stride)
        return predict(images)

    def loss_fn(
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        variables = {"params": params, **model_state}
        mutable = list(model_state) if train else False
        out = apply_fn(
            variables,
            batch["image"],
            train=train,
            rngs={"dropout": ctx.rng("dropout")},
            mutable=mutable,
        )
        logits, new_state = out if mutable else (out, model_state)
        labels = batch["label"]
        valid = losses.valid_label_mask(labels, num_classes)
        loss, ce = segmentation_loss(logits, labels, valid, class_weights)
        metrics = {
            "loss": average(ce, valid),
            "pixel_accuracy": average(losses.accuracy(logits, labels), valid),
        }
        return loss, (dict(new_state), metrics)

    def eval_fn(
        apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        logits = eval_logits(apply_fn, {"params": params, **model_state}, batch["image"])
        labels = batch["label"]
        valid = losses.valid_label_mask(labels, num_classes)
        if "mask" in batch:
            valid = valid & losses.broadcast_mask(batch["mask"], labels.shape)
        ce = losses.softmax_cross_entropy(logits, labels)
        return {
            "loss": average(ce, valid),
            "iou": SegmentationConfusion.from_predictions(
                jnp.argmax(logits, -1), labels, num_classes, valid
            ),
        }

    task = SegmentationTask(
        name="segmentation",
        model=model,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        optimizer=setup.optimizer(),
        input_key="image",
        train_metric_names=("loss", "pixel_accuracy"),
        eval_metric_names=("loss", "iou/mean_iou", "iou/pixel_accuracy", "iou/fw_iou"),
        ema_decay=ema_decay(config),
        norms_every=config.log_every_steps if config.get("log_norms") else None,
    )
    task.eval_logits = eval_logits
    task.num_classes = num_classes
    return task


class OverlayEvaluator(Evaluator):
    """Colour overlays of predictions and targets on the first `num` eval images, and the
    per-class IoU table of those images."""

    def __init__(self, task: SegmentationTask, setup: TaskSetup, options: Any) -> None:
        self.name = "overlay"
        self.every_steps = int(options.get("every_steps", 0))
        self.num = int(options.get("num", 8))
        self.task = task
        self.dataset = setup.config.dataset.name
        self.normalized = bool(setup.config.dataset.get("normalize", True))
        self._predict = jax.jit(lambda state, x: jnp.argmax(task.predict_logits(state, x), -1))

    def run(self, ctx: EvalContext) -> EvalResult:
        from jaxlab.analysis.seg_overlay import overlay_grid, unnormalize

        batch = next(iter(ctx.eval_batches()))
        real = np.asarray(batch["mask"]) > 0
        images = np.asarray(batch["image"])[real][: self.num]
        labels = np.asarray(batch["label"])[real][: self.num]
        preds = np.asarray(self._predict(ctx.host(ctx.state.task), images))
        shown = unnormalize(images, self.dataset) if self.normalized else images
        c = self.task.num_classes
        matrix = np.asarray(
            ConfusionMatrix.from_predictions(jnp.asarray(preds), jnp.asarray(labels), c).matrix
        )
        return EvalResult(
            images={"predictions": overlay_grid(shown, preds, labels, c)},
            texts={"iou_table": iou_table(matrix)},
        )


def make_overlay_evaluator(
    task: SegmentationTask, setup: TaskSetup, options: ml_collections.ConfigDict
) -> OverlayEvaluator:
    """`config.evaluators.overlay` (options `num`, `every_steps`)."""
    unknown = sorted(set(options) - {"num", "every_steps"})
    if unknown:
        raise ConfigError(
            f"evaluators.overlay: unknown option(s) {', '.join(unknown)}; valid: num, every_steps"
        )
    check_positive("evaluators.overlay.num", options.get("num", 8), integer=True)
    return OverlayEvaluator(task, setup, options)
