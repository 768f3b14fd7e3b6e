"""The `vae` task: a variational autoencoder (Kingma & Welling, 2014) trained on the
negative ELBO, evaluated in nats per image, with an importance-weighted bound (Burda et
al., 2016).

For an image x (D pixel values in [0, 1]) and the model's q(z|x) = N(mean, diag(exp(logvar))):

    -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || N(0, I)),
    KL = 1/2 sum_j (exp(logvar_j) + mean_j^2 - 1 - logvar_j)             (analytic),

the expectation estimated with one reparameterized sample z = mean + exp(logvar/2) * eps.
Train steps minimize recon + beta_t * KL with beta_t = beta * min(1, step /
kl_warmup_steps) (linear KL warm-up from 0; no warm-up when kl_warmup_steps is 0).

p(x|z), summed over the pixels (`task.likelihood`):
  'bernoulli'    x_i ~ Bernoulli(sigmoid(l_i)) (binarized data; on grey levels the soft
                 cross entropy, which is not a normalized likelihood);
  'gaussian'     x_i ~ N(mu_i, exp(s_i)^2), a density on the [0, 1] scale (its nats are not
                 comparable with the discrete ones);
  'categorical'  the level round(x_i * (K - 1)) ~ Categorical(softmax(l_i)) over K levels:
                 exact discrete nats (K = 17 for gen_digits, 256 for 8-bit images).

`config.task` keys: `likelihood`, `num_levels` (categorical K; 0: 17 on gen_digits, else
256), `beta` (> 0, default 1), `kl_warmup_steps` (>= 0), `binarize` ('', 'threshold',
'dynamic': see `jaxlab.tasks.latent_images.binarize`).

Train metrics: `loss` (recon + beta_t * KL), `recon`, `kl`, `beta`. Eval metrics (mask-
weighted per image): `loss` (-ELBO at beta = 1, nats per image), `bits_per_dim`, `recon`,
`kl`. The `iwae` evaluator (options `k`: an integer or a tuple of them, default (1, 10,
100); `chunk`: samples decoded at once, default 10; `every_steps`) reports `nll_k<k>` =
mean over the eval images of -(logsumexp_i log w_i - log k), log w_i = log p(x|z_i) +
log N(z_i; 0, I) - log q(z_i|x), z_i ~ q(z|x): an upper bound on -log p(x) that tightens
as k grows (k = 1 is the ELBO with a sampled KL). Samples: decoder means of z ~ N(0, I).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.models.autoencoder import LIKELIHOODS
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.generative import bits_per_dim, require_unit_images
from jaxlab.tasks.latent_images import BINARIZE, LatentImageTask, binarize, check_task_keys
from jaxlab.tasks.supervised import ApplyFn, SupervisedState

VAE_OPTIONS = ("likelihood", "num_levels", "beta", "kl_warmup_steps", "binarize")
_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mean, diag(exp(logvar))) || N(0, I)) per row [B] (analytic)."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def gaussian_log_density(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z; mean, diag(exp(logvar))) summed over the last axis."""
    return -0.5 * jnp.sum(_LOG_2PI + logvar + (z - mean) ** 2 * jnp.exp(-logvar), axis=-1)


def log_likelihood(out: jax.Array, x: jax.Array, likelihood: str) -> jax.Array:
    """log p(x|z) [B] of images x [B, H, W, C] in [0, 1] under the decoder output
    `out` [B, H, W, C, P] (see the module doc; categorical: K = P levels)."""
    if likelihood == "bernoulli":
        per_value = -optax.sigmoid_binary_cross_entropy(out[..., 0], x)
    elif likelihood == "gaussian":
        mean, log_scale = out[..., 0], out[..., 1]
        per_value = -0.5 * _LOG_2PI - log_scale - 0.5 * ((x - mean) * jnp.exp(-log_scale)) ** 2
    else:
        levels = out.shape[-1]
        index = jnp.clip(jnp.rint(x * (levels - 1)), 0, levels - 1).astype(jnp.int32)
        log_probs = jax.nn.log_softmax(out, axis=-1)
        per_value = jnp.take_along_axis(log_probs, index[..., None], axis=-1)[..., 0]
    return per_value.reshape((x.shape[0], -1)).sum(-1)


def decoder_mean(out: jax.Array, likelihood: str) -> jax.Array:
    """The mean image [B, H, W, C] in [0, 1] of a decoder output [B, H, W, C, P]."""
    if likelihood == "bernoulli":
        return jax.nn.sigmoid(out[..., 0])
    if likelihood == "gaussian":
        return jnp.clip(out[..., 0], 0.0, 1.0)
    levels = out.shape[-1]
    values = jnp.arange(levels, dtype=jnp.float32) / (levels - 1)
    return jax.nn.softmax(out, axis=-1) @ values


