"""The pointer task: a pointer network (`pointer_net`) on `sort_numbers`.

Batches hold 'values' float32 [B, N] and 'pointers' int32 [B, N] (the input positions in
sorted order). Loss: cross entropy of the teacher-forced pointer distributions, averaged
over the pointers. Eval: `loss`, `pointer_accuracy` (teacher forced) and `exact_match`
(greedy decoding gives the whole permutation).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxlab import losses
from jaxlab.config import ConfigError
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, StepContext, TaskSetup
from jaxlab.tasks.supervised import SupervisedState, SupervisedTask


class PointerTask(SupervisedTask):
    """`SupervisedTask` whose model takes (values, pointers)."""

    def init_state(self, batch: Batch, ctx: StepContext) -> SupervisedState:
        """Initializes the model on one example."""
        variables = self.model.init(
            {"params": ctx.rng("params"), "dropout": ctx.rng("dropout")},
            batch["values"][:1],
            batch["pointers"][:1],
            train=False,
        )
        return self.from_variables(variables)


def _loss_fn(apply_fn, params, model_state, batch, ctx, train):
    logits = apply_fn({"params": params}, batch["values"], batch["pointers"], train=train)
    xent = losses.softmax_cross_entropy(logits, batch["pointers"])
    mask = batch.get("mask")
    metrics = {
        "loss": average(xent, mask),
        "pointer_accuracy": average(jnp.argmax(logits, -1) == batch["pointers"], mask),
    }
    return jnp.mean(xent), (model_state, metrics)


def _eval_fn(apply_fn, params, model_state, batch, ctx) -> Metrics:
    _, (_, metrics) = _loss_fn(apply_fn, params, model_state, batch, ctx, False)
    pointers, _ = apply_fn(
        {"params": params}, batch["values"], batch["pointers"].shape[1], method="greedy"
    )
    exact = jnp.all(pointers == batch["pointers"], axis=1)
    metrics["exact_match"] = average(exact, batch["mask"])
    return metrics


def make_pointer_task(setup: TaskSetup) -> PointerTask:
    """Builds the pointer task; ConfigError for a dataset without 'values' and 'pointers'."""
    config, info = setup.config, setup.info
    if not {"values", "pointers"} <= set(info.features):
        raise ConfigError(
            f"task 'pointer' needs a dataset with 'values' and 'pointers' (e.g. sort_numbers); "
            f"{info.name!r} has {', '.join(info.features)}"
        )
    model = build_model(
        config.model.name, {k: v for k, v in config.model.to_dict().items() if k != "name"}
    )
    return PointerTask(
        name="pointer",
        model=model,
        loss_fn=_loss_fn,
        eval_fn=_eval_fn,
        optimizer=setup.optimizer(),
        input_key="values",
        train_metric_names=("loss", "pointer_accuracy"),
        eval_metric_names=("loss", "pointer_accuracy", "exact_match"),
        ema_decay=ema_decay(config),
    )


__all__ = ["PointerTask", "make_pointer_task"]
