"""Reading the train metrics off the devices without making the host wait.

At the end of a log window (or the last step) the window's accumulators, at the end of an
epoch the epoch's, are set aside as `PendingMetrics`; the next step starts from empty ones
(inside the compiled step, see `jaxlab.train.steps.make_train_step`). They are fetched by
a later call once the device has computed them, in order, so the metrics of step s come
back from a call after step s + 1 is dispatched (or from `flush`, before an evaluation, a
save or the end).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

PyTree = Any


@dataclasses.dataclass(frozen=True)
class PendingMetrics:
    """Metric accumulators of a finished log window or epoch, still on the devices."""

    kind: str  # 'train' (a log window) or 'epoch'
    step: int  # the step that ended it
    metrics: PyTree  # {name: clu Metric} in the steps' layout


@dataclasses.dataclass(frozen=True)
class LoggedMetrics:
    """Computed metrics of a log window or epoch, ready to write (NaN: nothing counted)."""

    kind: str
    step: int
    values: dict[str, float]


def compute_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """`compute()` of each host metric as floats; a metric whose compute returns a dict is
    flattened to `name/key`. Metrics with nothing accumulated (0/0) give NaN."""
    out: dict[str, float] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, metric in metrics.items():
            value = metric.compute()
            if isinstance(value, Mapping):
                for key, v in value.items():
                    out[f"{name}/{key}"] = float(np.asarray(v))
            else:
                out[name] = float(np.asarray(value))
    return out


def _is_ready(tree: PyTree) -> bool:
    """Whether the step that computed `tree` has finished (never blocks). All outputs of one
    execution become ready together, so one array tells."""
    leaves = jax.tree.leaves(tree)
    return not leaves or leaves[0].is_ready()


class MetricFetcher:
    """Sets finished windows and epochs aside and fetches them once computed.

    Args:
      to_host: device tree -> one host copy (`Parallel.to_host`).
      log_every, steps_per_epoch: the window and epoch lengths in steps.
      on_nonfinite: called when a fetched value is non-finite (the loop checks the state's
        first non-finite step there and raises for a diverged loss).
    """

    def __init__(
        self,
        to_host: Callable[[PyTree], PyTree],
        log_every: int,
        steps_per_epoch: int,
        on_nonfinite: Callable[[], None],
    ) -> None:
        self.to_host, self.log_every, self.steps_per_epoch = to_host, log_every, steps_per_epoch
        self.on_nonfinite = on_nonfinite
        self.pending: list[PendingMetrics] = []

    def ready(self) -> list[PendingMetrics]:
        """Takes the pending metrics whose steps have finished (call before dispatching)."""
        done = 0
        while done < len(self.pending) and _is_ready(self.pending[done].metrics):
            done += 1
        ready, self.pending = self.pending[:done], self.pending[done:]
        return ready

    def set_aside(self, step: int, total: int, accums: tuple[PyTree, PyTree]) -> None:
        """Records the window/epoch accumulators that step `step` (just dispatched) ended."""
        window_ends, epoch_ends = step % self.log_every == 0, step % self.steps_per_epoch == 0
        if window_ends or step == total:
            self.pending.append(PendingMetrics("train", step, accums[0]))
        if epoch_ends:
            self.pending.append(PendingMetrics("epoch", step, accums[1]))

    def flush(self) -> list[LoggedMetrics]:
        """Fetches everything still pending (waits for the device)."""
        ready, self.pending = self.pending, []
        return self.fetch(ready)

    def fetch(self, pending: list[PendingMetrics]) -> list[LoggedMetrics]:
        """Computes the given pending metrics on the host."""
        logged = [
            LoggedMetrics(p.kind, p.step, compute_metrics(self.to_host(p.metrics))) for p in pending
        ]
        values = [v for item in logged for v in item.values.values()]
        if not all(np.isfinite(values)):  # a diverged loss, or 0/0 of an empty metric
            self.on_nonfinite()
        return logged