def kl_weight(step: jax.Array, beta: float, warmup_steps: int) -> jax.Array:
    """beta_t = beta * min(1, step / warmup_steps) (beta when warmup_steps is 0)."""
    if warmup_steps <= 0:
        return jnp.asarray(beta, jnp.float32)
    return beta * jnp.minimum(1.0, step.astype(jnp.float32) / warmup_steps)


class VAETask(LatentImageTask):
    """See the module docstring."""

    def __init__(self, setup: TaskSetup) -> None:
        config = setup.config
        require_unit_images(setup, "vae")
        task = config.task
        check_task_keys(task, "vae", VAE_OPTIONS)
        self.likelihood = task.get("likelihood", "bernoulli")
        check_choice("task.likelihood", self.likelihood, LIKELIHOODS)
        levels = task.get("num_levels", 0)
        check_positive("task.num_levels", levels, allow_zero=True, integer=True)
        if levels == 1:
            raise ConfigError("task.num_levels must be 0 (automatic) or >= 2, got 1")
        self.num_levels = levels or (17 if config.dataset.name == "gen_digits" else 256)
        self.beta = task.get("beta", 1.0)
        check_positive("task.beta", self.beta)
        self.kl_warmup_steps = task.get("kl_warmup_steps", 0)
        check_positive("task.kl_warmup_steps", self.kl_warmup_steps, allow_zero=True, integer=True)
        self.binarize_mode = task.get("binarize", "")
        check_choice("task.binarize", self.binarize_mode, BINARIZE)
        self.image_shape = tuple(setup.info.features["image"].shape)
        self.num_dims = math.prod(self.image_shape)
        kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
        for key, value in (("likelihood", self.likelihood), ("num_levels", self.num_levels)):
            if kwargs.get(key) is None:
                kwargs[key] = value
            elif kwargs[key] != value:
                raise ConfigError(
                    f"model.{key} {kwargs[key]!r} differs from the task's {value!r} "
                    f"(task.{key}); leave model.{key} unset"
                )
        model = build_model(config.model.name, kwargs, image_shape=self.image_shape)
        if not hasattr(model, "latent_dim"):
            raise ConfigError(f"task 'vae' needs model 'vae', got {config.model.name!r}")
        super().__init__(
            name="vae",
            model=model,
            loss_fn=self._loss_fn,
            eval_fn=self._eval_fn,
            optimizer=setup.optimizer(),
            train_metric_names=("loss", "recon", "kl", "beta"),
            eval_metric_names=("loss", "bits_per_dim", "recon", "kl"),
            rng_streams=("params", "dropout", "binarize", "latent"),
            ema_decay=ema_decay(config),
            norms_every=config.log_every_steps if config.get("log_norms") else None,
        )

    def terms(
        self, variables: PyTree, images: jax.Array, ctx: StepContext
    ) -> tuple[jax.Array, jax.Array]:
        """(-log p(x|z) [B] at one z ~ q(z|x), KL [B]) of binarized images."""
        x = binarize(images, self.binarize_mode, ctx.rng("binarize"))
        out, mean, logvar = self.model.apply(variables, x, ctx.rng("latent"))
        return -log_likelihood(out, x, self.likelihood), gaussian_kl(mean, logvar)

    def _loss_fn(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        recon, kl = self.terms({"params": params, **model_state}, batch["image"], ctx)
        beta = kl_weight(ctx.step, self.beta, self.kl_warmup_steps)
        loss = recon + beta * kl
        metrics = {
            "loss": average(loss),
            "recon": average(recon),
            "kl": average(kl),
            "beta": average(beta),
        }
        return loss.mean(), (model_state, metrics)

    def _eval_fn(
        self, apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        recon, kl = self.terms({"params": params, **model_state}, batch["image"], ctx)
        mask = batch["mask"]
        nats = recon + kl
        return {
            "loss": average(nats, mask),
            "bits_per_dim": average(bits_per_dim(nats, self.num_dims), mask),
            "recon": average(recon, mask),
            "kl": average(kl, mask),
        }

    # --- importance-weighted bound -------------------------------------------------------

    def iwae_nll(
        self, variables: PyTree, images: jax.Array, key: jax.Array, k: int, chunk: int = 10
    ) -> jax.Array:
        """-(logsumexp_i log w_i - log k) [B] over k samples z_i ~ q(z|x) (module doc), the
        samples decoded `chunk` at a time under `lax.scan` (memory ~ chunk * B images)."""
        x = binarize(images, self.binarize_mode, jax.random.fold_in(key, 0))
        mean, logvar = self.model.apply(variables, x, method=self.model.encode)
        chunk = min(chunk, k)
        num_chunks = -(-k // chunk)

        def body(running: jax.Array, i: jax.Array) -> tuple[jax.Array, None]:
            eps = jax.random.normal(jax.random.fold_in(key, i + 1), (chunk, *mean.shape))
            z = mean + jnp.exp(0.5 * logvar) * eps  # [chunk, B, d]
            flat = z.reshape((-1, z.shape[-1]))
            out = self.model.apply(variables, flat, method=self.model.decode)
            x_rep = jnp.broadcast_to(x, (chunk, *x.shape)).reshape((-1, *x.shape[1:]))
            log_px = log_likelihood(out, x_rep, self.likelihood).reshape(z.shape[:2])
            log_w = log_px + gaussian_log_density(z, 0.0, jnp.zeros_like(z))
            log_w = log_w - gaussian_log_density(z, mean, logvar)
            index = i * chunk + jnp.arange(chunk)
            log_w = jnp.where((index < k)[:, None], log_w, -jnp.inf)
            return jnp.logaddexp(running, jax.nn.logsumexp(log_w, axis=0)), None

        start = jnp.full(mean.shape[:1], -jnp.inf, jnp.float32)
        total, _ = jax.lax.scan(body, start, jnp.arange(num_chunks))
        return -(total - math.log(k))

    def iwae_eval_step(
        self, ks: tuple[int, ...], chunk: int
    ) -> Callable[[SupervisedState, Batch, PyTree, StepContext], tuple[PyTree, Metrics]]:
        """A task-protocol eval step reporting `nll_k<k>` for each k (mask-weighted)."""

        def step(state: SupervisedState, batch: Batch, carry: PyTree, ctx: StepContext):
            variables = self.eval_variables(state)
            metrics = {}
            for k in ks:
                key = jax.random.fold_in(ctx.rng("latent"), k)
                nll = self.iwae_nll(variables, batch["image"], key, k, chunk)
                metrics[f"nll_k{k}"] = average(nll, batch["mask"])
            return carry, metrics

        return step

    # --- latents and images --------------------------------------------------------------

    def latent_means(self, task_state: SupervisedState, images: jax.Array) -> jax.Array:
        """The means [B, latent_dim] of q(z|x)."""
        variables = self.eval_variables(task_state)
        return self.model.apply(variables, images, method=self.model.encode)[0]

    def decode_images(self, task_state: SupervisedState, z: jax.Array) -> jax.Array:
        """The decoder's mean images of latents z."""
        out = self.model.apply(self.eval_variables(task_state), z, method=self.model.decode)
        return decoder_mean(out, self.likelihood)

    def sample_images(self, task_state: SupervisedState, key: jax.Array, num: int) -> jax.Array:
        """Decoder means of prior samples z ~ N(0, I)."""
        z = jax.random.normal(key, (num, self.model.latent_dim))
        return self.decode_images(task_state, z)

    def evaluators(self) -> dict[str, Callable[..., Any]]:
        return {**super().evaluators(), "iwae": make_iwae_evaluator}


def make_iwae_evaluator(task: VAETask, setup: TaskSetup, options: ml_collections.ConfigDict) -> Any:
    """`config.evaluators.iwae`: an exact pass over the eval split reporting `nll_k<k>`."""
    from jaxlab.train.evaluation import DatasetEvaluator  # the loop imports the tasks

    unknown = sorted(set(options) - {"k", "chunk", "every_steps"})
    if unknown:
        raise ConfigError(
            f"evaluators.iwae: unknown option(s) {', '.join(unknown)}; valid: k, chunk, every_steps"
        )
    ks = options.get("k", (1, 10, 100))
    ks = tuple(ks) if isinstance(ks, (tuple, list)) else (ks,)
    for k in ks:
        check_positive("evaluators.iwae.k", k, integer=True)
    chunk = options.get("chunk", 10)
    check_positive("evaluators.iwae.chunk", chunk, integer=True)
    return DatasetEvaluator(
        "iwae",
        task.iwae_eval_step(ks, chunk),
        task.rng_streams,
        every_steps=int(options.get("every_steps", 0)),
    )


def make_vae_task(setup: TaskSetup) -> VAETask:
    """The `vae` task of `setup.config` (ConfigError for bad options)."""
    return VAETask(setup)
