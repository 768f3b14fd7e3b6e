"""The task `cpc`: contrastive predictive coding on images (van den Oord, Li and Vinyals,
2018), with the network of `jaxlab.models.ssl_cpc.CPCNet`.

Each image becomes a grid of overlapping patches, each patch an encoding z_{t,j} (row t,
column j); a GRU down each column gives the context c_{t,j}; for every prediction step
k = 1..K a separate linear map W_k predicts z_{t+k,j} from c_{t,j}. The loss is InfoNCE
(`jaxlab.losses_contrastive.in_batch_info_nce`) for each k: the prediction W_k c_{t,j} of
example b scores its true target z_{t+k,j,b} against every other target of the batch for
the same k (all rows t' + k, columns and examples: other positions and other examples are
the negatives) by the dot product,

    L_k = -mean over (b, t, j), t + k < Gh, of log softmax_{(b', t', j')}(p . z')[(b, t, j)]

and the task minimizes the mean of L_1 .. L_K. Under pmap the predictions and targets are
gathered from all devices first (`StepContext.all_gather`), so the negatives are those of the
global batch, as under jit (batch norm in the encoder uses `bn_axis_name`).

Train and eval metrics: `loss` (the mean of the L_k), `accuracy` (how often the true target
scores highest). Eval padding examples are left out of the predictions and the negatives.
The `knn` and `linear_probe` evaluators read the context vectors averaged over the grid,
in inference mode (the paper's linear-classification features).

`config.task` options: `patch_size` (4), `patch_stride` (2), `feature_dim` (64),
`context_dim` (64), `prediction_steps` K (2; fewer than the grid's rows).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError, check_positive
from jaxlab.losses_contrastive import in_batch_info_nce
from jaxlab.metrics import average
from jaxlab.models.ssl_cpc import CPCNet
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.representation import (
    RepresentationTask,
    apply_variables,
    build_encoder,
    check_task_options,
)
from jaxlab.tasks.supervised import ApplyFn, SupervisedState, SupervisedTask

OPTIONS = ("patch_size", "patch_stride", "feature_dim", "context_dim", "prediction_steps")


def cpc_losses(
    z: jax.Array, predictions: jax.Array, example_mask: jax.Array | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-prediction InfoNCE of every step k: z [B, Gh, Gw, D], predictions [K, B, Gh, Gw,
    D] (prediction k - 1 at row t aims at row t + k). Returns losses and correct [K, B*Gh*Gw]
    and the bool mask of the predictions that exist (t + k < Gh, real example)."""
    b, gh, gw, d = z.shape
    num_steps = predictions.shape[0]
    rows = jnp.arange(gh)[None, :, None]
    example = jnp.ones((b,), bool) if example_mask is None else example_mask > 0

    def one(k: jax.Array, pred: jax.Array) -> tuple[jax.Array, ...]:
        target = jnp.roll(z, -k, axis=1)  # target[:, t] = z[:, t + k] where t + k < Gh
        valid = (rows + k < gh) & example[:, None, None]  # [B, Gh, 1] -> [B, Gh, Gw]
        valid = jnp.broadcast_to(valid, (b, gh, gw)).reshape(-1)
        loss, correct = in_batch_info_nce(pred.reshape(-1, d), target.reshape(-1, d), valid)
        return loss, correct, valid

    return jax.vmap(one)(jnp.arange(1, num_steps + 1), predictions)


class CPCTask(RepresentationTask, SupervisedTask):
    """The task `cpc` (see the module docstring)."""

    def __init__(self, setup: TaskSetup) -> None:
        options = setup.config.task
        check_task_options("cpc", options, OPTIONS)
        defaults = {
            "patch_size": 4,
            "patch_stride": 2,
            "feature_dim": 64,
            "context_dim": 64,
            "prediction_steps": 2,
        }
        sizes = {k: options.get(k, v) for k, v in defaults.items()}
        for key, value in sizes.items():
            check_positive(f"task.{key}", value, integer=True)
        image_shape = tuple(setup.info.image_shape) if setup.info is not None else None
        if image_shape is not None:
            rows = (image_shape[0] - sizes["patch_size"]) // sizes["patch_stride"] + 1
            if sizes["patch_size"] > min(image_shape[:2]) or sizes["prediction_steps"] >= rows:
                raise ConfigError(
                    f"task.prediction_steps ({sizes['prediction_steps']}) must be fewer than "
                    f"the patch grid's rows ({rows} for {image_shape[0]}x{image_shape[1]} "
                    f"images, patch_size {sizes['patch_size']}, patch_stride "
                    f"{sizes['patch_stride']})"
                )
        model = CPCNet(
            encoder=build_encoder(setup, sizes["feature_dim"], setup.axis_name),
            feature_dim=sizes["feature_dim"],
            patch_size=sizes["patch_size"],
            stride=sizes["patch_stride"],
            context_dim=sizes["context_dim"],
            prediction_steps=sizes["prediction_steps"],
        )
        super().__init__(
            name="cpc",
            model=model,
            loss_fn=self._loss_fn,
            eval_fn=self._eval_fn,
            optimizer=setup.optimizer(),
            input_key="image",
            train_metric_names=("loss", "accuracy"),
            eval_metric_names=("loss", "accuracy"),
            ema_decay=ema_decay(setup.config),
        )

    def embed(self, task_state: SupervisedState, images: jax.Array) -> jax.Array:
        """The grid-averaged context vectors in inference mode (EMA parameters if kept)."""
        params = task_state.ema_params if self.ema_decay is not None else task_state.params
        variables = {"params": params, **task_state.model_state}
        return self.model.apply(variables, images, method=CPCNet.represent)

    def _metrics(self, z: jax.Array, predictions: jax.Array, ctx: StepContext, mask=None):
        if mask is not None:
            mask = ctx.all_gather(mask)
        loss, correct, valid = cpc_losses(
            ctx.all_gather(z),
            jnp.moveaxis(ctx.all_gather(jnp.moveaxis(predictions, 0, 1)), 1, 0),
            mask,
        )
        # The mean over k of each step's mean over its predictions.
        per_step = jnp.sum(loss, -1) / jnp.maximum(jnp.sum(valid, -1), 1)
        metrics = {"loss": average(loss, valid), "accuracy": average(correct, valid)}
        return jnp.mean(per_step), metrics

    def _loss_fn(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        (z, _, predictions), new_state = apply_variables(
            apply_fn,
            {"params": params, **model_state},
            batch["image"],
            train=train,
            rng=ctx.rng("dropout"),
        )
        loss, metrics = self._metrics(z, predictions, ctx)
        return loss, (new_state, metrics)

    def _eval_fn(
        self, apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        z, _, predictions = apply_fn({"params": params, **model_state}, batch["image"], train=False)
        return self._metrics(z, predictions, ctx, batch["mask"])[1]


def make_cpc_task(setup: TaskSetup) -> CPCTask:
    """Builds the `cpc` task of `setup.config` (ConfigError for bad options)."""
    return CPCTask(setup)
