"""Classification: softmax cross entropy (optionally label-smoothed, mixup/cutmix on train
batches, auxiliary-classifier losses), accuracy, and top-k accuracy at eval.

Built with `SupervisedTask` from a loss function and an eval function. Labels may have any
shape (one per image [B], one per pixel [B, H, W], one per token [B, T]) with logits
[..., C]; every label outside [0, C) (the 255 "ignore" label of segmentation datasets, -1 for
padding) is masked out of the loss and of the metric denominators, and the loss is the mean
over the valid labels.

`config.task` keys: `top_k` (0 disables top-k), `label_smoothing` (eps in [0, 1): target
1 - eps*(K-1)/K on the label, eps/K elsewhere), `mixup_alpha`, `cutmix_alpha` (>= 0; 0 is
off; see `jaxlab.tasks.mixing`; image labels only).

Train metrics are `loss` (the objective that is minimized: smoothed, mixed, with the
auxiliary terms) and `accuracy` (under mixing, against each example's dominant label: the
original one if lam >= 1/2, else its partner's). Top-k is left out of training to keep the
step cheap. Eval is never mixed nor smoothed: its `loss` is the plain cross entropy (the
negative log-likelihood, comparable across recipes), with `accuracy` and `top{k}_accuracy`.

Auxiliary classifiers (GoogLeNet built with `aux_logits=True`): the task reads the model's
`aux_loss_weight`; the train forward pass makes 'intermediates' mutable and adds
`aux_loss_weight * CE(aux)` for every array the model sows under the name 'aux_logits'
(mixed and smoothed like the main loss); 'intermediates' is dropped from the model state.

The model is built from `config.model` with `num_classes` from the dataset and, under pmap,
`bn_axis_name`, each only where the model has that field. With `model.kernel_init='lsuv'`
the loop rescales every layer to unit output variance on the first train batch.
"""

from __future__ import annotations

import jax
import ml_collections
from flax import traverse_util

from jaxlab import losses
from jaxlab.config import ConfigError, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.nn import lsuv_init
from jaxlab.optim import ema_decay
from jaxlab.tasks import mixing, tta
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.supervised import ApplyFn, EvalFn, LossFn, SupervisedTask

AUX_COLLECTION, AUX_NAME = "intermediates", "aux_logits"


def _forward(
    apply_fn: ApplyFn,
    params: PyTree,
    model_state: PyTree,
    x: jax.Array,
    rng: jax.Array | None,
    train: bool,
    collect_aux: bool = False,
) -> tuple[jax.Array, tuple[jax.Array, ...], PyTree]:
    """(logits, auxiliary logits sown by the model, new model state)."""
    variables = {"params": params, **model_state}
    if not train:
        return apply_fn(variables, x, train=False), (), model_state
    mutable = [k for k in model_state if k != AUX_COLLECTION]
    if collect_aux:
        mutable.append(AUX_COLLECTION)
    if not mutable:
        return apply_fn(variables, x, train=True, rngs={"dropout": rng}), (), {}
    logits, new_state = apply_fn(variables, x, train=True, rngs={"dropout": rng}, mutable=mutable)
    new_state = dict(new_state)
    sown = traverse_util.flatten_dict(dict(new_state.pop(AUX_COLLECTION, {})))
    aux = tuple(
        a
        for path, values in sorted(sown.items())
        if AUX_NAME in path
        for a in (values if isinstance(values, tuple | list) else (values,))
    )
    if collect_aux and not aux:
        raise ValueError(
            f"aux_loss_weight > 0 but the model sowed no {AUX_NAME!r} into {AUX_COLLECTION!r} "
            "(build it with its auxiliary classifiers, or pass aux_loss_weight=0)"
        )
    return logits, aux, new_state


def classification_metrics(
    logits: jax.Array, labels: jax.Array, top_k: int, weights: jax.Array | None = None
) -> Metrics:
    """Masked averages of the cross entropy, the accuracy and (when 0 < top_k < classes)
    the top-k accuracy; labels outside [0, C) and entries of `weights` 0 do not count."""
    num_classes = logits.shape[-1]
    valid = losses.valid_label_mask(labels, num_classes)
    if weights is not None:
        valid = valid & losses.broadcast_mask(weights, labels.shape)
    out = {
        "loss": average(losses.softmax_cross_entropy(logits, labels), valid),
        "accuracy": average(losses.accuracy(logits, labels), valid),
    }
    if 0 < top_k < num_classes:
        out[f"top{top_k}_accuracy"] = average(losses.top_k_accuracy(logits, labels, top_k), valid)
    return out


