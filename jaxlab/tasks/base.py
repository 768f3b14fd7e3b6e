"""The task interface: what is learned, as pure functions the generic loop calls.

A task never runs the optimizer or touches devices; the loop does. Per-example outputs let
the loop turn them into exact (sum, count) metrics whatever the device or process count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax

PyTree = Any
# apply_fn(variables, x, *, train, rngs=None, mutable=False) -> outputs, as Flax's Module.apply.
ApplyFn = Callable[..., Any]
# loss_fn(apply_fn, params, model_state, batch, rng, train) ->
#   (scalar loss, (new_model_state, {metric name: per-example values [B]}))
LossFn = Callable[
    [ApplyFn, PyTree, PyTree, Mapping[str, jax.Array], jax.Array, bool],
    tuple[jax.Array, tuple[PyTree, dict[str, jax.Array]]],
]
# eval_fn(apply_fn, params, model_state, batch) -> {metric name: per-example values [B]}
EvalFn = Callable[[ApplyFn, PyTree, PyTree, Mapping[str, jax.Array]], dict[str, jax.Array]]


@dataclasses.dataclass(frozen=True)
class Task:
    """A learning objective.

    Attributes:
      name: the registry name.
      loss_fn: training loss with its per-example metrics (all averaged over examples).
      eval_fn: per-example eval metrics; the loop masks padding and averages exactly.
      train_metric_names: the keys of loss_fn's per-example dict.
      eval_metric_names: the keys of eval_fn's dict.
      input_key: the batch key holding the model input (used to build the model at init).
      train_step: an optional custom step (GANs); None means the loop's generic step.
    """

    name: str
    loss_fn: LossFn
    eval_fn: EvalFn
    train_metric_names: tuple[str, ...]
    eval_metric_names: tuple[str, ...]
    input_key: str = "image"
    train_step: Callable[..., Any] | None = None
