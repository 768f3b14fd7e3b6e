"""The task `moco`: MoCo v2 (He et al., 2020; Chen, Fan, Girshick and He, 2020).

Two views per example ('views' [B, 2, H, W, C], `dataset.num_views = 2`): the first is the
query view, the second the key view. The query encoder f_q (the zoo model `config.model`,
`feature_dim` wide, with MoCo v2's MLP projection head) is trained by the optimizer; the key
encoder f_k has the same architecture and its parameters follow the query's by momentum,

    theta_k <- m theta_k + (1 - m) theta_q          (after each optimizer update)

computed with `optax.incremental_update`, outside any gradient: theta_k is never
differentiated (the keys go through `lax.stop_gradient`), so it changes only by this EMA.
The loss is InfoNCE (`jaxlab.losses_contrastive.info_nce`): each normalized query against
its key (the positive) and the `queue_size` keys of earlier batches (the negatives), over
`temperature`. After the update the batch's keys (gathered from all devices under pmap)
replace the oldest entries of the queue (FIFO: a ring buffer with a write pointer). The
queue, its pointer and theta_k are part of the task state, so checkpoints hold them and a
resumed run continues exactly. The queue starts as random unit vectors (as MoCo's code).

Shuffled BN, and the substitute used here. With batch norm, a query and its key computed
in the same normalization batch can "cheat" through the batch statistics; MoCo shuffles
the key batch across GPUs (per-GPU BN) so that a key's BN batch differs from its query's.
jaxlab runs the global batch on one program (jit), so it simulates the GPUs: the batch is
cut into `bn_groups` consecutive groups, each normalized with its own statistics (query
encoder), and the key batch is randomly permuted (stream 'shuffle') before it is cut into
groups, then un-permuted. Under pmap the groups are cut from each device's batch (BN is not
synchronized across devices for this task). The running statistics keep the mean of the
groups' updates. `bn_groups = 1` turns the shuffle off (one BN batch: the leak MoCo avoids).

The key encoder's batch statistics are updated by its own forward passes (its parameters
only follow the EMA, as in MoCo's code, where buffers are not averaged).

Evaluators `knn` and `linear_probe` read the query encoder's representation h (inference
mode). Train metrics: `loss`, `contrastive_accuracy` (key scored above every queue entry);
eval: `uniformity` of the query projections.

`config.task` options: `temperature` (0.2), `momentum` m (0.99, in [0, 1)), `queue_size` (a
multiple of the global batch size, 4096), `bn_groups` (8; the per-device batch must divide
into them), `feature_dim` (128), `proj_hidden_dim` (256), `proj_dim` (64), `proj_depth` (1).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from clu import metrics as clu_metrics

from jaxlab.config import ConfigError, check_positive
from jaxlab.losses_contrastive import info_nce, l2_normalize
from jaxlab.metrics import average
from jaxlab.models.ssl_heads import EncoderWithProjection, ProjectionHead
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.representation import (
    RepresentationTask,
    build_encoder,
    check_task_options,
)
from jaxlab.tasks.simclr import batch_uniformity, require_two_views

OPTIONS = (
    "temperature",
    "momentum",
    "queue_size",
    "bn_groups",
    "feature_dim",
    "proj_hidden_dim",
    "proj_dim",
    "proj_depth",
)


@flax.struct.dataclass
class MocoState:
    """Query encoder (trained), key encoder (EMA), the key queue and its write pointer."""

    params: PyTree
    opt_state: PyTree
    model_state: PyTree  # the query encoder's batch statistics
    key_params: PyTree
    key_model_state: PyTree
    queue: jax.Array  # [queue_size, proj_dim], unit rows
    queue_ptr: jax.Array  # int32 scalar: the next row to overwrite


def momentum_update(key_params: PyTree, params: PyTree, momentum: float) -> PyTree:
    """theta_k <- m theta_k + (1 - m) theta_q (`optax.incremental_update`)."""
    return optax.incremental_update(params, key_params, 1.0 - momentum)


def enqueue(queue: jax.Array, ptr: jax.Array, keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(queue with rows ptr .. ptr + n - 1 replaced by `keys` [n, D], (ptr + n) mod size);
    the size is a multiple of n, so a write never wraps."""
    queue = jax.lax.dynamic_update_slice(queue, keys.astype(queue.dtype), (ptr, 0))
    return queue, (ptr + keys.shape[0]) % queue.shape[0]


