"""The evaluator protocol: what a periodic evaluation job is given and what it returns.

These classes belong to the task protocol, beside `Task`, so that a task can define its own
evaluators (`Task.evaluators()`: image samples, embedding probes, decoding) without
importing the loop; `jaxlab.train.evaluation` runs them and re-exports them.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jax
import ml_collections
import numpy as np

from jaxlab import data
from jaxlab.tasks.base import PyTree, Task

if TYPE_CHECKING:
    from jaxlab.train.parallel import Parallel
    from jaxlab.train.state import TrainState


@dataclasses.dataclass
class EvalResult:
    """What an evaluator produced: scalars, images ([N, H, W, C] or [H, W, C], values in
    [0, 1] or uint8) and texts, each by key; `outputs` holds collected arrays (not written)
    for the caller."""

    scalars: dict[str, float] = dataclasses.field(default_factory=dict)
    images: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    texts: dict[str, str] = dataclasses.field(default_factory=dict)
    outputs: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class EvalContext:
    """What the loop gives an evaluator when it runs.

    Attributes:
      step: the number of updates so far.
      state: the run's state, in the layout of the compiled steps (replicated).
      task: the task, for its models and functions.
      parallel: device placement; `host(state.task)` gives a host copy of the task state.
      config, info: the experiment config and the dataset's info.
      rng: this evaluator's key at this step (`fold_in(eval key, step, name)`).
    """

    step: int
    state: TrainState
    task: Task
    parallel: Parallel
    config: ml_collections.ConfigDict
    info: Any
    rng: jax.Array

    def eval_batches(self) -> Iterator[dict[str, np.ndarray]]:
        """This process's padded eval batches ('mask' 0 for padding)."""
        return data.create_eval_iterator(
            self.config,
            self.info,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )

    def host(self, tree: PyTree) -> PyTree:
        """One host copy of replicated device values."""
        return self.parallel.to_host(tree)


class Evaluator(abc.ABC):
    """A periodic job: `run(ctx)` every `every_steps` steps (0: only at the end) and at the
    last step. `bind` is called once before training (compile there)."""

    name: str = "evaluator"
    every_steps: int = 0

    def due(self, step: int, total: int) -> bool:
        """Whether the evaluator runs after `step` updates of `total`."""
        return step == total or bool(self.every_steps and step % self.every_steps == 0)

    def bind(self, parallel: Parallel, abstract_state: TrainState, info: Any) -> None:  # noqa: B027
        """Prepares the evaluator for the run's devices and state (optional)."""

    @abc.abstractmethod
    def run(self, ctx: EvalContext) -> EvalResult:
        """Evaluates the state of `ctx`."""
