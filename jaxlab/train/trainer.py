"""`Trainer`: one run's host-side machinery around the pure steps.

It owns the parallel mode, the compiled train step (through `Stepper`), the metric fetcher,
the checkpointer and the evaluators, and knows the resume order: this workdir's latest
checkpoint (state, data position, early-stopping record); else `init_from` (the model
variables of another run, never its step counter or optimizer state); else a fresh state
(with the task's data-dependent init, e.g. LSUV, on the first global train batch).
`jaxlab.train.loop.train_and_evaluate` drives it; `jaxlab.analysis.bench` drives it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import jax
from absl import logging

from jaxlab import data
from jaxlab.train.checkpoint import Checkpointer
from jaxlab.train.early_stopping import EarlyStopping
from jaxlab.train.evaluation import EvalContext, EvalResult, Evaluator, evaluator_rng
from jaxlab.train.fetching import LoggedMetrics, MetricFetcher
from jaxlab.train.parallel import Parallel
from jaxlab.train.setup import Experiment
from jaxlab.train.state import TrainState, make_init_fn
from jaxlab.train.stepper import Stepper
from jaxlab.train.steps import make_train_step
from jaxlab.train.transfer import merge_pretrained


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class Trainer:
    """See the module docstring. `async_checkpoints=False` makes every save finish before
    training goes on (needed under `tfds.testing.mock_data`)."""

    def __init__(self, exp: Experiment, workdir: str, *, async_checkpoints: bool = True) -> None:
        config = exp.config
        self.exp, self.config, self.workdir = exp, config, workdir
        self.parallel = Parallel.create(config.parallel.mode)
        self.is_main = jax.process_index() == 0
        step_rows = config.batch_size // (jax.device_count() if self.parallel.axis_name else 1)
        self.init_fn = make_init_fn(
            exp.task,
            exp.example_batch,
            config.seed,
            self.parallel.axis_name,
            step_batch=exp.info.example_batch(step_rows),
        )
        self.train_step = make_train_step(
            exp.task,
            axis_name=self.parallel.axis_name,
            window_every=config.log_every_steps,
            epoch_every=exp.steps_per_epoch,
        )
        abstract = self.parallel.abstract_state(self.init_fn)
        for evaluator in exp.evaluators:
            evaluator.bind(self.parallel, abstract, exp.info)
        self.evaluators: list[Evaluator] = list(exp.evaluators)
        self.fetcher = MetricFetcher(
            self.host, config.log_every_steps, exp.steps_per_epoch, self.check_finite
        )
        self.checkpointer = Checkpointer(
            os.path.join(workdir, "checkpoints"),
            keep=config.keep_checkpoints,
            best_metric=config.best_metric or None,
            best_mode=config.best_mode,
            async_save=async_checkpoints,
        )
        self.stepper: Stepper | None = None

    # --- state -------------------------------------------------------------------------

    def host(self, tree: Any) -> Any:
        """One host copy of replicated device values."""
        return self.parallel.to_host(tree)

    def initial_state(self) -> tuple[TrainState, dict[str, Any]]:
        """The resume order of the module docstring: (state, checkpoint metadata or {})."""
        latest = self.checkpointer.latest_step()
        task = self.exp.task
        if latest is not None:
            abstract = self.parallel.abstract_state(self.init_fn)
            state, meta = self.checkpointer.restore(latest, abstract)
            logging.info("resumed from %s (step %d)", self.checkpointer.directory, latest)
            print(
                f"Resuming from checkpoint at step {latest} (epoch {meta.get('epoch')})",
                flush=True,
            )
            return self.parallel.from_canonical(state), meta
        if self.exp.pretrained is not None:
            fresh = self.host(self.parallel.init_state(self.init_fn))
            variables, report = merge_pretrained(
                task.variables(fresh.task), self.exp.pretrained, self.config.init_head
            )
            print(report.summary(), flush=True)
            task_state = task.with_variables(fresh.task, variables)
            return self.parallel.init_state(self.init_fn, task_state), {}
        if task.needs_data_init:
            # Every process computes it on the same global batch (read as one process), so
            # the state stays identical across processes.
            fresh = self.host(self.parallel.init_state(self.init_fn))
            batch = next(iter(data.create_train_iterator(self.config, self.exp.info)))
            task_state = task.init_from_data(fresh.task, batch)
            return self.parallel.init_state(self.init_fn, task_state), {}
        return self.parallel.init_state(self.init_fn), {}

    def start(self, state: TrainState) -> None:
        """Prepares the compiled step to advance `state`."""
        self.stepper = Stepper(self.parallel, self.train_step, state)

    @property
    def state(self) -> TrainState:
        """The current state (after the steps dispatched so far)."""
        assert self.stepper is not None, "call start(state) first"
        return self.stepper.state

    def check_finite(self) -> None:
        """Raises NonFiniteLossError naming the first non-finite step and the last good
        checkpoint, if a step's metrics were non-finite."""
        bad = int(self.host(self.state.first_nonfinite_step))
        if bad >= 0:
            last = self.checkpointer.latest_step()
            where = (
                f"step {last} in {self.checkpointer.directory}"
                if last is not None
                else "none (no checkpoint was written)"
            )
            raise NonFiniteLossError(
                f"training loss became non-finite at step {bad}; last good checkpoint: {where}"
            )

    # --- steps ---------------------------------------------------------------------------

    def train_one_step(
        self, local_batch: Mapping[str, Any], step: int, total: int
    ) -> list[LoggedMetrics]:
        """One step from `step` to `step + 1`; returns the metrics that are ready to log
        (never waits for the device: see `jaxlab.train.fetching`)."""
        assert self.stepper is not None, "call start(state) first"
        ready = self.fetcher.ready()
        accums = self.stepper.advance(local_batch)
        self.fetcher.set_aside(step + 1, total, accums)
        return self.fetcher.fetch(ready) if ready else []

    def flush(self) -> list[LoggedMetrics]:
        """The metrics still set aside (before an evaluation, a save, the end)."""
        return self.fetcher.flush()

    def evaluate(self, evaluator: Evaluator, step: int) -> EvalResult:
        """Runs one evaluator on the current state."""
        state = self.state
        ctx = EvalContext(
            step=step,
            state=state,
            task=self.exp.task,
            parallel=self.parallel,
            config=self.config,
            info=self.exp.info,
            rng=evaluator_rng(self.host(state.rng), step, evaluator.name),
        )
        return evaluator.run(ctx)

    def save(
        self,
        step: int,
        eval_metrics: dict[str, float] | None,
        early: EarlyStopping | None,
        data_state: dict[str, Any] | None,
    ) -> None:
        """Checkpoints the current state with the data position and the eval metrics."""
        self.check_finite()
        meta = {
            "step": step,
            "epoch": step // self.exp.steps_per_epoch,
            "data_state": data_state,
            "eval": eval_metrics,
            "early_stopping": early.to_dict() if early else None,
        }
        self.checkpointer.save(step, self.parallel.to_canonical(self.state), meta, eval_metrics)

    def train_iterator(self, start: int, meta: Mapping[str, Any]) -> Iterator[Any]:
        """This process's train batches from step `start` (the checkpoint's data state
        when it has one)."""
        kwargs: dict[str, Any] = {}
        if meta.get("data_state"):
            kwargs["state"] = meta["data_state"]
        return data.create_train_iterator(
            self.config,
            self.exp.info,
            start_step=start,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
            **kwargs,
        )


def data_state_of(iterator: Any) -> dict[str, Any] | None:
    """The iterator's opaque position (`get_state()`), or None for an iterator without one
    (then the step is its position)."""
    get_state = getattr(iterator, "get_state", None)
    return dict(get_state()) if get_state else None
