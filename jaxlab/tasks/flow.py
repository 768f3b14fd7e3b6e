"""The `flow` task: exact log-likelihood of a normalizing flow on dequantized images.

Scaling (contract 3). The images' discrete levels `k in {0, ..., L-1}` (`L =
task.num_levels`: 17 for gen_digits, 256 for 8-bit datasets; `k = rint(image * (L-1))`)
are dequantized in level units, `y = k + u` with `u in [0, 1)^D`, so that the unit cells
`[k, k+1)` tile `[0, L)^D` and, for any density p on y, `P(k) = int_{[0,1)^D} p(k + u) du`.
The flow sees the centred model-scale input `x = y / L - 1/2 in [-1/2, 1/2)^D`, an affine
map with Jacobian `L^-D`, so

    log p_y(y) = log N(z(x); 0, I) + log|det dz/dx| - D log L.

- `task.dequantization = 'uniform'`: u ~ U[0, 1)^D; by Jensen,
  `-log P(k) <= E_u[-log p_y(k + u)]`, and the reported `loss` (nats per image) is the
  one-sample estimate `-log p_y(k + u)`.
- `'variational'` (Ho et al. 2019, Flow++): u ~ q(u | k), a small conditional flow
  (`jaxlab.nn.flows.VariationalDequantizer`, `task.dequantizer_couplings` couplings of
  width `task.dequantizer_hidden`); the bound is `E_q[-log p_y(k + u) + log q(u | k)]`,
  reported the same way (one sample). Its q is trained jointly with the flow.

`bits_per_dim` is `loss / (D ln 2)`. Samples (`sample_images`): latents drawn from
`N(0, T^2 I)` (`T = task.sample_temperature`, default 1), mapped back through the inverse
flow, then `y = (x + 1/2) L` floored to its level and shown as `level / (L-1)`. The
`temperatures` evaluator draws one row per temperature from a fixed key.

ActNorm layers are initialized from the first train batch (`init_from_data`, through
`jaxlab.nn.flows.actnorm_data_init`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.nn import flows
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.evaluators import EvalContext, EvalResult, Evaluator
from jaxlab.tasks.generative import GenerativeTask, bits_per_dim, require_unit_images
from jaxlab.tasks.supervised import SupervisedState, SupervisedTask

DEQUANTIZATIONS = ("uniform", "variational")
NOISE_STREAM = "dequant"
TEMPERATURES_EVALUATOR = "temperatures"


class FlowLikelihood(nn.Module):
    """A flow model with its dequantization: `__call__(images) -> nats [B]` (the bound on
    -log P(levels) of the module doc; draws u from the 'dequant' rng), `inverse(zs) ->
    images in [0, 1]` on the level grid, `latents(images)` the latents of the flow."""

    flow: nn.Module
    num_levels: int
    dequantizer: nn.Module | None = None

    def _model_input(self, y: jax.Array) -> jax.Array:
        return y / self.num_levels - 0.5

    def __call__(self, images: jax.Array, *, train: bool = False) -> jax.Array:
        """The per-image bound in nats with one dequantization sample (the 'dequant' rng)."""
        noise = jax.random.uniform if self.dequantizer is None else jax.random.normal
        return self.nats(images, noise(self.make_rng(NOISE_STREAM), images.shape), train=train)

    def nats(self, images: jax.Array, noise: jax.Array, *, train: bool = False) -> jax.Array:
        """The per-image bound in nats given the noise: u ~ U[0, 1) itself (uniform), or the
        standard normal eps that the dequantizer maps to u (variational)."""
        levels = jnp.rint(images * (self.num_levels - 1))
        if self.dequantizer is None:
            u, log_q = noise, jnp.zeros(images.shape[:1])
        else:
            u, log_q = self.dequantizer(self._model_input(levels + 0.5), noise)
        zs, logdet = self.flow(self._model_input(levels + u), train=train)
        dims = math.prod(images.shape[1:])
        log_p = flows.standard_normal_logpdf(zs) + logdet - dims * math.log(self.num_levels)
        return log_q - log_p

    def latents(self, images: jax.Array) -> tuple[jax.Array, ...]:
        """The flow's latents of the images' cell centres (shapes for sampling)."""
        levels = jnp.rint(images * (self.num_levels - 1))
        return self.flow(self._model_input(levels + 0.5))[0]

    def inverse(self, zs: Sequence[jax.Array]) -> jax.Array:
        """Images in [0, 1] on the level grid from latents."""
        y = (self.flow.inverse(zs) + 0.5) * self.num_levels
        levels = jnp.clip(jnp.floor(y), 0, self.num_levels - 1)
        return levels / (self.num_levels - 1)


class FlowTask(SupervisedTask, GenerativeTask):
    """The flow task (see the module doc): a `SupervisedTask` on the dequantization bound,
    with ActNorm data init, sampling and the `temperatures` evaluator."""

    def __init__(self, setup: TaskSetup) -> None:
        require_unit_images(setup, "flow")
        config = setup.config
        self.image_shape = tuple(setup.info.features["image"].shape)
        options = config.task
        self.dequantization = options.get("dequantization", "uniform")
        check_choice("task.dequantization", self.dequantization, DEQUANTIZATIONS)
        default_levels = 17 if config.dataset.name == "gen_digits" else 256
        self.num_levels = options.get("num_levels", default_levels)
        check_positive("task.num_levels", self.num_levels, integer=True)
        if self.num_levels < 2:
            raise ConfigError(f"task.num_levels must be >= 2, got {self.num_levels}")
        self.temperature = options.get("sample_temperature", 1.0)
        check_positive("task.sample_temperature", self.temperature)
        dequantizer = None
        if self.dequantization == "variational":
            couplings = options.get("dequantizer_couplings", 2)
            hidden = options.get("dequantizer_hidden", 16)
            check_positive("task.dequantizer_couplings", couplings, integer=True)
            check_positive("task.dequantizer_hidden", hidden, integer=True)
            dequantizer = flows.VariationalDequantizer(couplings, hidden)
        model_kwargs = {k: v for k, v in config.model.items() if k != "name"}
        flow = build_model(config.model.name, model_kwargs)
        model = FlowLikelihood(flow, self.num_levels, dequantizer)
        dims = math.prod(self.image_shape)
        super().__init__(
            name="flow",
            model=model,
            loss_fn=_make_loss_fn(dims),
            eval_fn=_make_eval_fn(dims),
            optimizer=setup.optimizer(),
            train_metric_names=("loss", "bits_per_dim"),
            eval_metric_names=("loss", "bits_per_dim"),
            rng_streams=("params", "dropout", NOISE_STREAM),
            ema_decay=ema_decay(config),
            data_init=_data_init,
        )

    def init_state(self, batch: Batch, ctx: StepContext) -> SupervisedState:
        """The model initialized on one example (with the dequantization noise stream)."""
        rngs = {"params": ctx.rng("params"), NOISE_STREAM: ctx.rng(NOISE_STREAM)}
        variables = self.model.init(rngs, batch["image"][:1], train=False)
        return self.from_variables({"params": variables["params"]})

    def _params(self, state: SupervisedState) -> PyTree:
        return state.ema_params if self.ema_decay is not None else state.params

    def sample_images(
        self,
        task_state: SupervisedState,
        key: jax.Array,
        num: int,
        temperature: float | jax.Array | None = None,
    ) -> jax.Array:
        """`num` images: the inverse flow of latents ~ N(0, T^2 I) (T: `temperature`, a
        traced value allowed, or `task.sample_temperature` when None)."""
        t = self.temperature if temperature is None else temperature
        variables = {"params": self._params(task_state)}
        shapes = jax.eval_shape(
            lambda: self.model.apply(
                variables, jnp.zeros((num, *self.image_shape)), method="latents"
            )
        )
        keys = jax.random.split(key, len(shapes))
        zs = [t * jax.random.normal(k, s.shape) for k, s in zip(keys, shapes, strict=True)]
        return self.model.apply(variables, zs, method="inverse")

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        return {**GenerativeTask.evaluators(self), TEMPERATURES_EVALUATOR: TemperaturesEvaluator}


def _make_loss_fn(dims: int) -> Callable[..., Any]:
    def loss_fn(apply_fn, params, model_state, batch, ctx, train):  # noqa: ANN001, ANN202
        nats = apply_fn(
            {"params": params}, batch["image"], rngs={NOISE_STREAM: ctx.rng(NOISE_STREAM)}
        )
        loss = nats.mean()
        return loss, (
            model_state,
            {"loss": average(nats), "bits_per_dim": average(bits_per_dim(nats, dims))},
        )

    return loss_fn


def _make_eval_fn(dims: int) -> Callable[..., Metrics]:
    def eval_fn(apply_fn, params, model_state, batch, ctx):  # noqa: ANN001, ANN202
        nats = apply_fn(
            {"params": params}, batch["image"], rngs={NOISE_STREAM: ctx.rng(NOISE_STREAM)}
        )
        mask = batch["mask"]
        return {
            "loss": average(nats, mask),
            "bits_per_dim": average(bits_per_dim(nats, dims), mask),
        }

    return eval_fn


def _data_init(model: nn.Module, variables: PyTree, images: jax.Array) -> PyTree:
    """ActNorm data init on the first train batch, compiled (eagerly, a deep flow's forward
    is hundreds of dispatches); the noise key is fixed: this runs once, outside the steps."""

    def init(variables: PyTree, images: jax.Array) -> PyTree:
        rngs = {NOISE_STREAM: jax.random.key(0)}
        return flows.actnorm_data_init(model, variables, images, rngs=rngs)

    return jax.jit(init)(dict(variables), images)


class TemperaturesEvaluator(Evaluator):
    """`config.evaluators.temperatures`: one row of `num` samples (default 8) per
    temperature in `temperatures` (default 0.5, 0.7, 0.9, 1.0), from the fixed key `seed`
    (the same latents scaled), written as the image `temperatures/grid` (row r: the r-th
    temperature)."""

    name = TEMPERATURES_EVALUATOR

    def __init__(
        self, task: FlowTask, setup: TaskSetup, options: ml_collections.ConfigDict
    ) -> None:
        if not isinstance(task, FlowTask):
            raise ConfigError(f"evaluator 'temperatures' needs the flow task, got {task.name!r}")
        valid = {"num", "seed", "every_steps", "temperatures"}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ConfigError(
                f"evaluators.temperatures: unknown option(s) {', '.join(unknown)}; valid: "
                f"{', '.join(sorted(valid))}"
            )
        self.num = options.get("num", 8)
        self.seed = options.get("seed", 0)
        self.temperatures = tuple(options.get("temperatures", (0.5, 0.7, 0.9, 1.0)))
        check_positive("evaluators.temperatures.num", self.num, integer=True)
        for t in self.temperatures:
            check_positive("evaluators.temperatures.temperatures entry", t)
        self.every_steps = int(options.get("every_steps", 0))
        self._sample = jax.jit(task.sample_images, static_argnums=2)  # one compile for all T

    def run(self, ctx: EvalContext) -> EvalResult:
        state = ctx.host(ctx.state.task)
        key = jax.random.key(self.seed)
        rows = [
            np.asarray(self._sample(state, key, self.num, jnp.float32(t)))
            for t in self.temperatures
        ]
        grid = np.concatenate(rows)
        return EvalResult(images={"grid": np.clip(grid.astype(np.float32), 0.0, 1.0)})


def make_flow_task(setup: TaskSetup) -> FlowTask:
    """The registry's factory for `task.name = 'flow'`."""
    return FlowTask(setup)
