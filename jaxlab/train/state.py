"""The loop's training state: the task's opaque state plus what the loop itself owns.

The state holds everything a resumed run needs to continue bit for bit: the step, the
task's state (parameters, optimizer states, EMA teachers, queues, carried recurrent state:
whatever the task keeps), the run's base rng, the metric accumulators of the current log
window and epoch, and the first step whose metrics were non-finite (-1 if none). The data
iterator's position is checkpointed beside it (see `jaxlab.train.loop`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp

from jaxlab.tasks import Task
from jaxlab.tasks.base import Metrics, StepContext, stream_keys

PyTree = Any


@flax.struct.dataclass
class TrainState:
    """All state of a run (a pytree; checkpointed whole)."""

    step: jax.Array
    task: PyTree  # the task's own state, opaque to the loop
    rng: jax.Array  # raw uint32 key data of the run's base key of per-step rngs
    train_metrics: Metrics  # accumulated since the last train log
    epoch_metrics: Metrics  # accumulated since the start of the epoch
    first_nonfinite_step: jax.Array


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """Returns (init key, base key of the per-step rngs) derived from the seed."""
    root = jax.random.key(seed)
    return jax.random.fold_in(root, 0), jax.random.fold_in(root, 1)


def init_context(task: Task, seed: int) -> StepContext:
    """The StepContext of a task's `init_state`: its streams split from the init key."""
    init_key, _ = run_keys(seed)
    return StepContext(step=jnp.zeros((), jnp.int32), rngs=stream_keys(init_key, task.rng_streams))


def empty_metrics(abstract: Metrics) -> Metrics:
    """All-zero accumulators shaped like `abstract` (every metric the loop accumulates is a
    sum/count structure whose empty state is zeros, as clu's Average and LastValue)."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), abstract)


def eval_shape_on_axis(fn: Callable[..., Any], axis_name: str | None, *args: Any) -> Any:
    """`jax.eval_shape(fn, *args)`, traced inside a mapped axis `axis_name` of size 1 when
    given, so that collectives over the pmap axis (batch-norm statistics, `ctx.pmean`)
    trace as they do in the compiled steps."""
    if not axis_name:
        return jax.eval_shape(fn, *args)
    mapped = jax.vmap(fn, in_axes=None, axis_size=1, axis_name=axis_name)
    out = jax.eval_shape(mapped, *args)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype), out)


def train_metric_shapes(
    task: Task, example_batch: Mapping[str, Any], seed: int, axis_name: str | None = None
) -> Metrics:
    """The abstract metrics a task's train step returns (no computation)."""

    def metrics_of(batch: Mapping[str, Any]) -> Metrics:
        ctx = init_context(task, seed)
        state = task.init_state(batch, ctx)
        ctx = ctx.replace(epoch_start=jnp.asarray(True), axis_name=axis_name)
        return task.train_step(state, batch, ctx)[1]

    return eval_shape_on_axis(metrics_of, axis_name, example_batch)


def make_init_fn(
    task: Task,
    example_batch: Mapping[str, Any],
    seed: int,
    axis_name: str | None = None,
    step_batch: Mapping[str, Any] | None = None,
) -> Callable[..., TrainState]:
    """Returns a pure function building the initial state (run it under jit or eval_shape).

    Called with no argument it initializes the task from the seed; called with a task state
    (e.g. one holding pretrained variables) it starts from that. `axis_name`: the pmap axis
    the steps run on (the metrics' shapes are traced on it). `step_batch`: zeros shaped like
    the batch one compiled train step sees (the global batch under jit, a device's under
    pmap), on which the train step is traced for its metric shapes, so that a task keeping
    per-row state (a recurrent carry) traces with its real rows; `example_batch` when None.
    """
    metric_shapes = train_metric_shapes(
        task, example_batch if step_batch is None else step_batch, seed, axis_name
    )

    def init(task_state: PyTree | None = None) -> TrainState:
        _, step_key = run_keys(seed)
        if task_state is None:
            task_state = task.init_state(example_batch, init_context(task, seed))
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            task=task_state,
            rng=jax.random.key_data(step_key),
            train_metrics=empty_metrics(metric_shapes),
            epoch_metrics=empty_metrics(metric_shapes),
            first_nonfinite_step=jnp.full((), -1, jnp.int32),
        )

    return init
