"""`video_frames`: per-frame classification of clips, scored on the last k frames, with a
frame-to-frame consistency metric.

Batches hold 'clip' float32 [B, T, H, W, C] and 'label' int32 [B, T] (one class per frame,
e.g. `moving_digits`); the model maps clips to logits [B, T, K] (`jaxlab.models.video`).

Loss: the mean softmax cross entropy over the last k = `config.task.loss_frames` frames of
every clip (the scored frames; 1 <= k <= T, default T):

    loss = sum_{b, t >= T - k} w_bt CE(logits_bt, label_bt) / sum_{b, t >= T - k} w_bt

with w_bt = 1 for a label in [0, K) of a real example (eval padding, 'mask' 0, and
ignored labels do not count). Leaving out the first T - k frames lets a recurrent model
warm up on them (its first frame has no context), and scoring k > 1 frames, not only the
last, gives it a per-frame signal at every scored step.

Metrics (train and eval, mask-weighted, exact sums and counts):
  loss           the loss above;
  accuracy       per-frame accuracy over the scored frames;
  flip_rate      the fraction of consecutive scored pairs (t - 1, t), both weighted, whose
                 predictions differ: how often the prediction flips (lower is steadier);
  label_flip_rate  the same fraction on the labels (the rate a perfect model would have);
  accuracy_all   (eval only) per-frame accuracy over all T frames.

`config.task` keys: `loss_frames` (int, default: all frames).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxlab import losses
from jaxlab.config import ConfigError, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.supervised import ApplyFn, EvalFn, LossFn, SupervisedTask

INPUT_KEY = "clip"
TRAIN_METRICS = ("loss", "accuracy", "flip_rate", "label_flip_rate")
EVAL_METRICS = (*TRAIN_METRICS, "accuracy_all")


def frame_weights(
    labels: jax.Array, num_classes: int, loss_frames: int, mask: jax.Array | None = None
) -> jax.Array:
    """bool [B, T]: the frames that count, the last `loss_frames` of each clip whose label
    is in [0, num_classes) and whose example is real (`mask` [B] nonzero, when given)."""
    frames = labels.shape[-1]
    valid = losses.valid_label_mask(labels, num_classes)
    valid = valid & (jnp.arange(frames) >= frames - loss_frames)
    if mask is not None:
        valid = valid & losses.broadcast_mask(mask, valid.shape)
    return valid


def flip_rate(values: jax.Array, weights: jax.Array):
    """An `Average` of [values_t != values_{t-1}] over the consecutive pairs of frames
    (values, weights [B, T]) whose two frames both have weight."""
    flips = (values[:, 1:] != values[:, :-1]).astype(jnp.float32)
    return average(flips, weights[:, 1:] & weights[:, :-1])


def video_metrics(
    logits: jax.Array, labels: jax.Array, weights: jax.Array, mask: jax.Array | None = None
) -> Metrics:
    """loss, accuracy, flip_rate, label_flip_rate over `weights` [B, T]; with an example
    `mask` [B] (eval), also accuracy_all over every frame of the real examples."""
    predictions = jnp.argmax(logits, -1)
    out = {
        "loss": average(losses.softmax_cross_entropy(logits, labels), weights),
        "accuracy": average(losses.accuracy(logits, labels), weights),
        "flip_rate": flip_rate(predictions, weights),
        "label_flip_rate": flip_rate(labels, weights),
    }
    if mask is not None:
        every = frame_weights(labels, logits.shape[-1], labels.shape[-1], mask)
        out["accuracy_all"] = average(losses.accuracy(logits, labels), every)
    return out


def make_video_fns(num_classes: int, loss_frames: int) -> tuple[LossFn, EvalFn]:
    """The loss and eval functions of the task (for `SupervisedTask`), scoring the last
    `loss_frames` frames."""

    def loss_fn(
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        variables = {"params": params, **model_state}
        logits = apply_fn(
            variables, batch[INPUT_KEY], train=train, rngs={"dropout": ctx.rng("dropout")}
        )
        labels = batch["label"]
        weights = frame_weights(labels, num_classes, loss_frames, batch.get("mask"))
        loss = losses.masked_mean(losses.softmax_cross_entropy(logits, labels), weights)
        return loss, (model_state, video_metrics(logits, labels, weights))

    def eval_fn(
        apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        logits = apply_fn({"params": params, **model_state}, batch[INPUT_KEY], train=False)
        labels, mask = batch["label"], batch["mask"]
        weights = frame_weights(labels, num_classes, loss_frames, mask)
        return video_metrics(logits, labels, weights, mask)

    return loss_fn, eval_fn


def loss_frames_option(task: ml_collections.ConfigDict, frames: int) -> int:
    """`task.loss_frames` (default `frames`, all of them); ConfigError unless an integer in
    [1, frames]."""
    k = task.get("loss_frames", frames)
    check_positive("task.loss_frames", k, integer=True)
    if k > frames:
        raise ConfigError(f"task.loss_frames must be in [1, {frames}] (the clip's frames), got {k}")
    return int(k)


def make_video_frames_task(setup: TaskSetup) -> SupervisedTask:
    """Builds the task of `setup.config` (see the module docstring). Raises ConfigError for a
    dataset without a 'clip' feature and per-frame 'label', or a bad `task.loss_frames`."""
    config, info = setup.config, setup.info
    features = info.features
    if INPUT_KEY not in features or "label" not in features or not info.num_classes:
        raise ConfigError(
            f"task 'video_frames' needs a dataset of 'clip' and per-frame 'label' features "
            f"with classes; {info.name!r} has {', '.join(features)}"
        )
    frames = features[INPUT_KEY].shape[0]
    if features["label"].shape != (frames,):
        raise ConfigError(
            f"task 'video_frames' needs one label per frame ({frames},); "
            f"{info.name!r} has labels of shape {features['label'].shape}"
        )
    num_classes = int(info.num_classes)
    loss_fn, eval_fn = make_video_fns(num_classes, loss_frames_option(config.task, frames))
    model = build_model(
        config.model.name,
        {k: v for k, v in config.model.to_dict().items() if k != "name"},
        num_classes=num_classes,
    )
    return SupervisedTask(
        name="video_frames",
        model=model,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        optimizer=setup.optimizer(),
        input_key=INPUT_KEY,
        train_metric_names=TRAIN_METRICS,
        eval_metric_names=EVAL_METRICS,
        ema_decay=ema_decay(config),
        norms_every=config.log_every_steps if config.get("log_norms") else None,
    )
