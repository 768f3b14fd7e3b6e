"""`SupervisedTask`: the task protocol's steps built from a plain loss function, for the
common case of one model trained by one optimizer (classification, regression, per-pixel
labelling, language modelling with one network).

The task's state is a `SupervisedState` (params, optimizer state, model state such as batch
statistics, and the parameter EMA when `optimizer.ema_decay` is set). Its train step:

    (loss, (model_state, metrics)), grads = value_and_grad(loss_fn)(params)
    grads, loss = pmean over the devices (pmap only)
    updates, opt_state = tx.update(grads, opt_state, params, value=loss[, hvp_fn=...])
    params = params + updates; ema_params <- decay * ema + (1 - decay) * params

and it adds the learning rate (and, with `norms_every`, the gradient, update and parameter
global norms on the steps that end a log window) to the metrics the loss function reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from clu import metrics as clu_metrics

from jaxlab import losses
from jaxlab.optim import update_ema
from jaxlab.tasks.base import Batch, Metrics, Optimizer, PyTree, StepContext, Task

ApplyFn = Callable[..., Any]
# loss_fn(apply_fn, params, model_state, batch, ctx, train) ->
#   (scalar loss, (new model_state, {name: clu Metric}))
LossFn = Callable[
    [ApplyFn, PyTree, PyTree, Batch, StepContext, bool],
    tuple[jax.Array, tuple[PyTree, Metrics]],
]
# eval_fn(apply_fn, params, model_state, batch, ctx) -> {name: clu Metric} (masked by
# batch['mask'])
EvalFn = Callable[[ApplyFn, PyTree, PyTree, Batch, StepContext], Metrics]
NORM_NAMES = ("grad_norm", "update_norm", "param_norm")


@flax.struct.dataclass
class SupervisedState:
    """One model's variables and its optimizer state."""

    params: PyTree
    opt_state: PyTree
    model_state: PyTree  # non-trainable collections, e.g. {'batch_stats': ...}
    ema_params: PyTree = None