def _check_config(task: ml_collections.ConfigDict, aux_loss_weight: float) -> None:
    check_positive("task.top_k", task.get("top_k", 5), allow_zero=True, integer=True)
    smoothing = task.get("label_smoothing", 0.0)
    check_positive("task.label_smoothing", smoothing, allow_zero=True)
    if smoothing >= 1:
        raise ConfigError(f"task.label_smoothing must be in [0, 1), got {smoothing!r}")
    for key in ("mixup_alpha", "cutmix_alpha"):
        check_positive(f"task.{key}", task.get(key, 0.0), allow_zero=True)
    check_positive("aux_loss_weight", aux_loss_weight, allow_zero=True)


def _lsuv(model, variables: PyTree, x: jax.Array) -> PyTree:
    """LSUV's data-dependent step on `x`, printing the layers' output variances."""
    variables, variances = lsuv_init(model, variables, x)
    print(
        "LSUV output variances: " + ", ".join(f"{k} {v:.3f}" for k, v in variances.items()),
        flush=True,
    )
    return variables


def make_classification_task(setup: TaskSetup) -> SupervisedTask:
    """Builds the classification task of `setup.config` (see the module docstring).

    Raises ConfigError for a dataset without classes, a negative top_k or alpha, or a
    label_smoothing outside [0, 1).
    """
    config, info = setup.config, setup.info
    if not getattr(info, "num_classes", None):
        raise ConfigError(
            f"task 'classification' needs a dataset with classes; {info.name!r} has none"
        )
    num_classes = int(info.num_classes)
    model = build_model(
        config.model.name,
        {k: v for k, v in config.model.to_dict().items() if k != "name"},
        num_classes=num_classes,
        bn_axis_name=setup.axis_name,
    )
    aux_loss_weight = float(model.aux_loss_weight) if getattr(model, "aux_logits", False) else 0.0
    loss_fn, eval_fn, train_names, eval_names = make_classification_fns(
        config.task, num_classes, aux_loss_weight
    )
    return SupervisedTask(
        name="classification",
        model=model,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        optimizer=setup.optimizer(),
        input_key="image",
        train_metric_names=train_names,
        eval_metric_names=eval_names,
        rng_streams=("params", "dropout", "mix"),
        ema_decay=ema_decay(config),
        needs_hvp=config.optimizer.name == "esgd",
        norms_every=config.log_every_steps if config.get("log_norms") else None,
        data_init=_lsuv if config.model.get("kernel_init") == "lsuv" else None,
        evaluator_factories={"tta": tta.make_tta_evaluator},
    )


def make_classification_fns(
    task_config: ml_collections.ConfigDict,
    num_classes: int,
    aux_loss_weight: float = 0.0,
    input_key: str = "image",
) -> tuple[LossFn, EvalFn, tuple[str, ...], tuple[str, ...]]:
    """The loss function, eval function and metric names of classification (for
    `SupervisedTask`) from `config.task`: smoothing, mixing (stream 'mix'), dropout (stream
    'dropout') and the auxiliary-classifier weight. Raises ConfigError for bad values."""
    _check_config(task_config, aux_loss_weight)
    top_k = int(task_config.get("top_k", 5))
    smoothing = float(task_config.get("label_smoothing", 0.0))
    mixup_alpha = float(task_config.get("mixup_alpha", 0.0))
    cutmix_alpha = float(task_config.get("cutmix_alpha", 0.0))
    aux_loss_weight = float(aux_loss_weight)
    mixes = mixup_alpha > 0 or cutmix_alpha > 0

    def loss_fn(
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        images, labels = batch[input_key], batch["label"]
        valid = losses.valid_label_mask(labels, num_classes)
        mixed = None
        if train and mixes:
            mixed = mixing.mix_batch(ctx.rng("mix"), images, mixup_alpha, cutmix_alpha)
            images = mixed.images
        collect_aux = train and aux_loss_weight > 0
        logits, aux, new_state = _forward(
            apply_fn, params, model_state, images, ctx.rng("dropout"), train, collect_aux
        )

        def cross_entropy(out: jax.Array) -> jax.Array:
            if mixed is None:
                return losses.softmax_cross_entropy(out, labels, smoothing)
            return mixing.mixed_cross_entropy(out, labels, mixed.perm, mixed.lam, smoothing)

        loss = cross_entropy(logits)
        for aux_logits in aux:
            loss = loss + aux_loss_weight * cross_entropy(aux_logits)
        target = labels if mixed is None else mixing.dominant_labels(labels, mixed.perm, mixed.lam)
        metrics = {
            "loss": average(loss, valid),
            "accuracy": average(losses.accuracy(logits, target), valid),
        }
        return losses.masked_mean(loss, valid), (new_state, metrics)

    def eval_fn(
        apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        logits, _, _ = _forward(apply_fn, params, model_state, batch[input_key], None, False)
        return classification_metrics(logits, batch["label"], top_k, batch.get("mask"))

    train_names = ("loss", "accuracy")
    eval_names = train_names + ((f"top{top_k}_accuracy",) if 0 < top_k < num_classes else ())
    return loss_fn, eval_fn, train_names, eval_names
