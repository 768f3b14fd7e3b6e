"""The training state and the metric collections it carries.

The state holds everything a resumed run needs to continue bit for bit: the step (which is
also the data iterator's position, see `jaxlab.data`), parameters, optimizer state, model
state (batch statistics), the run's base rng, the metric accumulators of the current log
window and epoch, and the first step whose loss was non-finite (-1 if none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from clu import metrics

PyTree = Any

TRAIN_STEP_METRICS = {"learning_rate": metrics.LastValue}
NORM_METRICS = {  # with config.log_norms: averaged over the window's norm steps (its last)
    "grad_norm": metrics.Average,
    "update_norm": metrics.Average,
    "param_norm": metrics.Average,
}


@flax.struct.dataclass
class TrainState:
    """All state of a run (a pytree; checkpointed whole)."""

    step: jax.Array
    params: PyTree
    opt_state: PyTree
    model_state: PyTree
    rng: jax.Array  # raw uint32 key data of the run's base key
    train_metrics: metrics.Collection  # accumulated since the last train log
    epoch_metrics: metrics.Collection  # accumulated since the start of the epoch
    first_nonfinite_step: jax.Array
    ema_params: PyTree = None


def make_collections(
    train_names: Sequence[str], eval_names: Sequence[str], log_norms: bool = False
) -> tuple[type[metrics.Collection], type[metrics.Collection], type[metrics.Collection]]:
    """Returns the clu Collection classes for the train window, the epoch and evaluation.

    Task metrics are per-example averages; the train window also tracks the learning rate
    and, with `log_norms`, the gradient, update and parameter norms.
    """
    train = metrics.Collection.create(
        **{n: metrics.Average for n in train_names},
        **TRAIN_STEP_METRICS,
        **(NORM_METRICS if log_norms else {}),
    )
    epoch = metrics.Collection.create(**{n: metrics.Average for n in train_names})
    evaluation = metrics.Collection.create(**{n: metrics.Average for n in eval_names})
    return train, epoch, evaluation


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """Returns (init key, base key of the per-step rngs) derived from the seed."""
    root = jax.random.key(seed)
    return jax.random.fold_in(root, 0), jax.random.fold_in(root, 1)


def make_init_fn(
    model: nn.Module,
    tx: optax.GradientTransformation,
    input_shape: Sequence[int],
    seed: int,
    train_collection: type[metrics.Collection],
    epoch_collection: type[metrics.Collection],
    use_ema: bool = False,
) -> Callable[..., TrainState]:
    """Returns a pure function building the initial state (run it under jit or eval_shape).

    Called with no argument it initializes the model from the seed; called with a dict of
    variables ({'params': ..., 'batch_stats': ...}, e.g. pretrained ones) it starts from them.
    """

    def init(variables: dict[str, PyTree] | None = None) -> TrainState:
        init_key, step_key = run_keys(seed)
        if variables is None:
            params_key, dropout_key = jax.random.split(init_key)
            x = jnp.zeros((1, *input_shape), jnp.float32)
            variables = model.init({"params": params_key, "dropout": dropout_key}, x, train=False)
        variables = dict(variables)
        params = variables.pop("params")
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            model_state=variables,
            rng=jax.random.key_data(step_key),
            train_metrics=train_collection.empty(),
            epoch_metrics=epoch_collection.empty(),
            first_nonfinite_step=jnp.full((), -1, jnp.int32),
            ema_params=jax.tree.map(jnp.copy, params) if use_ema else None,
        )

    return init


def count_params(params: PyTree) -> int:
    """Total number of scalars in a parameter pytree."""
    return int(sum(x.size for x in jax.tree.leaves(params)))
