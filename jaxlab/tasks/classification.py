"""Classification: softmax cross entropy (optionally label-smoothed, mixup/cutmix on train
batches, auxiliary-classifier losses), accuracy, and top-k accuracy at eval.

`config.task` keys: `top_k` (0 disables top-k), `label_smoothing` (eps in [0, 1): target
1 - eps*(K-1)/K on the label, eps/K elsewhere), `mixup_alpha`, `cutmix_alpha` (>= 0; 0 is
off; see `jaxlab.tasks.mixing`).

Train metrics are `loss` (the per-example objective that is minimized: smoothed, mixed, with
the auxiliary terms) and `accuracy` (under mixing, against each example's dominant label:
the original one if lam >= 1/2, else its partner's). Top-k is left out of training to keep
the step cheap. Eval is never mixed nor smoothed: its `loss` is the plain cross entropy
(the negative log-likelihood, comparable across recipes), with `accuracy` and
`top{k}_accuracy`.

Auxiliary classifiers (GoogLeNet): with `aux_loss_weight` > 0 the train forward pass makes
'intermediates' mutable and adds `aux_loss_weight * CE(aux)` for every array the model sows
under the name 'aux_logits' (mixed and smoothed like the main loss); 'intermediates' is
dropped from the returned model state.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import ml_collections
from flax import traverse_util

from jaxlab import losses
from jaxlab.config import ConfigError, check_positive
from jaxlab.tasks import mixing
from jaxlab.tasks.base import ApplyFn, PyTree, Task

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
    logits: jax.Array, labels: jax.Array, top_k: int
) -> dict[str, jax.Array]:
    """Per-example loss, accuracy and (when 0 < top_k < num_classes) top-k accuracy."""
    out = {
        "loss": losses.softmax_cross_entropy(logits, labels),
        "accuracy": losses.accuracy(logits, labels),
    }
    if 0 < top_k < logits.shape[-1]:
        out[f"top{top_k}_accuracy"] = losses.top_k_accuracy(logits, labels, top_k)
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


def make_classification_task(
    config: ml_collections.ConfigDict, num_classes: int, aux_loss_weight: float = 0.0
) -> Task:
    """Builds the classification task from `config.task` (see the module docstring).

    `aux_loss_weight` > 0 adds the auxiliary classifiers' losses (pass the model's
    `aux_loss_weight` for a GoogLeNet built with `aux_logits=True`). Raises ConfigError for
    a negative top_k, alpha or weight, or label_smoothing outside [0, 1).
    """
    _check_config(config.task, aux_loss_weight)
    top_k = int(config.task.get("top_k", 5))
    smoothing = float(config.task.get("label_smoothing", 0.0))
    mixup_alpha = float(config.task.get("mixup_alpha", 0.0))
    cutmix_alpha = float(config.task.get("cutmix_alpha", 0.0))
    aux_loss_weight = float(aux_loss_weight)
    mixes = mixup_alpha > 0 or cutmix_alpha > 0

    def loss_fn(apply_fn, params, model_state, batch: Mapping[str, jax.Array], rng, train):
        images, labels = batch["image"], batch["label"]
        mixed = None
        if train and mixes:
            # Without mixing the whole rng stays the dropout rng, as before mixing existed.
            mix_key, rng = jax.random.split(rng)
            mixed = mixing.mix_batch(mix_key, images, mixup_alpha, cutmix_alpha)
            images = mixed.images
        collect_aux = train and aux_loss_weight > 0
        logits, aux, new_state = _forward(
            apply_fn, params, model_state, images, rng, train, collect_aux
        )

        def cross_entropy(out: jax.Array) -> jax.Array:
            if mixed is None:
                return losses.softmax_cross_entropy(out, labels, smoothing)
            return mixing.mixed_cross_entropy(out, labels, mixed.perm, mixed.lam, smoothing)

        loss = cross_entropy(logits)
        for aux_logits in aux:
            loss = loss + aux_loss_weight * cross_entropy(aux_logits)
        target = labels if mixed is None else mixing.dominant_labels(labels, mixed.perm, mixed.lam)
        per_example = {"loss": loss, "accuracy": losses.accuracy(logits, target)}
        return jnp.mean(loss), (new_state, per_example)

    def eval_fn(apply_fn, params, model_state, batch: Mapping[str, jax.Array]):
        logits, _, _ = _forward(apply_fn, params, model_state, batch["image"], None, False)
        return classification_metrics(logits, batch["label"], top_k)

    train_names = ("loss", "accuracy")
    eval_names = train_names + ((f"top{top_k}_accuracy",) if 0 < top_k < num_classes else ())
    return Task(
        name="classification",
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        train_metric_names=train_names,
        eval_metric_names=eval_names,
    )