class SupervisedTask(Task):
    """A task made of one model, one optimizer and a loss function (see the module doc).

    Args:
      name: the registry name.
      model: the Flax module; initialized with `init(rngs, batch[input_key][:1],
        train=False)` from the 'params' and 'dropout' streams.
      loss_fn: see `LossFn`; reports its own metrics (masks of any shape).
      eval_fn: see `EvalFn`.
      optimizer: the task's `Optimizer` (tx and schedule).
      input_key: the batch feature the model takes.
      train_metric_names / eval_metric_names: the keys the functions report
        (`learning_rate` and the norms are added to the train ones here).
      rng_streams: the streams the steps draw from ('params' and 'dropout' at least).
      ema_decay: keep an EMA of the parameters and evaluate with it.
      needs_hvp: pass `hvp_fn` (Hessian-vector products of the batch loss) to the
        optimizer (ESGD).
      norms_every: compute the global norms on steps `s` with `(s + 1) % norms_every == 0`
        (under `lax.cond`: on XLA:CPU the conditional alone costs a small MLP about 15% of
        its step, so it is off unless asked for).
      data_init: optional data-dependent initialization `(model, variables, inputs) ->
        variables` that the loop runs on the first global train batch of a fresh run
        (LSUV), through `init_from_data`.
      evaluator_factories: extra evaluators this task offers by name.
    """

    def __init__(
        self,
        *,
        name: str,
        model: nn.Module,
        loss_fn: LossFn,
        eval_fn: EvalFn,
        optimizer: Optimizer,
        input_key: str = "image",
        train_metric_names: tuple[str, ...] = ("loss",),
        eval_metric_names: tuple[str, ...] = ("loss",),
        rng_streams: tuple[str, ...] = ("params", "dropout"),
        ema_decay: float | None = None,
        needs_hvp: bool = False,
        norms_every: int | None = None,
        data_init: Callable[..., PyTree] | None = None,
        evaluator_factories: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.loss_fn = loss_fn
        self.eval_fn = eval_fn
        self.optimizer = optimizer
        self.input_key = input_key
        self.rng_streams = rng_streams
        self.ema_decay = ema_decay
        self.needs_hvp = needs_hvp
        self.norms_every = norms_every
        self._data_init = data_init
        self.needs_data_init = data_init is not None
        self._evaluators = dict(evaluator_factories or {})
        self.train_metric_names = (
            *train_metric_names,
            "learning_rate",
            *(NORM_NAMES if norms_every else ()),
        )
        self.eval_metric_names = eval_metric_names

    # --- state -------------------------------------------------------------------------

    def init_state(self, batch: Batch, ctx: StepContext) -> SupervisedState:
        """Initializes the model on one example of `batch` and the optimizer on its params."""
        x = jax.tree.map(lambda a: a[:1], batch[self.input_key])
        variables = self.model.init(
            {"params": ctx.rng("params"), "dropout": ctx.rng("dropout")}, x, train=False
        )
        return self.from_variables(variables)

    def from_variables(self, variables: Mapping[str, PyTree]) -> SupervisedState:
        """A fresh state (new optimizer state and EMA) around given model variables."""
        variables = dict(variables)
        params = variables.pop("params")
        return SupervisedState(
            params=params,
            opt_state=self.optimizer.tx.init(params),
            model_state=variables,
            ema_params=jax.tree.map(jnp.copy, params) if self.ema_decay is not None else None,
        )

    def variables(self, state: SupervisedState) -> dict[str, PyTree]:
        """The model variables {'params': ..., **model_state} of a state."""
        return {"params": state.params, **state.model_state}

    def with_variables(self, state: SupervisedState, variables: Mapping[str, PyTree]) -> PyTree:
        """A fresh state around `variables` (transfer learning: the optimizer starts anew)."""
        return self.from_variables(variables)

    def init_from_data(self, state: SupervisedState, batch: Batch) -> SupervisedState:
        """The `data_init` function applied to the model's variables on `batch`."""
        if self._data_init is None:
            return state
        return self.from_variables(
            self._data_init(self.model, self.variables(state), batch[self.input_key])
        )

    # --- steps -------------------------------------------------------------------------

    def train_step(
        self, state: SupervisedState, batch: Batch, ctx: StepContext
    ) -> tuple[SupervisedState, Metrics]:
        """One optimizer update on the loss of `batch` (see the module docstring)."""

        def loss_of(params: PyTree) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
            return self.loss_fn(self.model.apply, params, state.model_state, batch, ctx, True)

        (loss, (model_state, metrics)), grads = jax.value_and_grad(loss_of, has_aux=True)(
            state.params
        )
        grads, loss = ctx.pmean(grads), ctx.pmean(loss)
        extra: dict[str, Any] = {"value": loss}
        if self.needs_hvp:

            def hvp_fn(v: PyTree) -> PyTree:
                grad_fn = jax.grad(lambda p: loss_of(p)[0])
                return ctx.pmean(jax.jvp(grad_fn, (state.params,), (v,))[1])

            extra["hvp_fn"] = hvp_fn
        updates, opt_state = self.optimizer.tx.update(grads, state.opt_state, state.params, **extra)
        params = optax.apply_updates(state.params, updates)
        ema_params = state.ema_params
        if self.ema_decay is not None:
            ema_params = update_ema(ema_params, params, self.ema_decay)
        metrics = dict(metrics)
        metrics["learning_rate"] = clu_metrics.LastValue(
            total=jnp.asarray(self.optimizer.schedule(ctx.step), jnp.float32),
            count=jnp.ones((), jnp.int32),
        )
        if self.norms_every:
            metrics.update(norm_metrics(ctx.step, self.norms_every, grads, updates, params))
        new_state = SupervisedState(
            params=params, opt_state=opt_state, model_state=model_state, ema_params=ema_params
        )
        return new_state, metrics

    def eval_step(
        self, state: SupervisedState, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        """The eval function's metrics, with the EMA parameters when there is an EMA."""
        params = state.ema_params if self.ema_decay is not None else state.params
        return carry, self.eval_fn(self.model.apply, params, state.model_state, batch, ctx)

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        return dict(self._evaluators)


def norm_metrics(
    step: jax.Array, every: int, grads: PyTree, updates: PyTree, params: PyTree
) -> Metrics:
    """Gradient, update and parameter global norms on the steps that end a log window of
    `every` steps (`(step + 1) % every == 0`), as averages that count only those steps."""
    norm_step = (step + 1) % every == 0
    norms = jax.lax.cond(
        norm_step,
        lambda: jnp.stack([optax.global_norm(t) for t in (grads, updates, params)]),
        lambda: jnp.zeros((3,), jnp.float32),
    )
    count = norm_step.astype(jnp.int32)
    return {
        name: clu_metrics.Average(total=norms[i], count=count) for i, name in enumerate(NORM_NAMES)
    }


def label_weights(batch: Batch, labels: jax.Array, num_classes: int) -> jax.Array:
    """bool [labels.shape]: the labels in [0, num_classes) of the real examples (the eval
    padding 'mask' [B], when the batch has one, covers all the labels of an example)."""
    valid = losses.valid_label_mask(labels, num_classes)
    if "mask" in batch:
        valid = valid & losses.broadcast_mask(batch["mask"], labels.shape)
    return valid
