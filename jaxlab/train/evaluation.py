"""Evaluators: periodic jobs on the current state, each on its own schedule.

Every run has the `eval` evaluator: an exact pass over the eval split with the task's eval
step (every example counts once whatever the batch size, device count or process count).
`config.eval_tta` adds the classification task's test-time-augmentation pass (`eval_tta`,
at the end). `config.evaluators.<name>` adds any other evaluator by name, with its options
and `every_steps` (0: at the end only): the task's own (`Task.evaluators()`, e.g. image
samples of a generative model) or one registered here with `register_evaluator`.

An evaluator returns an `EvalResult`: scalars (logged as `<name>/<key>` to TensorBoard,
metrics.jsonl and the console), images (TensorBoard, and PNG files under
`workdir/images/`) and texts (TensorBoard).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxlab import data
from jaxlab.config import ConfigError
from jaxlab.tasks import Task
from jaxlab.tasks.base import PyTree, TaskSetup
from jaxlab.tasks.evaluators import (  # the protocol's classes, re-exported here
    EvalContext,
    EvalResult,
    Evaluator,
)
from jaxlab.train.fetching import compute_metrics
from jaxlab.train.parallel import Parallel
from jaxlab.train.state import TrainState, empty_metrics, eval_shape_on_axis
from jaxlab.train.steps import eval_metric_shapes, make_eval_step

PROGRESS_EVERY_S = 10.0  # a long evaluation reports its progress this often


class DatasetEvaluator(Evaluator):
    """An exact pass over the eval split with a task-protocol eval step
    `(task_state, batch, carry, ctx) -> (carry, metrics)`: metrics accumulated on the
    devices in one compiled step (padding masked by the task), collected outputs (clu
    `CollectingMetric`, padding rows included: collect the 'mask' too) joined on the host
    (logged when their `compute()` gives scalars, else returned as `outputs`), progress
    printed during long passes."""

    def __init__(
        self,
        name: str,
        eval_step: Callable[..., Any],
        rng_streams: tuple[str, ...],
        *,
        every_steps: int = 0,
        init_carry: Callable[[PyTree, Any], PyTree] | None = None,
    ) -> None:
        self.name, self.every_steps = name, every_steps
        self._eval_step, self._rng_streams = eval_step, rng_streams
        self._init_carry = init_carry or (lambda task_state, batch: None)

    def bind(self, parallel: Parallel, abstract_state: TrainState, info: Any) -> None:
        self.parallel = parallel
        example = info.example_batch(1, train=False)
        example["mask"] = np.ones((1,), np.float32)
        axis = parallel.axis_name
        carry = eval_shape_on_axis(self._init_carry, axis, abstract_state.task, example)
        self._empty = empty_metrics(
            eval_metric_shapes(
                self._eval_step, self._rng_streams, abstract_state, example, carry, axis
            )
        )
        self._step = parallel.compile_eval_step(
            make_eval_step(self._eval_step, self._rng_streams, axis_name=axis)
        )
        self._carry = parallel.compile_batch_fn(
            lambda state, batch: self._init_carry(state.task, batch)
        )

    def run(self, ctx: EvalContext) -> EvalResult:
        parallel = self.parallel
        accum = parallel.replicate(self._empty)
        index = parallel.replicate(np.zeros((), np.int32))
        collected: dict[str, Any] = {}
        total = data.num_eval_batches(ctx.config, ctx.info, jax.process_count())
        carry: Any = None
        last_report = t0 = time.time()
        for i, batch in enumerate(ctx.eval_batches()):
            batch = parallel.step_input(batch)
            if carry is None:
                carry = (accum, self._carry(ctx.state, batch), index)
            carry, outputs = self._step(ctx.state, batch, carry)
            for name, metric in parallel.batch_to_host(outputs).items():
                collected[name] = collected[name].merge(metric) if name in collected else metric
            if time.time() - last_report > PROGRESS_EVERY_S:
                last_report = time.time()
                print(
                    f"{self.name} at step {ctx.step}: batch {i + 1}/{total} "
                    f"({time.time() - t0:.0f}s)",
                    flush=True,
                )
        accum = ctx.host(carry[0] if carry is not None else accum)
        scalars = compute_metrics(accum)
        outputs: dict[str, Any] = {}
        for name, metric in collected.items():
            value = metric.compute()
            if _is_scalars(value):
                scalars.update(compute_metrics({name: metric}))
            else:
                outputs[name] = value
        return EvalResult(scalars=scalars, outputs=outputs)


def _is_scalars(value: Any) -> bool:
    """Whether a computed metric is a scalar or a dict of scalars (else: arrays)."""
    if isinstance(value, Mapping):
        return all(np.ndim(v) == 0 for v in value.values())
    return np.ndim(value) == 0


EvaluatorFactory = Callable[[Task, TaskSetup, ml_collections.ConfigDict], Evaluator]
_REGISTRY: dict[str, EvaluatorFactory] = {}


def register_evaluator(name: str, factory: EvaluatorFactory) -> None:
    """Makes `config.evaluators.<name>` build an evaluator with `factory(task, setup,
    options)` for any task (a task's own `evaluators()` take precedence)."""
    _REGISTRY[name] = factory


def list_evaluators(task: Task) -> list[str]:
    """The evaluator names `config.evaluators` accepts for `task`."""
    return sorted(set(_REGISTRY) | set(task.evaluators()))


def build_evaluators(task: Task, setup: TaskSetup) -> list[Evaluator]:
    """The run's evaluators: `eval`, then `eval_tta` when `config.eval_tta`, then those of
    `config.evaluators` in order. Raises ConfigError for an unknown name or bad options."""
    config = setup.config
    evaluators: list[Evaluator] = [
        DatasetEvaluator(
            "eval",
            task.eval_step,
            task.rng_streams,
            every_steps=config.eval_every_steps,
            init_carry=task.init_eval_carry,
        )
    ]
    offered = task.evaluators()
    if config.get("eval_tta"):
        if "tta" not in offered:
            raise ConfigError(f"eval_tta needs a classification task, got {task.name!r}")
        options = ml_collections.ConfigDict({"views": config.eval_tta, "every_steps": 0})
        evaluators.append(offered["tta"](task, setup, options))
    sections: Mapping[str, Any] = config.get("evaluators") or {}
    for name in sections:
        factory = offered.get(name) or _REGISTRY.get(name)
        if factory is None:
            raise ConfigError(
                f"unknown evaluator {name!r}; valid choices: "
                f"{', '.join(list_evaluators(task)) or 'none for this task'}"
            )
        options = sections[name]
        every = options.get("every_steps", 0)
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ConfigError(
                f"evaluators.{name}.every_steps must be an integer >= 0, got {every!r}"
            )
        evaluators.append(factory(task, setup, options))
    return evaluators


def evaluator_rng(state_rng: np.ndarray, step: int, name: str) -> jax.Array:
    """An evaluator's key at `step`: the run key's eval branch folded with the step and the
    evaluator's name (so two evaluators never share numbers)."""
    key = jax.random.split(jax.random.wrap_key_data(np.asarray(state_rng)))[1]
    key = jax.random.fold_in(jax.random.fold_in(key, step), zlib.crc32(name.encode()))
    return key
