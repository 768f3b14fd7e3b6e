"""Test-time augmentation for classification: average the softmax of several views.

Views by name: `flip` (the image and its horizontal mirror), `crops` (the center plus four
shifted copies: the image shifted by `shift` pixels up/down/left/right with zero padding,
as crops of a padded image). `flip,crops` takes both flips of every crop (10 views).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxlab.config import ConfigError
from jaxlab.losses import accuracy
from jaxlab.metrics import average
from jaxlab.tasks.base import Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.supervised import (
    ApplyFn,
    EvalFn,
    SupervisedState,
    SupervisedTask,
    label_weights,
)

TTA_VIEWS = ("flip", "crops")


def parse_tta(spec: str) -> tuple[str, ...]:
    """Validates a comma-separated TTA spec; returns its view names."""
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    for name in names:
        if name not in TTA_VIEWS:
            raise ConfigError(
                f"unknown eval_tta view {name!r}; valid choices: {', '.join(TTA_VIEWS)}"
            )
    return names


def _shift(x: jax.Array, dy: int, dx: int) -> jax.Array:
    """Shifts NHWC images by (dy, dx) pixels, filling with zeros."""
    h, w = x.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (abs(dy),) * 2, (abs(dx),) * 2, (0, 0)))
    return jax.lax.dynamic_slice_in_dim(
        jax.lax.dynamic_slice_in_dim(padded, abs(dy) - dy, h, axis=1), abs(dx) - dx, w, axis=2
    )


def tta_views(x: jax.Array, names: tuple[str, ...], shift: int = 2) -> list[jax.Array]:
    """The views of a batch of NHWC images for the TTA spec `names`."""
    views = [x]
    if "crops" in names:
        s = max(1, min(shift, x.shape[1] // 4))
        views += [_shift(x, dy, dx) for dy, dx in ((s, 0), (-s, 0), (0, s), (0, -s))]
    if "flip" in names:
        views += [v[:, :, ::-1, :] for v in views]
    return views


def make_tta_eval_fn(names: tuple[str, ...]) -> EvalFn:
    """An eval function (`SupervisedTask`'s `EvalFn`): the masked averages of the loss (of
    the averaged probabilities) and the accuracy over the TTA views."""

    def eval_fn(
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Mapping[str, jax.Array],
        ctx: StepContext | None = None,
    ) -> Metrics:
        variables = {"params": params, **model_state}
        probs = jnp.mean(
            jnp.stack(
                [
                    jax.nn.softmax(apply_fn(variables, v, train=False).astype(jnp.float32))
                    for v in tta_views(batch["image"], names)
                ]
            ),
            axis=0,
        )
        labels = batch["label"]
        weights = label_weights(batch, labels, probs.shape[-1])
        safe = jnp.where(weights, labels, 0)
        label_prob = jnp.take_along_axis(probs, safe[..., None], axis=-1)[..., 0]
        return {
            "loss": average(-jnp.log(jnp.maximum(label_prob, 1e-12)), weights),
            "accuracy": average(accuracy(jnp.log(probs), safe), weights),
        }

    return eval_fn


def make_tta_evaluator(
    task: SupervisedTask, setup: TaskSetup, options: ml_collections.ConfigDict
) -> Any:
    """The `eval_tta` evaluator of a classification task: the eval split with the views of
    `options.views` (an eval_tta spec), with the EMA parameters when the task keeps one."""
    from jaxlab.train.evaluation import DatasetEvaluator  # (jaxlab.train imports tasks)

    eval_fn = make_tta_eval_fn(parse_tta(options.views))

    def eval_step(
        state: SupervisedState, batch: Mapping[str, jax.Array], carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        params = state.ema_params if task.ema_decay is not None else state.params
        return carry, eval_fn(task.model.apply, params, state.model_state, batch, ctx)

    return DatasetEvaluator(
        "eval_tta", eval_step, task.rng_streams, every_steps=int(options.get("every_steps", 0))
    )
