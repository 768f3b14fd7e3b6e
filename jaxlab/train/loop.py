"""The generic training loop: `train_and_evaluate(config, workdir)`.

The loop never knows which task it runs: it builds the experiment (`setup`), resumes or
initializes the state (`Trainer.initial_state`), then per step hands a batch to the
compiled step, writes the metrics that are ready, runs the evaluators that are due, saves
checkpoints (with the data iterator's position), and stops on SIGTERM/SIGINT, early
stopping or the last step. A resumed run sees the same batches, draws the same rngs and
logs the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from clu import periodic_actions

from jaxlab.train import reporting
from jaxlab.train.early_stopping import EarlyStopping
from jaxlab.train.evaluation import EvalResult
from jaxlab.train.fetching import LoggedMetrics
from jaxlab.train.setup import build_experiment, maybe_initialize_distributed, run_record
from jaxlab.train.trainer import NonFiniteLossError, Trainer, data_state_of
from jaxlab.train.workdir import WorkdirBusyError, stop_signals, workdir_lock

__all__ = ["NonFiniteLossError", "WorkdirBusyError", "train_and_evaluate"]


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    async_checkpoints: bool = True,
    launch_time: float | None = None,
) -> dict[str, float]:
    """Trains and evaluates the experiment `config` in `workdir`; returns the final metrics
    of the `eval` evaluator.

    `async_checkpoints=False` makes every save finish before training goes on (needed under
    `tfds.testing.mock_data`, which fakes the file system while a pipeline is built).
    `launch_time` (a `time.time()` taken when the command started) makes the loop print the
    time from launch to the end of the first step (imports, data, compilation).
    Raises ConfigError before writing anything when the config is wrong, WorkdirBusyError
    when another run holds the workdir, NonFiniteLossError when the loss diverges.
    """
    maybe_initialize_distributed(config)
    exp = build_experiment(config)
    with workdir_lock(workdir, jax.process_index()):
        trainer = Trainer(exp, workdir, async_checkpoints=async_checkpoints)
        return _train(trainer, launch_time)


def _train(trainer: Trainer, launch_time: float | None = None) -> dict[str, float]:
    exp, config, workdir = trainer.exp, trainer.config, trainer.workdir
    total, spe = exp.num_train_steps, exp.steps_per_epoch
    state, meta = trainer.initial_state()
    start = int(trainer.host(state.step))
    early = EarlyStopping.from_dict(
        meta.get("early_stopping"),
        metric=config.best_metric or exp.task.eval_metric_names[0],
        mode=config.best_mode if config.best_metric else "min",
        patience=config.early_stopping.patience,
        min_delta=config.early_stopping.min_delta,
    )
    if early.stopped_at is not None or start >= total:
        if early.stopped_at is not None:
            print(
                f"Run was stopped early at step {early.stopped_at} (best {early.metric} "
                f"{early.best:.4f} at step {early.best_step}).",
                flush=True,
            )
        else:
            print(f"Run already complete at step {start} (num_train_steps {total}).", flush=True)
        trainer.checkpointer.close()
        return dict(meta.get("eval") or {})
    metrics_path = os.path.join(workdir, reporting.METRICS_FILE)
    if trainer.is_main:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump(run_record(config), f, indent=2)
        # Rows after the checkpoint are re-logged; rows a finished run logged only because it
        # ended at `start` (off the log/eval grids) are not part of a longer run's log.
        reporting.truncate_metrics(
            metrics_path, start, keep_at_last=lambda row: _on_grids(row, start, trainer)
        )
    writer = reporting.create_writer(workdir, jax.process_index())
    if start == 0:
        writer.write_hparams(reporting.flatten_config(config.to_dict()))
    progress = reporting.ProgressLine(total, exp.task.train_metric_names)
    report = periodic_actions.ReportProgress(
        num_train_steps=total, every_steps=config.log_every_steps
    )
    train_iter = trainer.train_iterator(start, meta)
    print(
        f"Training {config.model.get('name')} on {exp.info.name} (task {exp.task.name}): "
        f"steps {start} -> {total} ({spe} steps/epoch), {config.parallel.mode} on "
        f"{jax.device_count()} device(s)",
        flush=True,
    )
    trainer.start(state)
    eval_metrics: dict[str, float] = {}
    last_saved = start if trainer.checkpointer.latest_step() == start else -1

    def write(items: list[LoggedMetrics]) -> None:
        for item in items:
            _write_logged(writer, progress, item, spe)

    with stop_signals() as stop:
        step = start
        while step < total:
            logged = trainer.train_one_step(next(train_iter), step, total)
            step += 1
            if step == start + 1:
                progress.start(step)  # steps/s from here: compilation is behind us
                if launch_time is not None:
                    jax.block_until_ready(trainer.state.step)
                    print(
                        f"First step done {time.time() - launch_time:.1f}s after launch "
                        "(imports, data, compilation)",
                        flush=True,
                    )
            report(step)
            write(logged)
            evaluated = None
            stopping = False
            for evaluator in trainer.evaluators:
                at_end = step == total or (evaluator.name != "eval" and stopping)
                if not (evaluator.due(step, total) or at_end):
                    continue
                write(trainer.flush())  # evaluation waits for the device anyway
                result = trainer.evaluate(evaluator, step)
                _write_result(writer, evaluator.name, step, result)
                if evaluator.name == "eval":
                    eval_metrics = evaluated = result.scalars
                    stopping = early.update(step, evaluated)
            if stopping:
                print(
                    f"Early stopping at step {step}: no {early.metric} improvement in "
                    f"{early.patience} evaluations (best {early.best:.4f} at step "
                    f"{early.best_step}).",
                    flush=True,
                )
                if trainer.is_main:
                    early.write(workdir)
            if (
                (config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0)
                or step == total
                or stop["signal"]
                or early.stopped_at == step
            ) and step != last_saved:
                write(trainer.flush())  # logged before the checkpoint that covers them
                trainer.save(step, evaluated, early, data_state_of(train_iter))
                last_saved = step
            if early.stopped_at == step:
                break
            if stop["signal"]:
                print(
                    f"Received {stop['signal']}: saved a checkpoint at step {step}; "
                    "re-run the same command to resume.",
                    flush=True,
                )
                break
    trainer.checkpointer.close()
    writer.flush()
    if trainer.is_main:
        reporting.plot_curves(workdir)
    return eval_metrics


def _write_logged(
    writer: Any, progress: reporting.ProgressLine, item: LoggedMetrics, steps_per_epoch: int
) -> None:
    """Writes a train window's or an epoch's metrics at the step that ended it; a train
    window also prints the progress line."""
    if item.kind == "train":
        writer.write_scalars(item.step, reporting.finite_scalars("train", item.values))
        progress(item.step, item.values)
    else:
        writer.write_scalars(
            item.step,
            {
                "epoch": item.step // steps_per_epoch,
                **reporting.finite_scalars("epoch", item.values),
            },
        )


def _write_result(writer: Any, name: str, step: int, result: EvalResult) -> None:
    """Writes and prints an evaluator's result (NaN scalars, e.g. the IoU of an absent
    class, are printed but not written)."""
    if result.scalars:
        writer.write_scalars(step, reporting.finite_scalars(name, result.scalars))
        shown = ", ".join(f"{k} {v:.4f}" for k, v in result.scalars.items() if np.isfinite(v))
        print(f"{name} at step {step}: {shown}", flush=True)
    if result.images:
        writer.write_images(step, {f"{name}/{k}": v for k, v in result.images.items()})
    if result.texts:
        writer.write_texts(step, {f"{name}/{k}": v for k, v in result.texts.items()})


def _on_grids(row: dict[str, Any], step: int, trainer: Trainer) -> bool:
    """Whether a metrics row logged at `step` belongs to the regular log/eval grids."""
    if any(k.startswith("train/") for k in row):
        return step % trainer.config.log_every_steps == 0
    every = {e.name: e.every_steps for e in trainer.evaluators}
    for name, n in every.items():
        if any(k.startswith(f"{name}/") for k in row):
            return bool(n) and step % n == 0
    return True
