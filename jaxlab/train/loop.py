"""The generic training loop: `train_and_evaluate(config, workdir)`.

Resume order: this workdir's latest checkpoint, else a fresh initial state. The state's
step is also the data iterator's position, so a resumed run sees the same batches, draws the
same dropout masks and logs the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import json
import os
import signal
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import periodic_actions

from jaxlab import data, optim
from jaxlab.nn import lsuv_init
from jaxlab.tasks.tta import make_tta_eval_fn, parse_tta
from jaxlab.train import reporting
from jaxlab.train.checkpoint import Checkpointer
from jaxlab.train.early_stopping import EarlyStopping
from jaxlab.train.parallel import Parallel
from jaxlab.train.setup import (
    Experiment,
    build_experiment,
    maybe_initialize_distributed,
    run_record,
)
from jaxlab.train.state import TrainState, make_collections, make_init_fn
from jaxlab.train.steps import make_eval_step, make_train_step
from jaxlab.train.transfer import merge_pretrained


@dataclasses.dataclass(frozen=True)
class PendingMetrics:
    """Metric accumulators of a finished log window or epoch, still on the devices."""

    kind: str  # 'train' (a log window) or 'epoch'
    step: int  # the step that ended it
    metrics: Any  # clu metrics.Collection in the steps' layout


@dataclasses.dataclass(frozen=True)
class LoggedMetrics:
    """Computed metrics of a log window or epoch, ready to write."""

    kind: str
    step: int
    values: dict[str, Any]


class FlatState(NamedTuple):
    """A TrainState as the compiled train step takes and returns it: the leaves of the state
    without its metric accumulators (donated to the step) and the leaves of the accumulators
    (not donated). `_Run.flatten` / `_Run.unflatten` convert."""

    core: list[jax.Array]
    accums: list[jax.Array]


MAX_STEPS_AHEAD = 3  # dispatched train steps the host may run ahead of the device


class WorkdirBusyError(RuntimeError):
    """Another live process holds the workdir."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@contextlib.contextmanager
def workdir_lock(workdir: str, process_index: int) -> Iterator[None]:
    """Holds an exclusive lock on the workdir for this process (released even on SIGKILL)."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, f".lock-{process_index}")
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        owner = f.read().strip() or "?"
        f.close()
        raise WorkdirBusyError(
            f"workdir {workdir} is in use by another run (pid {owner}); wait for it to end "
            "or use another --workdir"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    try:
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


@contextlib.contextmanager
def _stop_signals() -> Iterator[dict[str, Any]]:
    """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""
    flag: dict[str, Any] = {"signal": None}

    def handler(signum, _frame):
        flag["signal"] = signal.Signals(signum).name

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _is_ready(tree: Any) -> bool:
    """Whether the step that computed `tree` has finished (never blocks). All outputs of one
    execution become ready together, so one array tells."""
    return jax.tree.leaves(tree)[0].is_ready()


def _scalars(prefix: str, values: dict[str, Any]) -> dict[str, float]:
    """Prefixed floats; metrics with nothing accumulated (0/0: NaN) are left out."""
    out = {f"{prefix}/{k}": float(np.asarray(v)) for k, v in values.items()}
    return {k: v for k, v in out.items() if not np.isnan(v)}


