"""The task `simclr`: SimCLR (Chen, Kornblith, Norouzi and Hinton, 2020).

Each train example carries two augmented views ('views' [B, 2, H, W, C]: set
`dataset.num_views = 2` and `dataset.augment`, e.g. random_resized_crop and color_jitter).
Both views go through the encoder f and the projection head g in one forward pass (so
batch norm normalizes the 2B images together, as the paper's implementation does), giving
z1, z2 [B, out_dim]. The loss is NT-Xent (`jaxlab.losses_contrastive.nt_xent`) over the
2N x 2N cosine-similarity matrix of the GLOBAL batch divided by `task.temperature`, the
self-similarities masked: each view's positive is the other view of its example, the other
2N - 2 views are its negatives.

Negatives across devices: under pmap the projections are gathered with
`StepContext.all_gather` (`lax.all_gather(tiled=True)` over the data axis) before the loss,
so every device computes the loss of the global batch; the transpose of the gather sums
the devices' cotangents, and with the gradients `pmean`-ed (SupervisedTask) the update is
that of the global loss. Batch norm uses `bn_axis_name` under pmap, so its statistics are
the global batch's as under jit: the loss and the update are the same under jit, pmap and
any device count (tests/tasks/test_simclr.py, 8 simulated devices).

Built on `SupervisedTask` (one model: encoder and head together, one optimizer, the
parameter EMA if asked) and `RepresentationTask` (`knn` and `linear_probe` evaluators on
the encoder's representation h, before the head, in inference mode).

Train metrics: `loss` and `contrastive_accuracy` (how often a view's nearest neighbour in
the batch is its positive). Eval metric (no views at eval): `uniformity` of the eval
batch's projections (Wang & Isola 2020; near 0 when the embedding collapses).

`config.task` options: `temperature` (default 0.5, > 0), `feature_dim` (the
representation's width, default 128), `proj_hidden_dim` (256), `proj_dim` (64),
`proj_depth` (hidden layers of the head, 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from clu import metrics as clu_metrics

from jaxlab.config import ConfigError, check_positive
from jaxlab.data.registry import num_views
from jaxlab.losses_contrastive import nt_xent, uniformity
from jaxlab.metrics import average
from jaxlab.models.ssl_heads import EncoderWithProjection, ProjectionHead
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.representation import (
    RepresentationTask,
    apply_variables,
    build_encoder,
    check_task_options,
)
from jaxlab.tasks.supervised import ApplyFn, SupervisedState, SupervisedTask

OPTIONS = ("temperature", "feature_dim", "proj_hidden_dim", "proj_dim", "proj_depth")


def require_two_views(setup: TaskSetup, task_name: str) -> None:
    """ConfigError unless the train batches carry two views per example."""
    if num_views(setup.config) != 2:
        raise ConfigError(
            f"task {task_name!r} needs dataset.num_views = 2 (and dataset.augment ops), got "
            f"{setup.config.dataset.num_views!r}"
        )


def projection_model(setup: TaskSetup, options: ml_collections.ConfigDict) -> EncoderWithProjection:
    """The encoder (`config.model`, `feature_dim` wide) with the projection head of
    `options` (feature_dim, proj_hidden_dim, proj_dim, proj_depth; checked here)."""
    sizes = {
        "feature_dim": options.get("feature_dim", 128),
        "proj_hidden_dim": options.get("proj_hidden_dim", 256),
        "proj_dim": options.get("proj_dim", 64),
        "proj_depth": options.get("proj_depth", 1),
    }
    for key, value in sizes.items():
        check_positive(f"task.{key}", value, integer=True, allow_zero=key == "proj_depth")
    encoder = build_encoder(setup, sizes["feature_dim"], setup.axis_name)
    head = ProjectionHead(
        hidden_dim=sizes["proj_hidden_dim"],
        out_dim=sizes["proj_dim"],
        depth=sizes["proj_depth"],
        bn_axis_name=setup.axis_name,
    )
    return EncoderWithProjection(encoder=encoder, head=head)


class SimCLRTask(RepresentationTask, SupervisedTask):
    """The task `simclr` (see the module docstring)."""

    def __init__(self, setup: TaskSetup) -> None:
        options = setup.config.task
        check_task_options("simclr", options, OPTIONS)
        require_two_views(setup, "simclr")
        self.temperature = options.get("temperature", 0.5)
        check_positive("task.temperature", self.temperature)
        super().__init__(
            name="simclr",
            model=projection_model(setup, options),
            loss_fn=self._loss_fn,
            eval_fn=self._eval_fn,
            optimizer=setup.optimizer(),
            input_key="views",
            train_metric_names=("loss", "contrastive_accuracy"),
            eval_metric_names=("uniformity",),
            ema_decay=ema_decay(setup.config),
        )

    def init_state(self, batch: Batch, ctx: StepContext) -> SupervisedState:
        """Initializes encoder and head on the first view of one example."""
        variables = self.model.init(
            {"params": ctx.rng("params"), "dropout": ctx.rng("dropout")},
            batch["views"][:1, 0],
            train=False,
        )
        return self.from_variables(variables)

    def embed(self, task_state: SupervisedState, images: jax.Array) -> jax.Array:
        """The encoder's representation h in inference mode (EMA parameters if kept)."""
        params = task_state.ema_params if self.ema_decay is not None else task_state.params
        variables = {"params": params, **task_state.model_state}
        return self.model.apply(variables, images, method=EncoderWithProjection.represent)

    def _loss_fn(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        views = batch["views"]
        b = views.shape[0]
        x = jnp.concatenate([views[:, 0], views[:, 1]])
        (_, z), new_state = apply_variables(
            apply_fn, {"params": params, **model_state}, x, train=train, rng=ctx.rng("dropout")
        )
        z1, z2 = ctx.all_gather(z[:b]), ctx.all_gather(z[b:])
        per_anchor, correct = nt_xent(z1, z2, self.temperature)
        metrics = {"loss": average(per_anchor), "contrastive_accuracy": average(correct)}
        return jnp.mean(per_anchor), (new_state, metrics)

    def _eval_fn(
        self, apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        _, z = apply_fn({"params": params, **model_state}, batch["image"], train=False)
        return {"uniformity": batch_uniformity(z, batch["mask"])}


def batch_uniformity(z: jax.Array, mask: jax.Array) -> clu_metrics.Average:
    """The uniformity of one eval batch's real rows, weighted by their number (the eval's
    value is the example-weighted mean over the batches)."""
    count = jnp.sum(mask > 0).astype(jnp.int32)
    return clu_metrics.Average(total=uniformity(z, mask > 0) * count, count=count)


def make_simclr_task(setup: TaskSetup) -> SimCLRTask:
    """Builds the `simclr` task of `setup.config` (ConfigError for bad options)."""
    return SimCLRTask(setup)
