"""The `autoencoder` task: reconstruction of images through a code (jaxlab.models.autoencoder
`mlp_autoencoder` / `conv_autoencoder`), optionally denoising.

The model maps images x [B, H, W, C] in [0, 1] to per-pixel logits; the reconstruction is
x_hat = sigmoid(logits). Per-image loss, summed over the pixels:

    'bce':  sum_i -[x_i log x_hat_i + (1 - x_i) log(1 - x_hat_i)]   (optax's
            sigmoid_binary_cross_entropy on the logits, soft targets allowed)
    'mse':  sum_i (x_hat_i - x_i)^2

`config.task` keys: `loss` ('bce' or 'mse'), `denoise_std` (>= 0; > 0 trains a denoising
autoencoder: the model's input is x + denoise_std * N(0, I) on train steps, the target stays
the clean x; evaluation feeds clean images), `binarize` ('', 'threshold', 'dynamic': see
`jaxlab.tasks.latent_images.binarize`; applied to both input and target).

Train metrics `loss`; eval metrics `loss` (per image, mask-weighted) and `mse`. Samples
(`sample_images`): codes drawn from N(mean, diag(var)) of the EMA of the training codes'
statistics that the model keeps in 'code_stats', decoded. The image evaluators of
`LatentImageTask` (reconstructions, interpolations, latent_scatter) work on the codes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxlab.config import check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.models.autoencoder import CODE_STATS
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.generative import require_unit_images
from jaxlab.tasks.latent_images import (
    BINARIZE,
    LatentImageTask,
    binarize,
    check_task_keys,
)
from jaxlab.tasks.supervised import ApplyFn, SupervisedState

RECONSTRUCTION_LOSSES = ("bce", "mse")
AUTOENCODER_OPTIONS = ("loss", "denoise_std", "binarize")


def reconstruction_loss(logits: jax.Array, target: jax.Array, kind: str) -> jax.Array:
    """Per-image loss [B] of logits against targets [B, H, W, C] in [0, 1] (module doc)."""
    if kind == "bce":
        per_pixel = optax.sigmoid_binary_cross_entropy(logits, target)
    else:
        per_pixel = (jax.nn.sigmoid(logits) - target) ** 2
    return per_pixel.reshape((per_pixel.shape[0], -1)).sum(-1)


def corrupt(images: jax.Array, std: float, key: jax.Array) -> jax.Array:
    """The denoising autoencoder's input: images + std * N(0, I)."""
    return images + std * jax.random.normal(key, images.shape, images.dtype)


class AutoencoderTask(LatentImageTask):
    """See the module docstring."""

    def __init__(self, setup: TaskSetup) -> None:
        config = setup.config
        require_unit_images(setup, "autoencoder")
        check_task_keys(config.task, "autoencoder", AUTOENCODER_OPTIONS)
        self.loss_kind = config.task.get("loss", "bce")
        check_choice("task.loss", self.loss_kind, RECONSTRUCTION_LOSSES)
        self.denoise_std = config.task.get("denoise_std", 0.0)
        check_positive("task.denoise_std", self.denoise_std, allow_zero=True)
        self.binarize_mode = config.task.get("binarize", "")
        check_choice("task.binarize", self.binarize_mode, BINARIZE)
        self.image_shape = tuple(setup.info.features["image"].shape)
        model = build_model(
            config.model.name,
            {k: v for k, v in config.model.to_dict().items() if k != "name"},
            image_shape=self.image_shape,
        )
        super().__init__(
            name="autoencoder",
            model=model,
            loss_fn=self._loss_fn,
            eval_fn=self._eval_fn,
            optimizer=setup.optimizer(),
            train_metric_names=("loss",),
            eval_metric_names=("loss", "mse"),
            rng_streams=("params", "dropout", "binarize", "noise"),
            ema_decay=ema_decay(config),
            norms_every=config.log_every_steps if config.get("log_norms") else None,
        )

    def model_input(
        self, images: jax.Array, ctx: StepContext, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        """(the model's input, the target): binarized images, noised on train steps when
        denoising."""
        target = binarize(images, self.binarize_mode, ctx.rng("binarize"))
        if train and self.denoise_std > 0:
            return corrupt(target, self.denoise_std, ctx.rng("noise")), target
        return target, target

    def _loss_fn(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        inputs, target = self.model_input(batch["image"], ctx, train)
        logits, new_state = apply_fn(
            {"params": params, **model_state}, inputs, train=train, mutable=[CODE_STATS]
        )
        loss = reconstruction_loss(logits, target, self.loss_kind)
        # Under pmap each device saw its own batch: average the code statistics so that the
        # replicated state stays identical (the mean of per-device variances).
        new_state = ctx.pmean(dict(new_state))
        return loss.mean(), (new_state, {"loss": average(loss)})

    def _eval_fn(
        self, apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        inputs, target = self.model_input(batch["image"], ctx, False)
        logits = apply_fn({"params": params, **model_state}, inputs, train=False)
        loss = reconstruction_loss(logits, target, self.loss_kind)
        mse = reconstruction_loss(logits, target, "mse")
        return {"loss": average(loss, batch["mask"]), "mse": average(mse, batch["mask"])}

    def latent_means(self, task_state: SupervisedState, images: jax.Array) -> jax.Array:
        """The codes [B, code_dim] of images."""
        variables = self.eval_variables(task_state)
        return self.model.apply(variables, images, method=self.model.encode)

    def decode_images(self, task_state: SupervisedState, z: jax.Array) -> jax.Array:
        """sigmoid of the decoder's logits of codes z."""
        variables = self.eval_variables(task_state)
        return jax.nn.sigmoid(self.model.apply(variables, z, method=self.model.decode))

    def sample_images(self, task_state: SupervisedState, key: jax.Array, num: int) -> jax.Array:
        """Codes from the Gaussian of the training codes' EMA statistics, decoded."""
        variables = self.eval_variables(task_state)
        mean, var = self.model.apply(variables, method=self.model.code_distribution)
        z = mean + jnp.sqrt(var) * jax.random.normal(key, (num, mean.shape[0]))
        return self.decode_images(task_state, z)


def make_autoencoder_task(setup: TaskSetup) -> AutoencoderTask:
    """The `autoencoder` task of `setup.config` (ConfigError for bad options)."""
    return AutoencoderTask(setup)
