"""The task `byol`: Bootstrap Your Own Latent (Grill et al., 2020).

An online network (backbone -> projector -> predictor) learns to predict, from one view,
the target network's projection of the other view; the target (backbone -> projector) is
an EMA of the online backbone and projector and receives no gradient
(jaxlab.tasks.distill_base). With q_v the online prediction of view v and z_v the target
projection of view v, the symmetric normalized-MSE loss of an example is

    loss = ||q_1/|q_1| - z_2/|z_2|||^2 + ||q_2/|q_2| - z_1/|z_1|||^2
         = (2 - 2 cos(q_1, z_2)) + (2 - 2 cos(q_2, z_1))             in [0, 8]

averaged over the batch. Both views go through the online network in one forward pass
(batch statistics over the 2B views, as the target's).

Eval (`eval_step`, mask-weighted): `loss`, the same loss with both views the unaugmented
image (online and target in inference mode): it falls as the target and the online network
agree, and `feature_std`: the mean over dimensions of the batch's standard deviation of
the L2-normalized online projections, about 1/sqrt(D) when spread and 0 at collapse
(BYOL's failure mode; per eval batch, averaged over the batches with real rows).

Options (`config.task`): `feature_dim` (the backbone's output width, default 128),
`projection_dim` (default 64), `hidden_dim` (projector and predictor width, default 256),
`head_norm` ('batch' as BYOL, 'layer', 'none'), `momentum` (default 0.99; BYOL's ImageNet
value is 0.996), `momentum_schedule` ('constant' | 'cosine').
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxlab.config import check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models.ssl_heads import HEAD_NORMS, MLPHead, SSLNetwork, l2_normalize
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.distill_base import (
    COMMON_OPTIONS,
    TeacherStudentState,
    TeacherStudentTask,
    split_variables,
)

OPTIONS = (*COMMON_OPTIONS, "projection_dim", "hidden_dim", "head_norm")


def normalized_mse(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Per-row `||p/|p| - t/|t|||^2 = 2 - 2 cos(p, t)` of [..., D] arrays."""
    return jnp.sum((l2_normalize(prediction) - l2_normalize(target)) ** 2, axis=-1)


def byol_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Per-example symmetric BYOL loss [B] of the online predictions [2, B, D] and the
    target projections [2, B, D] of views 1 and 2: view 1 predicts view 2's target and
    view 2 view 1's."""
    return normalized_mse(predictions[0], targets[1]) + normalized_mse(predictions[1], targets[0])


class ByolTask(TeacherStudentTask):
    """The task `byol` (see the module docstring)."""

    name = "byol"
    train_metric_names = ("loss", "momentum", "learning_rate")
    eval_metric_names = ("loss", "feature_std")
    teacher_keys = ("backbone", "head")

    def __init__(self, setup: TaskSetup) -> None:
        self.setup_common(setup, OPTIONS)
        options = setup.config.task
        self.projection_dim = options.get("projection_dim", 64)
        self.hidden_dim = options.get("hidden_dim", 256)
        self.head_norm = options.get("head_norm", "batch")
        check_positive("task.projection_dim", self.projection_dim, integer=True)
        check_positive("task.hidden_dim", self.hidden_dim, integer=True)
        check_choice("task.head_norm", self.head_norm, HEAD_NORMS)

        def head() -> MLPHead:
            return MLPHead(self.hidden_dim, self.projection_dim, 2, self.head_norm, setup.axis_name)

        self.network = SSLNetwork(self.backbone, head(), head())

    def objective(
        self,
        student_params: PyTree,
        state: TeacherStudentState,
        views: jax.Array,
        teacher_out: dict[str, jax.Array],
        ctx: StepContext,
    ) -> tuple[jax.Array, tuple[PyTree, dict[str, Any]]]:
        """The mean symmetric loss of the online predictions of views 0 and 1 against the
        target projections `teacher_out['projection']` [2, B, D]."""
        b = views.shape[0]
        x = jnp.concatenate([views[:, 0], views[:, 1]])
        _, rest = split_variables(state.student)
        out, rest = self.forward(
            {"params": student_params, **rest},
            x,
            train=True,
            predict=True,
            rng=ctx.rng("dropout"),
        )
        predictions = out["prediction"].reshape(2, b, -1)
        per_example = byol_loss(predictions, teacher_out["projection"])
        return jnp.mean(per_example), (rest, {"loss": per_example})

    def eval_step(
        self, state: TeacherStudentState, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        """The loss with both views the clean image, and the projections' spread."""
        x, mask = batch["image"], batch["mask"]
        online, _ = self.forward(state.student, x, train=False, predict=True)
        target = self.network.clone(predictor=None).apply(
            state.teacher, x, train=False, predict=False
        )
        both = jnp.stack([online["prediction"]] * 2)
        per_example = byol_loss(both, jnp.stack([target["projection"]] * 2))
        z = l2_normalize(online["projection"])
        weights = mask.astype(jnp.float32)[:, None]
        count = jnp.maximum(jnp.sum(weights), 1.0)
        mean = jnp.sum(z * weights, 0) / count
        std = jnp.sqrt(jnp.sum(weights * (z - mean) ** 2, 0) / count)
        return carry, {
            "loss": average(per_example, mask),
            "feature_std": average(jnp.mean(std)[None], jnp.any(mask > 0)[None]),
        }


def make_byol_task(setup: TaskSetup) -> ByolTask:
    """The registry's factory of the task `byol`."""
    return ByolTask(setup)
