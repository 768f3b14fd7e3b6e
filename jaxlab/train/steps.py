"""The loop's pure train and eval steps around a task's own steps, for every parallel mode.

The loop's part of a train step: empty the accumulators a previous step filled to the end
of a log window or epoch, derive the step's named rngs, call `task.train_step`, reduce the
task's metrics over the devices (pmap), accumulate them, and record the first non-finite
step. Under jit with a sharded batch the arrays are global, so metrics are global already;
under pmap each metric is gathered over the device axis and reduced (clu's
`Metric.reduce`), which gives the same numbers up to float32 summation order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import chex
import jax
import jax.numpy as jnp
from clu import metrics as clu_metrics

from jaxlab.tasks import Task
from jaxlab.tasks.base import Metrics, StepContext, stream_keys
from jaxlab.train.state import TrainState, eval_shape_on_axis

PyTree = Any
Batch = Mapping[str, jax.Array]
EvalCarry = tuple[Metrics, PyTree, jax.Array]  # (accumulators, task carry, batch index)


def step_rng(state_rng: jax.Array, step: jax.Array, axis_name: str | None) -> jax.Array:
    """The base key of one train step: `fold_in(run key, step)`, and the device index under
    pmap (so dropout masks differ per device), so a resumed run draws the same numbers."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state_rng), step)
    if axis_name:
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    return key


def eval_rng(state_rng: jax.Array, step: jax.Array, index: jax.Array) -> jax.Array:
    """The base key of eval batch `index` after `step` updates (a chain apart from the
    train steps': split off the run key first)."""
    key = jax.random.split(jax.random.wrap_key_data(state_rng))[1]
    return jax.random.fold_in(jax.random.fold_in(key, step), index)


def check_same_layout(what: str, before: PyTree, after: PyTree) -> None:
    """Raises TypeError (at trace time) unless `after` has the structure, shapes and dtypes
    of `before`: a state that changes them would recompile the step every time and could
    not be donated."""
    try:
        chex.assert_trees_all_equal_shapes_and_dtypes(before, after)
    except AssertionError as e:
        first = str(e).strip().splitlines()[0]
        raise TypeError(
            f"{what} must return a state with the structure, shapes and dtypes it was given "
            f"(it is fed back to the next step): {first}"
        ) from None


def reduce_over_devices(metrics: Metrics, axis_name: str | None) -> Metrics:
    """Each metric gathered over the pmap axis and reduced (clu's way); the identity under
    jit. Collected outputs (clu CollectingMetric) are left per device: the host joins them."""
    if not axis_name:
        return metrics
    out = {}
    for name, m in metrics.items():
        if isinstance(m, clu_metrics.CollectingMetric):
            out[name] = m
        else:
            out[name] = jax.tree.map(lambda x: jax.lax.all_gather(x, axis_name), m).reduce()
    return out


def merge_metrics(accum: Metrics, new: Metrics) -> Metrics:
    """Accumulators merged with one step's metrics, name by name."""
    return {k: accum[k].merge(new[k]) for k in accum}


def all_finite(metrics: Metrics) -> jax.Array:
    """Whether every floating value of the metrics is finite."""
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(metrics)
        if jnp.issubdtype(x.dtype, jnp.floating)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _empty_if(ended: jax.Array, accum: Metrics) -> Metrics:
    return jax.tree.map(lambda a: jnp.where(ended, jnp.zeros_like(a), a), accum)