class _Run:
    """One run's mutable host-side machinery around the pure steps."""

    def __init__(self, exp: Experiment, workdir: str, *, async_checkpoints: bool = True) -> None:
        config = exp.config
        self.exp, self.config, self.workdir = exp, config, workdir
        self.parallel = Parallel.create(config.parallel.mode)
        self.is_main = jax.process_index() == 0
        train_c, epoch_c, self.eval_collection = make_collections(
            exp.task.train_metric_names, exp.task.eval_metric_names, config.log_norms
        )
        ema = optim.ema_decay(config)
        self.init_fn = make_init_fn(
            exp.model,
            exp.tx,
            exp.info.image_shape,
            config.seed,
            train_c,
            epoch_c,
            use_ema=ema is not None,
        )
        axis = self.parallel.axis_name
        step = make_train_step(
            exp.task,
            exp.model.apply,
            exp.tx,
            exp.schedule,
            axis_name=axis,
            needs_hvp=optim.needs_hvp(config),
            ema_decay=ema,
            norms_every=config.log_every_steps if config.log_norms else None,
            window_every=config.log_every_steps,
            epoch_every=exp.steps_per_epoch,
        )

        # The compiled step takes and returns the state as a FlatState: flat lists of arrays
        # (no pytree nodes to walk or build on the host at each step), the metric
        # accumulators apart and not donated, so the host can still read the previous
        # step's after dispatching the next.
        self._treedefs: tuple[Any, Any] | None = None

        def flat_step(core: list, accums: list, batch: Any) -> FlatState:
            return self.flatten(step(self.unflatten(FlatState(core, accums)), batch))

        self.train_step = self.parallel.compile_train_step(flat_step, donate=(True, False))
        # With an EMA of the parameters, evaluation uses the EMA (optimizer.ema_decay > 0).
        self.eval_step = self.parallel.compile_eval_step(
            make_eval_step(exp.task, exp.model.apply, axis_name=axis, use_ema=ema is not None)
        )
        self.tta_step = None
        if config.eval_tta:  # test-time augmentation at the final evaluation
            tta_task = dataclasses.replace(
                exp.task,
                eval_fn=make_tta_eval_fn(parse_tta(config.eval_tta)),
                eval_metric_names=("loss", "accuracy"),
            )
            self.tta_collection = make_collections((), tta_task.eval_metric_names)[2]
            self.tta_step = self.parallel.compile_eval_step(
                make_eval_step(tta_task, exp.model.apply, axis_name=axis, use_ema=ema is not None)
            )
        self.log_every, self.steps_per_epoch = config.log_every_steps, exp.steps_per_epoch
        self.pending: list[PendingMetrics] = []
        # One (not donated) output array of each step still running, oldest first.
        self.in_flight: collections.deque[jax.Array] = collections.deque()
        self.checkpointer = Checkpointer(
            os.path.join(workdir, "checkpoints"),
            keep=config.keep_checkpoints,
            best_metric=config.best_metric or None,
            best_mode=config.best_mode,
            async_save=async_checkpoints,
        )

    def flatten(self, state: TrainState) -> FlatState:
        """The state as the compiled step takes it (see FlatState)."""
        core, core_def = jax.tree.flatten(state.replace(train_metrics=None, epoch_metrics=None))
        accums, accums_def = jax.tree.flatten((state.train_metrics, state.epoch_metrics))
        if self._treedefs is None:
            self._treedefs = (core_def, accums_def)
        return FlatState(core, accums)

    def unflatten(self, flat: FlatState) -> TrainState:
        """The TrainState of a FlatState made by `flatten`."""
        assert self._treedefs is not None, "flatten a TrainState first"
        core_def, accums_def = self._treedefs
        train_metrics, epoch_metrics = jax.tree.unflatten(accums_def, flat.accums)
        state = jax.tree.unflatten(core_def, flat.core)
        return state.replace(train_metrics=train_metrics, epoch_metrics=epoch_metrics)

    def state_of(self, state: TrainState | FlatState) -> TrainState:
        """A TrainState, whichever form `state` has."""
        return self.unflatten(state) if isinstance(state, FlatState) else state

    def initial_state(self) -> tuple[TrainState, dict[str, Any]]:
        """The latest checkpoint of this workdir with its metadata, else a fresh state."""
        latest = self.checkpointer.latest_step()
        if latest is None and self.exp.pretrained is not None:
            fresh = self.host(self.parallel.init_state(self.init_fn))
            variables, report = merge_pretrained(
                {"params": fresh.params, **fresh.model_state},
                self.exp.pretrained,
                self.config.init_head,
            )
            print(report.summary(), flush=True)
            return self.parallel.init_state(self.init_fn, variables), {}
        if latest is None and self.config.model.get("kernel_init") == "lsuv":
            return self.parallel.init_state(self.init_fn, self.lsuv_variables()), {}
        if latest is None:
            return self.parallel.init_state(self.init_fn), {}
        state, meta = self.checkpointer.restore(latest, self.parallel.abstract_state(self.init_fn))
        logging.info("resumed from %s (step %d)", self.checkpointer.directory, latest)
        print(f"Resuming from checkpoint at step {latest} (epoch {meta.get('epoch')})", flush=True)
        return self.parallel.from_canonical(state), meta

    def lsuv_variables(self) -> dict[str, Any]:
        """LSUV's data-dependent step (`jaxlab.nn.lsuv_init`) on the first global train batch:
        the model's `kernel_init='lsuv'` drew orthogonal kernels; each layer is now rescaled
        to unit output variance. Every process computes it on the same batch (read as one
        process), so the parameters stay identical across processes."""
        fresh = self.host(self.parallel.init_state(self.init_fn))
        batch = next(data.create_train_iterator(self.config, self.exp.info))
        variables, variances = lsuv_init(
            self.exp.model, {"params": fresh.params, **fresh.model_state}, batch["image"]
        )
        print(
            "LSUV output variances: " + ", ".join(f"{k} {v:.3f}" for k, v in variances.items()),
            flush=True,
        )
        return variables

    def on_log_grid(self, step: int) -> bool:
        return step % self.log_every == 0

    def on_eval_grid(self, step: int) -> bool:
        return bool(self.config.eval_every_steps) and step % self.config.eval_every_steps == 0

    def host(self, tree: Any) -> Any:
        return self.parallel.to_host(tree)

    def check_finite(self, state: TrainState | FlatState) -> None:
        bad = int(self.host(self.state_of(state).first_nonfinite_step))
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

    def save(
        self,
        state: TrainState | FlatState,
        step: int,
        eval_metrics: dict[str, float] | None,
        early: EarlyStopping | None = None,
    ) -> None:
        state = self.state_of(state)
        self.check_finite(state)
        meta = {
            "step": step,
            "epoch": step // self.exp.steps_per_epoch,
            "data_position": step,
            "eval": eval_metrics,
            "early_stopping": early.to_dict() if early else None,
        }
        self.checkpointer.save(step, self.parallel.to_canonical(state), meta, eval_metrics)

    def train_one_step(
        self, state: TrainState | FlatState, local_batch: dict[str, Any], step: int, total: int
    ) -> tuple[FlatState, list[LoggedMetrics]]:
        """One step from `step` to `step + 1` and its host bookkeeping; returns the new state
        and the metrics that are ready to log.

        At the end of a log window (or the last step) the window's train metrics, at the end
        of an epoch the epoch's, are set aside; the next step starts from empty ones (in the
        compiled step, see `make_train_step`; off the grid, at the last step, the window goes
        on). The accumulators are not donated, so what is set aside stays readable, and it is
        fetched by a later call once the device has computed it: the host never waits for
        the device or dispatches anything besides the step, except to stay at most
        `MAX_STEPS_AHEAD` steps ahead of it. The metrics of step s come back,
        in order, from a call after step s + 1 is dispatched (or from `flush`). A non-finite
        value among them makes `check_finite` look at the state, which raises for a
        non-finite loss naming its step.
        """
        done = 0
        while done < len(self.pending) and _is_ready(self.pending[done].metrics):
            done += 1
        ready, self.pending = self.pending[:done], self.pending[done:]
        if not isinstance(state, FlatState):
            state = self.flatten(state)
        state = self.train_step(state.core, state.accums, self.parallel.step_input(local_batch))
        step += 1
        # Stay at most MAX_STEPS_AHEAD dispatched steps ahead of the device: enough to keep
        # it busy, and it bounds the batches held on the device and the delay of the logs.
        self.in_flight.append(state.accums[0])
        if len(self.in_flight) > MAX_STEPS_AHEAD:
            self.in_flight.popleft().block_until_ready()
        window_ends, epoch_ends = step % self.log_every == 0, step % self.steps_per_epoch == 0
        if window_ends or step == total or epoch_ends:
            train_metrics, epoch_metrics = jax.tree.unflatten(self._treedefs[1], state.accums)
            if window_ends or step == total:
                self.pending.append(PendingMetrics("train", step, train_metrics))
            if epoch_ends:
                self.pending.append(PendingMetrics("epoch", step, epoch_metrics))
        return state, (self._fetch(ready, state) if ready else [])

    def flush(self, state: TrainState | FlatState) -> list[LoggedMetrics]:
        """Fetches the metrics still set aside (before an evaluation, a save, the end)."""
        ready, self.pending = self.pending, []
        return self._fetch(ready, state)

    def _fetch(
        self, pending: list[PendingMetrics], state: TrainState | FlatState
    ) -> list[LoggedMetrics]:
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0: nothing accumulated
            logged = [
                LoggedMetrics(p.kind, p.step, self.host(p.metrics).compute()) for p in pending
            ]
        values = [np.asarray(v) for item in logged for v in item.values.values()]
        if not all(np.all(np.isfinite(v)) for v in values):  # 0/0 of an empty metric too
            self.check_finite(state)
        return logged

    def evaluate(self, state: TrainState | FlatState, tta: bool = False) -> dict[str, float]:
        """Exact metrics over the whole eval split (with the TTA views when `tta`)."""
        state = self.state_of(state)
        step_fn = self.tta_step if tta else self.eval_step
        collection = self.tta_collection if tta else self.eval_collection
        accum = self.parallel.replicate(collection.empty())
        for batch in data.create_eval_iterator(
            self.config,
            self.exp.info,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        ):
            accum = step_fn(state, self.parallel.step_input(batch), accum)
        return {k: float(v) for k, v in self.host(accum).compute().items()}


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str, *, async_checkpoints: bool = True
) -> dict[str, float]:
    """Trains and evaluates the experiment `config` in `workdir`; returns the final eval metrics.

    `async_checkpoints=False` makes every save finish before training goes on (needed under
    `tfds.testing.mock_data`, which fakes the file system while a pipeline is built).
    Raises ConfigError before writing anything when the config is wrong, WorkdirBusyError
    when another run holds the workdir, NonFiniteLossError when the loss diverges.
    """
    maybe_initialize_distributed(config)
    exp = build_experiment(config)
    process_index = jax.process_index()
    with workdir_lock(workdir, process_index):
        run = _Run(exp, workdir, async_checkpoints=async_checkpoints)
        return _train(run)


