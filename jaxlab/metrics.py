"""The clu metrics a task returns from its steps, and the ones clu lacks.

A task's train or eval step returns `dict[str, clu.metrics.Metric]` of instances. The loop
accumulates them inside `jit` with `accum.merge(new)`, starting from all-zero leaves of the
same pytree (so every metric here has an all-zeros empty state and static-shape array
fields), reduces them across a pmap axis with clu's
`jax.tree.map(lambda x: jax.lax.all_gather(x, axis), m).reduce()`, and calls `m.compute()`
on the host when it logs. `compute()` returns a scalar or a dict of scalars (logged as
`<metric name>/<key>`).

- `average(values, mask)`: exact (float32 sum, int32 count) of values of any shape over the
  entries a mask of any shape (aligned with the leading axes) keeps: clu's `Average`.
- `accuracy(logits, labels, mask)`: an `Average` of arg-max == label, ignoring labels
  outside [0, C).
- `ConfusionMatrix`: int32 [C, C] counts (rows target, columns prediction); `compute()` gives
  mean IoU, pixel accuracy and per-class IoU. clu has no confusion matrix, hence ours.
- `collected(**arrays)`: clu's `CollectingMetric` of named arrays (predictions for BLEU,
  samples). It concatenates on the HOST: merge these in the Python loop, never inside `jit`,
  and keep them out of the jit-compiled accumulators (they grow with every batch).
- `ignore_mask(labels, num_classes)`: True where a label is scored (0 <= label < C).

Masks follow `jaxlab.losses.broadcast_mask`: aligned with the leading axes, then broadcast.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
from clu import metrics

from jaxlab import losses


def ignore_mask(labels: jax.Array, num_classes: int) -> jax.Array:
    """Bool array of `labels`' shape: True where 0 <= label < num_classes.

    False marks an ignored position (e.g. the 255 "void" label of segmentation masks); the
    same test as `jaxlab.losses.valid_label_mask`, which the losses use.
    """
    return losses.valid_label_mask(labels, num_classes)


def average(values: jax.Array, mask: jax.Array | None = None) -> metrics.Average:
    """Exact (sum, count) of `values` (any shape) over the entries where `mask` is nonzero.

    `mask` is aligned with the leading axes of `values` and broadcast (an example mask [B]
    for per-token values [B, T] or per-pixel values [B, H, W]; a mask of values' own shape;
    None for all entries). The total is float32 and the count int32 whatever the dtype of
    `values`, so accumulators keep their dtypes when merged. Masked-out entries are selected
    away, so a NaN there does not reach the total.

    clu's `Average.from_model_output(values, mask=...)` does the masked sum and count and is
    used for it, but on its own it keeps the values' dtype (a bfloat16 or integer total),
    needs the mask's leading axis to equal the values' (no [1, T] mask) and rejects a mask
    given with a scalar value; hence the cast and `broadcast_mask` first.
    """
    values = jnp.asarray(values).astype(jnp.float32)
    if values.ndim == 0:
        values = values[None]
    full_mask = None if mask is None else losses.broadcast_mask(mask, values.shape)
    return metrics.Average.from_model_output(values, mask=full_mask)


def accuracy(
    logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None
) -> metrics.Average:
    """`Average` of arg-max(logits [..., C]) == labels [...] over scored, unmasked positions.

    Positions whose label is outside [0, C) are left out of the count, as are those where
    `mask` (see `average`) is zero. clu's `Accuracy` is not used: it counts an ignored label
    as wrong, requires int32 labels, and is a subclass of `Average` (a different pytree type,
    so its accumulators would not tree-map against `Average` ones).
    """
    valid = ignore_mask(labels, logits.shape[-1])
    if mask is not None:
        valid = valid & losses.broadcast_mask(mask, valid.shape)
    return average(losses.accuracy(logits, labels), valid)


def iou_from_confusion(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-class IoU [C] and their mean from a confusion matrix (rows target, cols predicted).

    IoU_c = TP / (TP + FP + FN). A class absent from both targets and predictions
    (TP + FP + FN = 0) has IoU NaN and is left out of the mean, so the mean stays finite
    while any class was seen; a class only predicted has IoU 0 and counts. NaN mean when no
    class was seen at all. Numpy, in float64, on the host.
    """
    matrix = np.asarray(matrix, np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp  # TP + FP + FN
    present = union > 0
    iou = np.full(tp.shape, np.nan)
    iou[present] = tp[present] / union[present]
    mean_iou = float(iou[present].mean()) if present.any() else math.nan
    return iou, mean_iou


@flax.struct.dataclass
class ConfusionMatrix(metrics.Metric):
    """Confusion counts: `matrix[t, p]` = number of entries of target t predicted as p.

    `matrix` is int32 [C, C]. Merging adds, `reduce()` sums over a leading (device) axis,
    and the empty state is all zeros, so it accumulates inside `jit` like clu's `Average`.
    clu's `Metric.empty()` takes no arguments but the matrix's shape depends on C, so
    `empty()` raises: make an empty one with `ConfusionMatrix.zeros(num_classes)` (or
    `jax.tree.map(jnp.zeros_like, m)` from any instance, as the loop does).

    `compute()` (host) returns `mean_iou`, `pixel_accuracy` (trace / total) and `iou/<c>` for
    each class c, with the conventions of `iou_from_confusion`.
    """

    matrix: jax.Array

    @classmethod
    def zeros(cls, num_classes: int) -> ConfusionMatrix:
        """The empty matrix of `num_classes` classes (the identity of `merge`)."""
        return cls(matrix=jnp.zeros((num_classes, num_classes), jnp.int32))

    @classmethod
    def empty(cls) -> ConfusionMatrix:
        """Not available: the class count is needed; use `ConfusionMatrix.zeros(C)`."""
        raise NotImplementedError(
            "ConfusionMatrix.empty() cannot know the number of classes; "
            "use ConfusionMatrix.zeros(num_classes) or jax.tree.map(jnp.zeros_like, metric)"
        )

    @classmethod
    def from_predictions(
        cls,
        predictions: jax.Array,
        labels: jax.Array,
        num_classes: int,
        mask: jax.Array | None = None,
    ) -> ConfusionMatrix:
        """Counts integer `predictions` against `labels` (same shape, any shape).

        An entry is not counted where its label is outside [0, num_classes) (e.g. 255),
        where `mask` (aligned with the leading axes, see `average`) is zero, or where its
        prediction is outside [0, num_classes) (it has no column; arg-max predictions never
        are). `num_classes` must be a Python int (it sets the static shape).
        """
        predictions = jnp.asarray(predictions)
        labels = jnp.asarray(labels)
        if predictions.shape != labels.shape:
            raise ValueError(
                f"predictions {predictions.shape} and labels {labels.shape} differ in shape"
            )
        valid = ignore_mask(labels, num_classes) & ignore_mask(predictions, num_classes)
        if mask is not None:
            valid = valid & losses.broadcast_mask(mask, labels.shape)
        # Uncounted entries go to an out-of-range bin that the scatter drops.
        index = jnp.where(valid, labels * num_classes + predictions, num_classes**2)
        counts = jnp.zeros(num_classes**2, jnp.int32).at[index.ravel()].add(1, mode="drop")
        return cls(matrix=counts.reshape(num_classes, num_classes))

    @classmethod
    def from_model_output(
        cls, *, logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None, **_
    ) -> ConfusionMatrix:
        """clu's constructor: `from_predictions(argmax(logits), labels, C, mask)`."""
        num_classes = logits.shape[-1]
        return cls.from_predictions(jnp.argmax(logits, -1), labels, num_classes, mask)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """The sum of both matrices (same number of classes)."""
        if self.matrix.shape != other.matrix.shape:
            raise ValueError(
                f"confusion matrices differ: {self.matrix.shape} vs {other.matrix.shape}"
            )
        return type(self)(matrix=self.matrix + other.matrix)

    def reduce(self) -> ConfusionMatrix:
        """Sums a stack of matrices [N, C, C] over its leading axis (clu's reduce, directly)."""
        return type(self)(matrix=jnp.sum(self.matrix, axis=0))

    def compute(self) -> dict[str, float]:
        """`mean_iou`, `pixel_accuracy` and `iou/<c>` per class, as Python floats (host).

        NaN pixel accuracy (and mean IoU) when nothing was counted.
        """
        matrix = np.asarray(jax.device_get(self.matrix), np.int64)
        iou, mean_iou = iou_from_confusion(matrix)
        total = matrix.sum()
        out = {
            "mean_iou": mean_iou,
            "pixel_accuracy": float(np.trace(matrix) / total) if total else math.nan,
        }
        out.update({f"iou/{c}": float(v) for c, v in enumerate(iou)})
        return out


@functools.cache
def _collecting_class(names: tuple[str, ...]) -> type[metrics.CollectingMetric]:
    # One class per set of names, so two batches' metrics are the same pytree type.
    return metrics.CollectingMetric.from_outputs(names)


def collected(**arrays: Any) -> metrics.CollectingMetric:
    """A clu `CollectingMetric` holding the named `arrays` of one batch.

    `merge` appends batches (on the host, as numpy) and `compute()` returns a dict of the
    arrays concatenated over batches along axis 0, e.g.
    `collected(predictions=p, targets=t).merge(...).compute()["predictions"]`. Scalars are
    collected as shape [1]. Making one inside `jit` is fine (its leaves are arrays), but
    MERGING must happen in the Python loop, outside `jit` (clu raises on a tracer), so such
    metrics are not part of the loop's jit-compiled accumulators. Start an accumulation
    from `collected(...)` of the first batch or `CollectingMetric.empty()`. A `mask` is not
    applied: collect it as another array and apply it in the final computation.
    """
    if not arrays:
        raise ValueError("collected() needs at least one named array")
    return _collecting_class(tuple(sorted(arrays))).from_model_output(**arrays)