def make_train_step(
    task: Task,
    *,
    axis_name: str | None = None,
    window_every: int | None = None,
    epoch_every: int | None = None,
) -> Callable[[TrainState, Batch], TrainState]:
    """Returns the pure step `(state, batch) -> state` (metrics accumulate in the state).

    With `window_every` (the log interval) and `epoch_every` (steps per epoch), the step
    starts by emptying the train-window or epoch accumulators when the previous step ended
    a window or an epoch (`state.step` a multiple): the host reads the filled ones from the
    previous state and never dispatches a reset. A state saved at such a step still holds
    the filled (already logged) accumulators; the next step empties them either way.
    `ctx.epoch_start` tells the task that this step begins an epoch (reset a carried state).
    """

    def step(state: TrainState, batch: Batch) -> TrainState:
        train_metrics, epoch_metrics = state.train_metrics, state.epoch_metrics
        if window_every:
            train_metrics = _empty_if(state.step % window_every == 0, train_metrics)
        if epoch_every:
            epoch_metrics = _empty_if(state.step % epoch_every == 0, epoch_metrics)
        key = step_rng(state.rng, state.step, axis_name)
        ctx = StepContext(
            step=state.step,
            rngs=stream_keys(key, task.rng_streams),
            axis_name=axis_name,
            epoch_start=state.step % epoch_every == 0 if epoch_every else state.step == 0,
        )
        task_state, metrics = task.train_step(state.task, batch, ctx)
        check_same_layout(f"task {task.name!r}: train_step", state.task, task_state)
        metrics = reduce_over_devices(metrics, axis_name)
        first_bad = jnp.where(
            (state.first_nonfinite_step < 0) & ~all_finite(metrics),
            state.step + 1,
            state.first_nonfinite_step,
        )
        return state.replace(
            step=state.step + 1,
            task=task_state,
            train_metrics=merge_metrics(train_metrics, metrics),
            epoch_metrics=merge_metrics(epoch_metrics, metrics),
            first_nonfinite_step=first_bad,
        )

    return step


def split_collected(metrics: Metrics) -> tuple[Metrics, Metrics]:
    """(metrics accumulated on the devices, collected outputs joined on the host)."""
    reduced = {k: m for k, m in metrics.items() if not isinstance(m, clu_metrics.CollectingMetric)}
    collected = {k: m for k, m in metrics.items() if k not in reduced}
    return reduced, collected


def make_eval_step(
    eval_step: Callable[..., tuple[PyTree, Metrics]],
    rng_streams: tuple[str, ...],
    *,
    axis_name: str | None = None,
) -> Callable[[TrainState, Batch, EvalCarry], tuple[EvalCarry, Metrics]]:
    """Returns the pure step `(state, batch, (accum, carry, index)) -> ((accum, carry,
    index + 1), collected)` around a task-protocol eval step `(task_state, batch, carry,
    ctx) -> (carry, metrics)`. Padding (mask 0) must not count in the task's metrics;
    the step's rngs come from (run key, step, batch index). Start `accum` from
    `empty_metrics` of `eval_metric_shapes`."""

    def step(state: TrainState, batch: Batch, carry: EvalCarry) -> tuple[EvalCarry, Metrics]:
        accum, task_carry, index = carry
        key = eval_rng(state.rng, state.step, index)
        if axis_name:
            key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
        ctx = StepContext(step=state.step, rngs=stream_keys(key, rng_streams), axis_name=axis_name)
        new_carry, metrics = eval_step(state.task, batch, task_carry, ctx)
        check_same_layout("eval_step's carry", task_carry, new_carry)
        task_carry = new_carry
        reduced, collected = split_collected(reduce_over_devices(metrics, axis_name))
        return (merge_metrics(accum, reduced), task_carry, index + 1), collected

    return step


def eval_metric_shapes(
    eval_step: Callable[..., tuple[PyTree, Metrics]],
    rng_streams: tuple[str, ...],
    abstract_state: TrainState,
    example_batch: Batch,
    carry: PyTree,
    axis_name: str | None = None,
) -> Metrics:
    """The abstract device-accumulated metrics of an eval step (no computation)."""

    def metrics_of(state: TrainState, batch: Batch, task_carry: PyTree) -> Metrics:
        key = eval_rng(state.rng, state.step, jnp.zeros((), jnp.int32))
        ctx = StepContext(step=state.step, rngs=stream_keys(key, rng_streams), axis_name=axis_name)
        return split_collected(eval_step(state.task, batch, task_carry, ctx)[1])[0]

    return eval_shape_on_axis(metrics_of, axis_name, abstract_state, example_batch, carry)
