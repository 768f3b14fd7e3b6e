"""The loop's step around a task's: layout check, finite check, metric accumulation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.metrics import average
from jaxlab.tasks import Task
from jaxlab.train.state import TrainState, empty_metrics
from jaxlab.train.steps import make_train_step


class Counter(Task):
    """State: a float32 scalar; the step adds the batch mean, or breaks its own layout."""

    name = "counter"

    def __init__(self, change: str = "") -> None:
        self.change = change

    def init_state(self, batch, ctx):
        return jnp.zeros((), jnp.float32)

    def train_step(self, state, batch, ctx):
        new = state + jnp.mean(batch["x"])
        if self.change == "dtype":
            new = new.astype(jnp.int32)
        elif self.change == "shape":
            new = jnp.stack([new, new])
        return new, {"loss": average(batch["x"])}

    def eval_step(self, state, batch, carry, ctx):
        return carry, {"loss": average(batch["x"], batch["mask"])}


def _state(task: Task) -> TrainState:
    metrics = {"loss": average(jnp.zeros((2,)))}
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        task=task.init_state(None, None),
        rng=jax.random.key_data(jax.random.key(0)),
        train_metrics=empty_metrics(metrics),
        epoch_metrics=empty_metrics(metrics),
        first_nonfinite_step=jnp.full((), -1, jnp.int32),
    )


def test_step_accumulates_and_records_the_first_nonfinite_step():
    task = Counter()
    step = jax.jit(make_train_step(task, window_every=2, epoch_every=4))
    state = _state(task)
    for x in ([1.0, 3.0], [5.0, 7.0], [np.nan, 0.0], [1.0, 1.0]):
        state = step(state, {"x": jnp.asarray(x, jnp.float32)})
    assert int(state.step) == 4
    assert int(state.first_nonfinite_step) == 3  # the third update saw a NaN
    # The window of steps 3-4 (the second step emptied the first window's accumulators).
    assert int(state.train_metrics["loss"].count) == 4
    assert int(state.epoch_metrics["loss"].count) == 8


@pytest.mark.parametrize("change", ["dtype", "shape"])
def test_a_task_state_that_changes_layout_is_refused(change):
    task = Counter(change)
    step = make_train_step(task)
    with pytest.raises(TypeError, match="train_step must return a state with the structure"):
        jax.eval_shape(step, _state(task), {"x": jnp.ones((2,), jnp.float32)})
