"""The compiled train step and the state it advances, kept in the form the step takes.

The compiled step takes and returns the state as flat lists of arrays (no pytree nodes to
walk or build on the host at each step: about 15 us per step on a 2-core CPU), the metric
accumulators apart and not donated, so the host can still read a finished window's
accumulators after dispatching the next step. This module is the only place that knows;
everything else sees a `TrainState`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import Any

import jax

from jaxlab.train.parallel import Parallel
from jaxlab.train.state import TrainState

PyTree = Any
MAX_STEPS_AHEAD = 3  # dispatched train steps the host may run ahead of the device


class Stepper:
    """Advances a TrainState with the compiled step; the host stays at most
    `MAX_STEPS_AHEAD` dispatched steps ahead of the device (enough to keep it busy, and it
    bounds the batches held on the device and the delay of the logs)."""

    def __init__(
        self, parallel: Parallel, step: Callable[[TrainState, Any], TrainState], state: TrainState
    ) -> None:
        self.parallel = parallel
        core, self._core_def = jax.tree.flatten(_without_accums(state))
        accums, self._accums_def = jax.tree.flatten((state.train_metrics, state.epoch_metrics))
        self._core, self._accums = core, accums

        def flat_step(core: list, accums: list, batch: Any) -> tuple[list, list]:
            return self._flatten(step(self._unflatten(core, accums), batch))

        self._step = parallel.compile_train_step(flat_step, donate=(True, False))
        self._in_flight: collections.deque[jax.Array] = collections.deque()

    def _flatten(self, state: TrainState) -> tuple[list, list]:
        core = jax.tree.leaves(_without_accums(state))
        return core, jax.tree.leaves((state.train_metrics, state.epoch_metrics))

    def _unflatten(self, core: list, accums: list) -> TrainState:
        train_metrics, epoch_metrics = jax.tree.unflatten(self._accums_def, accums)
        state = jax.tree.unflatten(self._core_def, core)
        return state.replace(train_metrics=train_metrics, epoch_metrics=epoch_metrics)

    @property
    def state(self) -> TrainState:
        """The current state (after the steps dispatched so far)."""
        return self._unflatten(self._core, self._accums)

    def advance(self, local_batch: Mapping[str, Any]) -> tuple[PyTree, PyTree]:
        """Dispatches one step on a process-local batch; returns the (train window, epoch)
        accumulators it produces (device arrays, not donated: readable later)."""
        self._core, self._accums = self._step(
            self._core, self._accums, self.parallel.step_input(local_batch)
        )
        self._in_flight.append(self._accums[0])
        if len(self._in_flight) > MAX_STEPS_AHEAD:
            self._in_flight.popleft().block_until_ready()
        return jax.tree.unflatten(self._accums_def, self._accums)


def _without_accums(state: TrainState) -> TrainState:
    return state.replace(train_metrics=None, epoch_metrics=None)
