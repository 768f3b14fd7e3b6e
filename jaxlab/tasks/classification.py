"""Classification: softmax cross entropy, accuracy and top-k accuracy."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import ml_collections

from jaxlab import losses
from jaxlab.config import check_positive
from jaxlab.tasks.base import ApplyFn, PyTree, Task


def _logits(
    apply_fn: ApplyFn, params: PyTree, model_state: PyTree, x: jax.Array, rng: jax.Array | None,
    train: bool,
) -> tuple[jax.Array, PyTree]:
    variables = {"params": params, **model_state}
    if train:
        mutable = list(model_state.keys())
        out = apply_fn(variables, x, train=True, rngs={"dropout": rng}, mutable=mutable or False)
        logits, new_state = out if mutable else (out, {})
        return logits, dict(new_state)
    return apply_fn(variables, x, train=False), model_state


def classification_metrics(logits: jax.Array, labels: jax.Array, top_k: int) -> dict[str, jax.Array]:
    """Per-example loss, accuracy and (when 0 < top_k < num_classes) top-k accuracy."""
    out = {
        "loss": losses.softmax_cross_entropy(logits, labels),
        "accuracy": losses.accuracy(logits, labels),
    }
    if 0 < top_k < logits.shape[-1]:
        out[f"top{top_k}_accuracy"] = losses.top_k_accuracy(logits, labels, top_k)
    return out


def make_classification_task(config: ml_collections.ConfigDict, num_classes: int) -> Task:
    """Builds the classification task from `config.task` (`top_k`: 0 disables top-k)."""
    top_k = int(config.task.get("top_k", 5))
    check_positive("task.top_k", top_k, allow_zero=True, integer=True)

    def loss_fn(apply_fn, params, model_state, batch: Mapping[str, jax.Array], rng, train):
        logits, new_state = _logits(apply_fn, params, model_state, batch["image"], rng, train)
        per_example = classification_metrics(logits, batch["label"], top_k)
        return jnp.mean(per_example["loss"]), (new_state, per_example)

    def eval_fn(apply_fn, params, model_state, batch: Mapping[str, jax.Array]):
        logits, _ = _logits(apply_fn, params, model_state, batch["image"], None, False)
        return classification_metrics(logits, batch["label"], top_k)

    names = ("loss", "accuracy") + ((f"top{top_k}_accuracy",) if 0 < top_k < num_classes else ())
    return Task(
        name="classification",
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        train_metric_names=names,
        eval_metric_names=names,
    )
