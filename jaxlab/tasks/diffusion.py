"""Task `diffusion`: denoising diffusion probabilistic models (DDPM, Ho et al., 2020) with
ancestral and DDIM (Song et al., 2021) sampling.

Forward process on data scaled to [-1, 1] (`x_0 = 2 image - 1`), T steps with variances
`beta_t` (t = 0..T-1 here; the paper's t = 1..T):

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)
    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I),   abar_t = prod_{s<=t} (1 - beta_s)

Schedules (`task.schedule`): 'linear', beta from 1e-4 to 0.02 in T even steps (Ho et al.;
T = 1000 in the paper); 'cosine', `abar(t) = f(t) / f(0)` with `f(t) = cos((t/T + s) /
(1 + s) * pi/2)^2`, s = 0.008, and `beta_t = min(1 - abar(t+1) / abar(t), 0.999)` (Nichol &
Dhariwal, 2021; the clipping avoids the singularity at t = T), abar then recomputed as the
product of the clipped `1 - beta`.

Training (the paper's L_simple): t uniform in 0..T-1, eps ~ N(0, I), `x_t = sqrt(abar_t)
x_0 + sqrt(1 - abar_t) eps`, loss = the mean over pixels of `(eps_theta(x_t, t) - eps)^2`,
averaged over the batch. The eval metric `loss` is the same per-image MSE with the EMA
weights (fresh t and eps from the eval rng, mask-weighted); no likelihood is reported.

EMA: the task state holds `ema_params`, a copy of the initial weights at init, updated after
every optimizer step as `ema <- decay * ema + (1 - decay) * params` (`task.ema_decay`;
`jaxlab.optim.update_ema`, i.e. `optax.incremental_update`). With `task.ema_warmup` the
decay of the update after step s is `min(ema_decay, (1 + s) / (10 + s))` (the
`num_updates` warm-up of TensorFlow's ExponentialMovingAverage), so that on short runs the
initial weights (whose zero-initialized output predicts eps = 0) fade out quickly: with a
fixed 0.999 they would still weigh 0.999^1500 = 22% after 1500 steps. Off by default (the
paper's runs of 800k steps need none). Sampling and eval use the EMA weights (the published
numbers are the EMA's).

Sampling (`sample_images`, under one `lax.scan` over the timesteps, one compiled network):

- 'ddpm' (ancestral, all T steps): `x_T ~ N(0, I)`; at each t the predicted
  `x0_hat = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t)` is clipped to [-1, 1]
  (Ho et al.'s released sampler does this too; it keeps early, poorly predicted steps in
  the data range) and `x_{t-1} ~ N(mu~_t(x_t, x0_hat), beta~_t I)`, the posterior
  q(x_{t-1} | x_t, x_0) at `x0_hat`, with `beta~_t = (1 - abar_{t-1}) / (1 - abar_t)
  beta_t` (the paper's lower variance choice; no noise at the last step).
- 'ddim' (eta = 0, deterministic): on the subsequence of `task.sample_steps` timesteps
  evenly spaced in 0..T-1 (rounded), from tau_i to tau_{i-1} (abar = 1 after the last):
  x0_hat as above (clipped), `eps_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t)`
  (the noise consistent with the clipped x0_hat), `x_prev = sqrt(abar_prev) x0_hat +
  sqrt(1 - abar_prev) eps_hat`.

The images returned are `(x_0 + 1) / 2` clipped to [0, 1].

Options (`config.task`): `schedule` ('linear' | 'cosine'), `timesteps` (T), `ema_decay` (in
[0, 1)), `ema_warmup` (bool), `sampler` ('ddpm' | 'ddim'), `sample_steps` (DDIM's
subsequence length, 1..T).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from clu import metrics as clu_metrics

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.optim import update_ema
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.generative import GenerativeTask, require_unit_images

SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")
COSINE_OFFSET = 0.008
MAX_BETA = 0.999
EpsFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x_t [N, ...], t int32 [N]) -> eps


@flax.struct.dataclass
class NoiseSchedule:
    """The per-timestep constants of a T-step schedule (float32 [T] each)."""

    betas: jax.Array
    alphas_cumprod: jax.Array  # abar_t
    alphas_cumprod_prev: jax.Array  # abar_{t-1} (1 at t = 0)

    @property
    def timesteps(self) -> int:
        """T, the number of steps."""
        return self.betas.shape[0]


def linear_betas(timesteps: int, start: float = 1e-4, end: float = 0.02) -> np.ndarray:
    """float64 [T]: Ho et al.'s linear schedule, `start` to `end` in T even steps."""
    return np.linspace(start, end, timesteps, dtype=np.float64)