class MocoTask(RepresentationTask):
    """The task `moco` (see the module docstring)."""

    name = "moco"
    rng_streams = ("params", "dropout", "shuffle")
    train_metric_names = ("loss", "contrastive_accuracy", "learning_rate")
    eval_metric_names = ("uniformity",)

    def __init__(self, setup: TaskSetup) -> None:
        config, options = setup.config, setup.config.task
        check_task_options("moco", options, OPTIONS)
        require_two_views(setup, "moco")
        get = options.get
        self.temperature = get("temperature", 0.2)
        self.momentum = get("momentum", 0.99)
        self.queue_size = get("queue_size", 4096)
        self.bn_groups = get("bn_groups", 8)
        sizes = {k: get(k, d) for k, d in (("feature_dim", 128), ("proj_hidden_dim", 256))}
        sizes.update({k: get(k, d) for k, d in (("proj_dim", 64), ("proj_depth", 1))})
        check_positive("task.temperature", self.temperature)
        check_positive("task.momentum", self.momentum, allow_zero=True)
        if self.momentum >= 1:
            raise ConfigError(f"task.momentum must be in [0, 1), got {self.momentum!r}")
        check_positive("task.queue_size", self.queue_size, integer=True)
        check_positive("task.bn_groups", self.bn_groups, integer=True)
        for key, value in sizes.items():
            check_positive(f"task.{key}", value, integer=True, allow_zero=key == "proj_depth")
        if self.queue_size % config.batch_size:
            raise ConfigError(
                f"task.queue_size ({self.queue_size}) must be a multiple of batch_size "
                f"({config.batch_size}): the queue takes whole batches of keys"
            )
        local = config.batch_size // jax.device_count() if setup.axis_name else config.batch_size
        if local % self.bn_groups:
            raise ConfigError(
                f"task.bn_groups ({self.bn_groups}) must divide the per-device batch ({local})"
            )
        encoder = build_encoder(setup, sizes["feature_dim"], None)  # group BN, never synced
        head = ProjectionHead(
            sizes["proj_hidden_dim"], sizes["proj_dim"], sizes["proj_depth"], use_bn=False
        )
        self.model = EncoderWithProjection(encoder=encoder, head=head)
        self.proj_dim = sizes["proj_dim"]
        self.optimizer = setup.optimizer()

    # --- state ---------------------------------------------------------------------------

    def init_state(self, batch: Batch, ctx: StepContext) -> MocoState:
        """Query and key encoders alike (theta_k = theta_q), a queue of random unit keys."""
        k_model, k_queue = jax.random.split(ctx.rng("params"))
        variables = dict(self.model.init(k_model, batch["views"][:1, 0], train=False))
        params = variables.pop("params")
        queue = l2_normalize(jax.random.normal(k_queue, (self.queue_size, self.proj_dim)))
        return MocoState(
            params=params,
            opt_state=self.optimizer.tx.init(params),
            model_state=variables,
            key_params=jax.tree.map(jnp.copy, params),
            key_model_state=jax.tree.map(jnp.copy, variables),
            queue=queue,
            queue_ptr=jnp.zeros((), jnp.int32),
        )

    def variables(self, state: MocoState) -> dict[str, PyTree]:
        """The query encoder's variables (what is transferred)."""
        return {"params": state.params, **state.model_state}

    # --- forward passes ------------------------------------------------------------------

    def grouped_forward(
        self, params: PyTree, model_state: PyTree, x: jax.Array, perm: jax.Array | None = None
    ) -> tuple[jax.Array, PyTree]:
        """(z [B, proj_dim], new model state): training-mode forward with batch norm over
        `bn_groups` groups of the rows of x (after the permutation `perm`, undone on z)."""
        if perm is not None:
            x = x[perm]
        g = self.bn_groups
        grouped = x.reshape(g, x.shape[0] // g, *x.shape[1:])
        variables = {"params": params, **model_state}

        def one(xg: jax.Array) -> tuple[jax.Array, PyTree]:
            if not model_state:
                return self.model.apply(variables, xg, train=True)[1], {}
            (_, z), new = self.model.apply(variables, xg, train=True, mutable=list(model_state))
            return z, new

        z, new_state = jax.vmap(one)(grouped)
        z = z.reshape(x.shape[0], -1)
        if perm is not None:
            z = z[jnp.argsort(perm)]
        return z, jax.tree.map(lambda a: jnp.mean(a, axis=0), dict(new_state))

    # --- steps ---------------------------------------------------------------------------

    def train_step(
        self, state: MocoState, batch: Batch, ctx: StepContext
    ) -> tuple[MocoState, Metrics]:
        """One MoCo update: InfoNCE against the queue, optimizer step on theta_q, momentum
        step on theta_k, enqueue the keys."""
        views = batch["views"]
        x_q, x_k = views[:, 0], views[:, 1]
        perm = jax.random.permutation(ctx.rng("shuffle"), x_k.shape[0])
        k, key_model_state = self.grouped_forward(
            state.key_params, state.key_model_state, x_k, perm
        )
        k = jax.lax.stop_gradient(l2_normalize(k))

        def loss_fn(params: PyTree) -> tuple[jax.Array, Any]:
            q, model_state = self.grouped_forward(params, state.model_state, x_q)
            per_query, correct = info_nce(q, k, state.queue, self.temperature)
            return jnp.mean(per_query), (model_state, per_query, correct)

        (loss, (model_state, per_query, correct)), grads = jax.value_and_grad(
            loss_fn, has_aux=True
        )(state.params)
        grads, loss = ctx.pmean(grads), ctx.pmean(loss)
        updates, opt_state = self.optimizer.tx.update(
            grads, state.opt_state, state.params, value=loss
        )
        params = optax.apply_updates(state.params, updates)
        queue, ptr = enqueue(state.queue, state.queue_ptr, ctx.all_gather(k))
        new_state = MocoState(
            params=params,
            opt_state=opt_state,
            model_state=ctx.pmean(model_state),
            key_params=momentum_update(state.key_params, params, self.momentum),
            key_model_state=ctx.pmean(key_model_state),
            queue=queue,
            queue_ptr=ptr,
        )
        metrics = {
            "loss": average(per_query),
            "contrastive_accuracy": average(correct),
            "learning_rate": clu_metrics.LastValue(
                total=jnp.asarray(self.optimizer.schedule(ctx.step), jnp.float32),
                count=jnp.ones((), jnp.int32),
            ),
        }
        return new_state, metrics

    def eval_step(
        self, state: MocoState, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        """The uniformity of the query projections of the batch's real examples."""
        _, z = self.model.apply(self.variables(state), batch["image"], train=False)
        return carry, {"uniformity": batch_uniformity(z, batch["mask"])}

    def embed(self, task_state: MocoState, images: jax.Array) -> jax.Array:
        """The query encoder's representation h in inference mode."""
        return self.model.apply(
            self.variables(task_state), images, method=EncoderWithProjection.represent
        )


def make_moco_task(setup: TaskSetup) -> MocoTask:
    """Builds the `moco` task of `setup.config` (ConfigError for bad options)."""
    return MocoTask(setup)
