"""The task protocol: what is learned, as pure functions the one generic loop calls.

A task owns its state and its steps. The loop owns the step counter, the run's rng, the
metric accumulators, the finite check, checkpoints and devices, and treats the task's state
as an opaque pytree that it saves, restores, places and donates.

A task implements (see `Task`):

- `init_state(batch, ctx) -> state`: the task's whole state (one or several models'
  parameters, one optimizer state per named optimizer, and any extra state: an EMA teacher,
  a key queue, a recurrent state carried from batch to batch), built from an example batch
  (zeros with the dataset's feature spec) and the named init rngs of `ctx`.
- `train_step(state, batch, ctx) -> (state, metrics)`: one update. `metrics` is a dict of
  clu `Metric` instances (averages with masks of any shape, confusion matrices, ...); the
  loop reduces them over the devices, accumulates them over the log window and the epoch,
  and logs `metric.compute()` (a scalar, or a dict of scalars logged as `name/key`).
- `eval_step(state, batch, carry, ctx) -> (carry, metrics)`: one eval batch (its 'mask'
  marks the real examples, 0 for padding). `carry` is the task's own state across the
  batches of one evaluation (None unless `init_eval_carry` says otherwise).

`ctx` is a `StepContext`: the step, the named rng streams folded with the step (and the
device under pmap), the device axis name under pmap (None under jit, where arrays are
global), and whether the step starts an epoch. `SupervisedTask` (jaxlab.tasks.supervised)
builds both steps from a plain loss function for the common one-model, one-optimizer case.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax
import jax
import ml_collections
import optax
from clu import metrics as clu_metrics

PyTree = Any
Batch = Mapping[str, jax.Array]
Metrics = dict[str, clu_metrics.Metric]
DEFAULT_OPTIMIZER = "default"


def stream_keys(base: jax.Array, names: Sequence[str]) -> dict[str, jax.Array]:
    """The named rng streams of one step: stream `i` of `names` is `split(base, n)[i]`.

    With JAX's partitionable threefry (the default) `split` is prefix-stable, so a task that
    declares one more stream at the end draws the same numbers from the others.
    """
    if not names:
        return {}
    keys = jax.random.split(base, len(names))
    return {name: keys[i] for i, name in enumerate(names)}


@flax.struct.dataclass
class StepContext:
    """What the loop gives a task's init, train and eval steps (built inside the jit; a
    pytree, so a task's own functions can take it through `jax.jit`).

    Attributes:
      step: int32 scalar, the global step before this update (the update count at eval).
      rngs: the task's named rng streams for this step (and device, under pmap).
      axis_name: the pmap device axis, or None (jit: arrays are global, no collectives).
      epoch_start: bool scalar, True on the first step of an epoch (None at init and eval).
    """

    step: jax.Array
    rngs: Mapping[str, jax.Array]
    axis_name: str | None = flax.struct.field(pytree_node=False, default=None)
    epoch_start: jax.Array | None = None

    def rng(self, name: str) -> jax.Array:
        """The key of stream `name` (a KeyError lists the declared streams)."""
        if name not in self.rngs:
            raise KeyError(
                f"rng stream {name!r} is not declared by the task; declared: "
                f"{', '.join(self.rngs) or 'none'} (add it to the task's rng_streams)"
            )
        return self.rngs[name]

    def pmean(self, tree: PyTree) -> PyTree:
        """Mean over the devices under pmap; the identity under jit."""
        return jax.lax.pmean(tree, self.axis_name) if self.axis_name else tree

    def psum(self, tree: PyTree) -> PyTree:
        """Sum over the devices under pmap; the identity under jit."""
        return jax.lax.psum(tree, self.axis_name) if self.axis_name else tree

    def all_gather(self, x: jax.Array) -> jax.Array:
        """The global batch of a per-device batch (concatenated along axis 0) under pmap;
        `x` itself under jit, where it is global already. In-batch losses (contrastive
        negatives, triplet mining) gather their embeddings with it so that 1 device, N
        devices and pmap see the same batch; with the gradients `pmean`-ed, a loss computed
        on the gathered batch has the gradient of the global loss."""
        if not self.axis_name:
            return x
        return jax.lax.all_gather(x, self.axis_name, tiled=True)


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """A named optimizer: its optax transformation and its learning-rate schedule."""

    tx: optax.GradientTransformationExtraArgs
    schedule: optax.Schedule


@dataclasses.dataclass(frozen=True)
class TaskSetup:
    """What a task factory gets to build itself.

    Attributes:
      config: the whole experiment config.
      info: the dataset's `DatasetInfo` (feature spec, classes, sizes).
      num_train_steps, steps_per_epoch: the run's duration.
      axis_name: the pmap device axis ('data') or None under jit; models with
        `bn_axis_name` get it so batch statistics are global.
      optimizers: the named optimizers (`'default'` from `config.optimizer` and
        `config.schedule`, others from `config.optimizers.<name>`).
    """

    config: ml_collections.ConfigDict
    info: Any
    num_train_steps: int
    steps_per_epoch: int
    axis_name: str | None
    optimizers: Mapping[str, Optimizer]

    def optimizer(self, name: str = DEFAULT_OPTIMIZER) -> Optimizer:
        """The optimizer `name` (`'default'`: `config.optimizer` with `config.schedule`;
        others: `config.optimizers.<name>`); ConfigError when it is not configured."""
        return self.optimizers[name]


class Task(abc.ABC):
    """A learning objective: its state, its steps and the metrics they report.

    Class attributes a task sets:
      name: the registry name.
      rng_streams: the named rng streams its steps draw from (`StepContext.rng`).
      optimizer_names: the named optimizers it needs (`TaskSetup.optimizer`).
      train_metric_names / eval_metric_names: the keys it logs (after `compute()`
        dicts are flattened to `name/key`); `best_metric` and early stopping choose among
        the eval ones, the progress line shows the train ones.
    """

    name: str = "task"
    rng_streams: tuple[str, ...] = ("params", "dropout")
    optimizer_names: tuple[str, ...] = (DEFAULT_OPTIMIZER,)
    train_metric_names: tuple[str, ...] = ("loss",)
    eval_metric_names: tuple[str, ...] = ("loss",)

    @abc.abstractmethod
    def init_state(self, batch: Batch, ctx: StepContext) -> PyTree:
        """The task's initial state from an example batch (zeros of the feature spec)."""

    @abc.abstractmethod
    def train_step(self, state: PyTree, batch: Batch, ctx: StepContext) -> tuple[PyTree, Metrics]:
        """One update of the state on a train batch, and the batch's metrics."""

    @abc.abstractmethod
    def eval_step(
        self, state: PyTree, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        """Metrics of one eval batch (entries of `batch['mask'] == 0` must not count)."""

    # Optional parts of the protocol.
    needs_data_init: bool = False  # the loop calls init_from_data on a fresh run

    def init_from_data(self, state: PyTree, batch: Batch) -> PyTree:
        """Data-dependent initialization on the first global train batch of a fresh run
        (e.g. LSUV), run on the host's default device; the identity by default."""
        return state

    def variables(self, state: PyTree) -> dict[str, PyTree]:
        """The model variables of a one-model task ({'params': ..., 'batch_stats': ...}):
        what `init_from` and the analysis tools read. Tasks of several models do not have
        one set of variables."""
        raise NotImplementedError(f"task {self.name!r} has no single set of model variables")

    def with_variables(self, state: PyTree, variables: Mapping[str, PyTree]) -> PyTree:
        """The state with the model variables replaced (transfer learning, `init_from`)."""
        raise NotImplementedError(f"task {self.name!r} cannot start from model variables")

    def init_eval_carry(self, state: PyTree, batch: Batch) -> PyTree:
        """The eval carry at the start of an evaluation (None: nothing carried)."""
        return None

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        """Extra evaluator factories this task offers by name (see jaxlab.train.evaluation)."""
        return {}