def cosine_betas(
    timesteps: int, s: float = COSINE_OFFSET, max_beta: float = MAX_BETA
) -> np.ndarray:
    """float64 [T]: Nichol & Dhariwal's cosine schedule, `beta_t = min(1 - abar(t+1) /
    abar(t), max_beta)` with `abar(t) = f(t) / f(0)`, `f(t) = cos((t/T + s)/(1 + s) pi/2)^2`."""
    grid = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((grid + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return np.minimum(1 - abar[1:] / abar[:-1], max_beta)


def make_schedule(name: str, timesteps: int) -> NoiseSchedule:
    """The `NoiseSchedule` of schedule `name` ('linear' | 'cosine') over `timesteps` steps
    (computed in float64, stored in float32)."""
    check_choice("task.schedule", name, SCHEDULES)
    betas = linear_betas(timesteps) if name == "linear" else cosine_betas(timesteps)
    abar = np.cumprod(1.0 - betas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return NoiseSchedule(f32(betas), f32(abar), f32(abar_prev))


def _bcast(values: jax.Array, x: jax.Array) -> jax.Array:
    """values [N] reshaped to broadcast against x [N, ...]."""
    return values.reshape(values.shape + (1,) * (x.ndim - 1))


def q_sample(schedule: NoiseSchedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise (the closed form of q(x_t | x_0)),
    for per-example timesteps t int32 [N]."""
    abar = _bcast(schedule.alphas_cumprod[t], x0)
    return jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * noise


def predict_x0(schedule: NoiseSchedule, x_t: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clipped to [-1, 1]."""
    abar = _bcast(schedule.alphas_cumprod[t], x_t)
    return jnp.clip((x_t - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar), -1.0, 1.0)


def ddpm_sample(eps_fn: EpsFn, schedule: NoiseSchedule, key: jax.Array, shape: tuple) -> jax.Array:
    """x_0 [shape] in [-1, 1] by ancestral sampling over all T steps (see the module doc),
    one `lax.scan` over t = T-1..0."""
    init_key, steps_key = jax.random.split(key)
    n = shape[0]

    def step(x: jax.Array, t: jax.Array) -> tuple[jax.Array, None]:
        tt = jnp.full((n,), t, jnp.int32)
        x0 = predict_x0(schedule, x, tt, eps_fn(x, tt))
        beta, abar, abar_prev = (
            schedule.betas[t],
            schedule.alphas_cumprod[t],
            schedule.alphas_cumprod_prev[t],
        )
        coef_x0 = jnp.sqrt(abar_prev) * beta / (1.0 - abar)
        coef_xt = jnp.sqrt(1.0 - beta) * (1.0 - abar_prev) / (1.0 - abar)
        variance = beta * (1.0 - abar_prev) / (1.0 - abar)  # 0 at t = 0
        noise = jax.random.normal(jax.random.fold_in(steps_key, t), shape, x.dtype)
        return coef_x0 * x0 + coef_xt * x + jnp.sqrt(variance) * noise, None

    x_T = jax.random.normal(init_key, shape, jnp.float32)
    ts = jnp.arange(schedule.timesteps - 1, -1, -1, dtype=jnp.int32)
    return jax.lax.scan(step, x_T, ts)[0]


def ddim_timesteps(timesteps: int, steps: int) -> np.ndarray:
    """int32 [steps]: the DDIM subsequence, `steps` timesteps evenly spaced in 0..T-1
    (rounded; all of them when steps == T)."""
    return np.round(np.linspace(0, timesteps - 1, steps)).astype(np.int32)


def ddim_sample(
    eps_fn: EpsFn, schedule: NoiseSchedule, key: jax.Array, shape: tuple, steps: int
) -> jax.Array:
    """x_0 [shape] in [-1, 1] by deterministic DDIM (eta = 0) over `steps` timesteps (see
    the module doc), one `lax.scan`."""
    n = shape[0]
    taus = ddim_timesteps(schedule.timesteps, steps)
    prev = np.concatenate([[-1], taus[:-1]]).astype(np.int32)

    def step(x: jax.Array, ts: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        t, t_prev = ts
        tt = jnp.full((n,), t, jnp.int32)
        x0 = predict_x0(schedule, x, tt, eps_fn(x, tt))
        abar = schedule.alphas_cumprod[t]
        eps = (x - jnp.sqrt(abar) * x0) / jnp.sqrt(1.0 - abar)
        abar_prev = jnp.where(t_prev >= 0, schedule.alphas_cumprod[jnp.maximum(t_prev, 0)], 1.0)
        return jnp.sqrt(abar_prev) * x0 + jnp.sqrt(1.0 - abar_prev) * eps, None

    x_T = jax.random.normal(key, shape, jnp.float32)
    return jax.lax.scan(step, x_T, (jnp.asarray(taus[::-1]), jnp.asarray(prev[::-1])))[0]


@flax.struct.dataclass
class DiffusionState:
    """The noise model's parameters, their optimizer state and their EMA."""

    params: PyTree
    opt_state: PyTree
    ema_params: PyTree


class DiffusionTask(GenerativeTask):
    """DDPM training and sampling (see the module doc) of `model(x, t, train=...)`."""

    name = "diffusion"
    rng_streams = ("params", "dropout", "noise")
    train_metric_names = ("loss", "learning_rate")

    def __init__(self, setup: TaskSetup) -> None:
        require_unit_images(setup, self.name)
        if "image" not in setup.info.features:
            raise ConfigError(f"task 'diffusion' needs an 'image' dataset, got {setup.info.name!r}")
        task = setup.config.task
        self.image_shape = tuple(setup.info.features["image"].shape)
        timesteps = task.get("timesteps", 1000)
        check_positive("task.timesteps", timesteps, integer=True)
        self.schedule_name = task.get("schedule", "linear")
        self.schedule = make_schedule(self.schedule_name, timesteps)
        if setup.config.optimizer.get("ema_decay", 0.0):
            raise ConfigError(
                "task 'diffusion' keeps its own EMA: set task.ema_decay, not optimizer.ema_decay"
            )
        self.ema_decay = task.get("ema_decay", 0.9999)
        check_positive("task.ema_decay", self.ema_decay, allow_zero=True)
        if self.ema_decay >= 1:
            raise ConfigError(f"task.ema_decay must be in [0, 1), got {self.ema_decay!r}")
        self.ema_warmup = task.get("ema_warmup", False)
        if not isinstance(self.ema_warmup, bool):
            raise ConfigError(f"task.ema_warmup must be true or false, got {self.ema_warmup!r}")
        self.sampler = task.get("sampler", "ddpm")
        check_choice("task.sampler", self.sampler, SAMPLERS)
        self.sample_steps = task.get("sample_steps", 50)
        check_positive("task.sample_steps", self.sample_steps, integer=True)
        if self.sample_steps > timesteps:
            raise ConfigError(
                f"task.sample_steps must be <= task.timesteps ({timesteps}), got "
                f"{self.sample_steps}"
            )
        kwargs = {k: v for k, v in setup.config.model.to_dict().items() if k != "name"}
        self.model: nn.Module = build_model(setup.config.model.name, kwargs)
        self.optimizer = setup.optimizer()

    # --- state -------------------------------------------------------------------------

    def init_state(self, batch: Batch, ctx: StepContext) -> DiffusionState:
        """Model params from one example, the optimizer state, and the EMA as their copy."""
        x = batch["image"][:1]
        params = self.model.init(
            {"params": ctx.rng("params"), "dropout": ctx.rng("dropout")},
            x,
            jnp.zeros((1,), jnp.int32),
            train=False,
        )["params"]
        return DiffusionState(
            params, self.optimizer.tx.init(params), jax.tree.map(jnp.copy, params)
        )

    def variables(self, state: DiffusionState) -> dict[str, PyTree]:
        """{'params': the raw (non-EMA) parameters}."""
        return {"params": state.params}

    def with_variables(self, state: DiffusionState, variables: dict[str, PyTree]) -> PyTree:
        """A fresh state (optimizer and EMA anew) around `variables['params']`."""
        params = variables["params"]
        return DiffusionState(
            params, self.optimizer.tx.init(params), jax.tree.map(jnp.copy, params)
        )

    # --- objective ---------------------------------------------------------------------

    def per_image_loss(
        self, params: PyTree, images: jax.Array, key: jax.Array, dropout_key: jax.Array | None
    ) -> jax.Array:
        """float32 [N]: the mean over pixels of `(eps_theta(x_t, t) - eps)^2` for t uniform
        and eps standard normal drawn with `key` (dropout on when `dropout_key` is given)."""
        x0 = images * 2.0 - 1.0
        t_key, eps_key = jax.random.split(key)
        t = jax.random.randint(t_key, (x0.shape[0],), 0, self.schedule.timesteps)
        eps = jax.random.normal(eps_key, x0.shape, x0.dtype)
        x_t = q_sample(self.schedule, x0, t, eps)
        train = dropout_key is not None
        rngs = {"dropout": dropout_key} if train else {}
        pred = self.model.apply({"params": params}, x_t, t, train=train, rngs=rngs)
        return jnp.mean(jnp.square(pred - eps), axis=tuple(range(1, x0.ndim)))

    def train_step(
        self, state: DiffusionState, batch: Batch, ctx: StepContext
    ) -> tuple[DiffusionState, Metrics]:
        """One optimizer step on L_simple, then the EMA update."""

        def loss_of(params: PyTree) -> jax.Array:
            return self.per_image_loss(
                params, batch["image"], ctx.rng("noise"), ctx.rng("dropout")
            ).mean()

        loss, grads = jax.value_and_grad(loss_of)(state.params)
        grads, loss = ctx.pmean(grads), ctx.pmean(loss)
        updates, opt_state = self.optimizer.tx.update(
            grads, state.opt_state, state.params, value=loss
        )
        params = optax.apply_updates(state.params, updates)
        ema = update_ema(state.ema_params, params, self.ema_decay_at(ctx.step))
        metrics = {
            "loss": average(loss),
            "learning_rate": clu_metrics.LastValue(
                total=jnp.asarray(self.optimizer.schedule(ctx.step), jnp.float32),
                count=jnp.ones((), jnp.int32),
            ),
        }
        return DiffusionState(params, opt_state, ema), metrics

    def ema_decay_at(self, step: jax.Array) -> jax.Array:
        """The EMA decay of the update after step `step` (see the module doc)."""
        decay = jnp.asarray(self.ema_decay, jnp.float32)
        if self.ema_warmup:
            s = jnp.asarray(step, jnp.float32)
            decay = jnp.minimum(decay, (1.0 + s) / (10.0 + s))
        return decay

    def eval_step(
        self, state: DiffusionState, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        """The per-image epsilon MSE with the EMA weights, weighted by `batch['mask']`."""
        loss = self.per_image_loss(state.ema_params, batch["image"], ctx.rng("noise"), None)
        return carry, {"loss": average(loss, batch["mask"])}

    # --- sampling ----------------------------------------------------------------------

    def sample_images(self, task_state: DiffusionState, key: jax.Array, num: int) -> jax.Array:
        """`num` images [num, H, W, C] in [0, 1] from the EMA weights with `task.sampler`."""

        def eps_fn(x: jax.Array, t: jax.Array) -> jax.Array:
            return self.model.apply({"params": task_state.ema_params}, x, t, train=False)

        shape = (num, *self.image_shape)
        if self.sampler == "ddpm":
            x0 = ddpm_sample(eps_fn, self.schedule, key, shape)
        else:
            x0 = ddim_sample(eps_fn, self.schedule, key, shape, self.sample_steps)
        return jnp.clip((x0 + 1.0) / 2.0, 0.0, 1.0)


def make_diffusion_task(setup: TaskSetup) -> DiffusionTask:
    """Builds the `diffusion` task of `setup.config` (see the module doc)."""
    return DiffusionTask(setup)