def _train(run: _Run) -> dict[str, float]:
    exp, config, workdir = run.exp, run.config, run.workdir
    total, spe = exp.num_train_steps, exp.steps_per_epoch
    state, meta = run.initial_state()
    start = int(run.host(state.step))
    early = EarlyStopping.from_dict(
        meta.get("early_stopping"),
        metric=config.best_metric or "loss",
        mode=config.best_mode if config.best_metric else "min",
        patience=config.early_stopping.patience,
        min_delta=config.early_stopping.min_delta,
    )
    if early.stopped_at is not None:
        print(
            f"Run was stopped early at step {early.stopped_at} (best {early.metric} "
            f"{early.best:.4f} at step {early.best_step}).",
            flush=True,
        )
        run.checkpointer.close()
        return dict(meta.get("eval") or {})
    if start >= total:
        print(f"Run already complete at step {start} (num_train_steps {total}).", flush=True)
        run.checkpointer.close()
        return dict(meta.get("eval") or {})
    metrics_path = os.path.join(workdir, reporting.METRICS_FILE)
    if run.is_main:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump(run_record(config), f, indent=2)
        # Rows after the checkpoint are re-logged; rows a finished run logged only because it
        # ended at `start` (off the log/eval grids) are not part of a longer run's log.
        reporting.truncate_metrics(
            metrics_path,
            start,
            keep_at_last=lambda row: _on_grids(row, start, run),
        )
    writer = reporting.create_writer(workdir, jax.process_index())
    if start == 0:
        writer.write_hparams({k: v for k, v in _flatten(config.to_dict()).items()})
    progress = reporting.ProgressLine(total, start)
    report = periodic_actions.ReportProgress(
        num_train_steps=total, every_steps=config.log_every_steps
    )
    train_iter = data.create_train_iterator(
        config,
        exp.info,
        start_step=start,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    eval_metrics: dict[str, float] = {}
    print(
        f"Training {config.model.name} on {exp.info.name}: steps {start} -> {total} "
        f"({spe} steps/epoch), {config.parallel.mode} on {jax.device_count()} device(s)",
        flush=True,
    )
    last_saved = start if run.checkpointer.latest_step() == start else -1
    with _stop_signals() as stop:
        step = start
        while step < total:
            state, logged = run.train_one_step(state, next(train_iter), step, total)
            step += 1
            report(step)
            evaluated = None
            for item in logged:
                _write_logged(writer, progress, item, spe)
            if run.on_eval_grid(step) or step == total:
                for item in run.flush(state):  # evaluation waits for the device anyway
                    _write_logged(writer, progress, item, spe)
                eval_metrics = evaluated = run.evaluate(state)
                writer.write_scalars(step, _scalars("eval", evaluated))
                print(
                    f"eval at step {step}: "
                    + ", ".join(f"{k} {v:.4f}" for k, v in evaluated.items()),
                    flush=True,
                )
                stopping = early.update(step, evaluated)
                if run.tta_step is not None and (step == total or stopping):
                    tta = run.evaluate(state, tta=True)
                    writer.write_scalars(step, _scalars("eval_tta", tta))
                    print(
                        f"eval with TTA ({config.eval_tta}) at step {step}: accuracy "
                        f"{tta['accuracy']:.4f} (single view {evaluated['accuracy']:.4f})",
                        flush=True,
                    )
                if stopping:
                    print(
                        f"Early stopping at step {step}: no {early.metric} improvement in "
                        f"{early.patience} evaluations (best {early.best:.4f} at step "
                        f"{early.best_step}).",
                        flush=True,
                    )
                    if run.is_main:
                        early.write(workdir)
            if (
                (config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0)
                or step == total
                or stop["signal"]
                or early.stopped_at == step
            ) and step != last_saved:
                for item in run.flush(state):  # logged before the checkpoint that covers them
                    _write_logged(writer, progress, item, spe)
                run.save(state, step, evaluated, early)
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
    run.checkpointer.close()
    writer.flush()
    if run.is_main:
        reporting.plot_curves(workdir)
    return eval_metrics


def _write_logged(
    writer: Any, progress: reporting.ProgressLine, item: LoggedMetrics, steps_per_epoch: int
) -> None:
    """Writes a train window's or an epoch's metrics at the step that ended it."""
    if item.kind == "train":
        writer.write_scalars(item.step, _scalars("train", item.values))
        progress(
            item.step,
            {"loss": float(item.values["loss"]), "lr": float(item.values["learning_rate"])},
        )
    else:
        writer.write_scalars(
            item.step,
            {"epoch": item.step // steps_per_epoch, **_scalars("epoch", item.values)},
        )


def _on_grids(row: dict[str, Any], step: int, run: _Run) -> bool:
    """Whether a metrics row logged at `step` belongs to the regular log/eval grids."""
    if any(k.startswith("train/") for k in row):
        return run.on_log_grid(step)
    if any(k.startswith("eval/") for k in row):
        return run.on_eval_grid(step)
    return True


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out
