"""The task `dino`: self-distillation with no labels (Caron et al., 2021).

A student (backbone -> DINO head: MLP, L2-normalized bottleneck, cosine logits on K unit
prototypes; jaxlab.models.ssl_heads.DinoHead) matches the output distribution of a
teacher, an EMA of the student that receives no gradient (jaxlab.tasks.distill_base).
With teacher logits g_t(x) of the global views i and student logits g_s(x) of every view j,

    P_t(x_i) = softmax((g_t(x_i) - c) / tau_t)        centering, then sharpening
    P_s(x_j) = softmax(g_s(x_j) / tau_s)
    loss     = mean over pairs (i, j), i != j, of  -sum_k P_t(x_i)_k log P_s(x_j)_k

The center is an EMA of the teacher's mean logits over the global views of the batch
(all devices): `c <- m_c c + (1 - m_c) mean(g_t)` (`optax.incremental_update`), updated
after the loss. Centering alone drives P_t to the uniform distribution and sharpening alone
to a one-hot: together they keep the teacher away from both collapses.

Views: the dataset's V >= 2 augmented views (`dataset.num_views`); views 0 and 1 are the
global views the teacher sees; the student sees all V. Multi-crop: `task.local_crops` = n
> 0 adds n local crops per example, cut in the step from the global views (alternately)
with area fraction in `task.local_crop_scale` and resized (bilinear, antialiased) to
`task.local_crop_size` pixels: `jax.image.scale_and_translate`, since the tf pipeline makes
views of one size only. The student sees them in a second forward pass (batch statistics of
the crops; its running statistics keep the global views' update only).

Defaults follow the published advice for small data: teacher temperature 0.04 (DINO's
range 0.02-0.07 for the teacher, warmed up over 30 epochs on ImageNet; for small data
0.02-0.04 without warm-up), teacher momentum 0.99 (DINO's ImageNet value is 0.996 with a
cosine schedule to 1; `task.momentum_schedule='cosine'`), student temperature 0.1, center
momentum 0.9.

Eval (mask-weighted): `loss`, the cross entropy with the clean image as both views (both
networks in inference mode), and `teacher_entropy`, the mean entropy of P_t (nats; log K
when the teacher is uniform, 0 when it is one-hot).

Options (`config.task`): `feature_dim` (default 128), `hidden_dim` (default 256),
`bottleneck_dim` (default 64), `out_dim` (K, default 256), `head_norm` ('none' as DINO's
ViT head, 'batch', 'layer'), `teacher_temperature` (0.04), `student_temperature` (0.1),
`center_momentum` (0.9), `momentum` (0.99), `momentum_schedule`, `local_crops` (0),
`local_crop_size` (default half the image side), `local_crop_scale` ((0.05, 0.4)).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.metrics import average
from jaxlab.models.ssl_heads import HEAD_NORMS, DinoHead, SSLNetwork
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.distill_base import (
    COMMON_OPTIONS,
    TeacherStudentState,
    TeacherStudentTask,
    split_variables,
)

OPTIONS = (
    *COMMON_OPTIONS,
    "hidden_dim",
    "bottleneck_dim",
    "out_dim",
    "head_norm",
    "teacher_temperature",
    "student_temperature",
    "center_momentum",
    "local_crops",
    "local_crop_size",
    "local_crop_scale",
)


def dino_loss(
    student_logits: jax.Array,
    teacher_logits: jax.Array,
    center: jax.Array,
    student_temperature: float,
    teacher_temperature: float,
) -> jax.Array:
    """Per-example DINO loss [B]: student logits [Vs, B, K] of all views, teacher logits
    [Vt, B, K] of the first Vt (global) views, center [K]; the mean over the pairs (i, j)
    with i != j of the cross entropy of P_t(x_i) against P_s(x_j) (module docstring)."""
    teacher = jax.nn.softmax((teacher_logits - center) / teacher_temperature, axis=-1)
    log_student = jax.nn.log_softmax(student_logits / student_temperature, axis=-1)
    ce = -jnp.einsum("ibk,jbk->ijb", teacher, log_student)  # [Vt, Vs, B]
    vt, vs = teacher_logits.shape[0], student_logits.shape[0]
    pairs = jnp.asarray(np.arange(vt)[:, None] != np.arange(vs)[None, :], jnp.float32)
    return jnp.einsum("ijb,ij->b", ce, pairs) / jnp.sum(pairs)


def batch_center(teacher_logits: jax.Array) -> jax.Array:
    """The batch's mean teacher logits [K] over views and examples (of this device)."""
    return jnp.mean(teacher_logits.reshape(-1, teacher_logits.shape[-1]), axis=0)


def update_center(center: jax.Array, batch_mean: jax.Array, momentum: float) -> jax.Array:
    """`momentum * center + (1 - momentum) * batch_mean` (`optax.incremental_update`)."""
    return optax.incremental_update(batch_mean, center, 1.0 - momentum)


def entropy(logits: jax.Array, center: jax.Array, temperature: float) -> jax.Array:
    """Entropy (nats) of `softmax((logits - center) / temperature)` per row."""
    log_p = jax.nn.log_softmax((logits - center) / temperature, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def local_crops(
    views: jax.Array, key: jax.Array, num: int, size: int, scale: tuple[float, float]
) -> jax.Array:
    """`num` local crops per example [num, B, size, size, C] of the global views [B, >=2, H,
    W, C] (crop n from view n % 2): a square-aspect box of area fraction ~ U(scale) at a
    uniform position, resampled bilinearly (antialiased) to `size` x `size`."""
    b, _, h, w, c = views.shape
    k_area, k_y, k_x = jax.random.split(key, 3)
    area = jax.random.uniform(k_area, (num, b), minval=scale[0], maxval=scale[1])
    side = jnp.sqrt(area)
    y0 = jax.random.uniform(k_y, (num, b)) * (1.0 - side) * h
    x0 = jax.random.uniform(k_x, (num, b)) * (1.0 - side) * w

    def crop(image: jax.Array, s: jax.Array, y: jax.Array, x: jax.Array) -> jax.Array:
        scales = jnp.stack([size / (s * h), size / (s * w)])
        translation = -jnp.stack([y, x]) * scales
        return jax.image.scale_and_translate(
            image, (size, size, c), (0, 1), scales, translation, method="linear"
        )

    sources = jnp.stack([views[:, n % 2] for n in range(num)])  # [num, B, H, W, C]
    return jax.vmap(jax.vmap(crop))(sources, side, y0, x0)


class DinoTask(TeacherStudentTask):
    """The task `dino` (see the module docstring)."""

    name = "dino"
    train_metric_names = ("loss", "teacher_entropy", "momentum", "learning_rate")
    eval_metric_names = ("loss", "teacher_entropy")
    teacher_keys = ("backbone", "head")

    def __init__(self, setup: TaskSetup) -> None:
        self.setup_common(setup, OPTIONS)
        o = setup.config.task
        self.hidden_dim = o.get("hidden_dim", 256)
        self.bottleneck_dim = o.get("bottleneck_dim", 64)
        self.out_dim = o.get("out_dim", 256)
        self.head_norm = o.get("head_norm", "none")
        self.teacher_temperature = o.get("teacher_temperature", 0.04)
        self.student_temperature = o.get("student_temperature", 0.1)
        self.center_momentum = o.get("center_momentum", 0.9)
        self.num_local = o.get("local_crops", 0)
        for key in ("hidden_dim", "bottleneck_dim", "out_dim"):
            check_positive(f"task.{key}", getattr(self, key), integer=True)
        check_choice("task.head_norm", self.head_norm, HEAD_NORMS)
        check_positive("task.teacher_temperature", self.teacher_temperature)
        check_positive("task.student_temperature", self.student_temperature)
        check_positive("task.local_crops", self.num_local, allow_zero=True, integer=True)
        if not 0.0 <= self.center_momentum < 1.0:
            raise ConfigError(f"task.center_momentum must be in [0, 1), got {self.center_momentum}")
        if self.teacher_temperature == 0 or self.student_temperature == 0:
            raise ConfigError("task.teacher_temperature and task.student_temperature must be > 0")
        h = setup.info.features["views"].shape[1]
        self.local_size = o.get("local_crop_size", max(h // 2, 1))
        check_positive("task.local_crop_size", self.local_size, integer=True)
        self.local_scale = tuple(o.get("local_crop_scale", (0.05, 0.4)))
        if len(self.local_scale) != 2 or not 0 < self.local_scale[0] <= self.local_scale[1] <= 1:
            raise ConfigError(
                "task.local_crop_scale must be (min, max) area fractions with 0 < min <= max "
                f"<= 1, got {self.local_scale}"
            )
        head = DinoHead(
            self.hidden_dim, self.bottleneck_dim, self.out_dim, 3, self.head_norm, setup.axis_name
        )
        self.network = SSLNetwork(self.backbone, head)

    def init_center(self) -> jax.Array:
        """The center starts at 0."""
        return jnp.zeros((self.out_dim,), jnp.float32)

    def objective(
        self,
        student_params: PyTree,
        state: TeacherStudentState,
        views: jax.Array,
        teacher_out: dict[str, jax.Array],
        ctx: StepContext,
    ) -> tuple[jax.Array, tuple[PyTree, dict[str, Any]]]:
        """The mean DINO loss of the student on every view (and local crop) against the
        teacher's projections [2, B, K] of the global views."""
        b, v = views.shape[:2]
        _, rest = split_variables(state.student)
        x = jnp.moveaxis(views, 1, 0).reshape(v * b, *views.shape[2:])
        out, rest = self.forward(
            {"params": student_params, **rest},
            x,
            train=True,
            predict=False,
            rng=ctx.rng("dropout"),
        )
        student = out["projection"].reshape(v, b, -1)
        if self.num_local:
            crops = local_crops(
                views, ctx.rng("crops"), self.num_local, self.local_size, self.local_scale
            )
            # The running statistics keep the global views' update only: `embed` reads
            # them on full-size images, which the small local crops do not resemble.
            out, _ = self.forward(
                {"params": student_params, **rest},
                crops.reshape(self.num_local * b, *crops.shape[2:]),
                train=True,
                predict=False,
                rng=ctx.rng("dropout"),
            )
            student = jnp.concatenate([student, out["projection"].reshape(self.num_local, b, -1)])
        teacher = teacher_out["projection"]
        per_example = dino_loss(
            student, teacher, state.center, self.student_temperature, self.teacher_temperature
        )
        aux = {
            "loss": per_example,
            "teacher_entropy": entropy(teacher, state.center, self.teacher_temperature),
            "center_batch": batch_center(teacher),
        }
        return jnp.mean(per_example), (rest, aux)

    def update_center(
        self, state: TeacherStudentState, aux: dict[str, Any], ctx: StepContext
    ) -> jax.Array:
        """The center's EMA towards the mean teacher logits of the global batch (the
        devices' batch means averaged under pmap: equal shards, so the global mean)."""
        return update_center(state.center, ctx.pmean(aux["center_batch"]), self.center_momentum)

    def eval_step(
        self, state: TeacherStudentState, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        """The loss with the clean image as both views, and the teacher's entropy."""
        x, mask = batch["image"], batch["mask"]
        student, _ = self.forward(state.student, x, train=False, predict=False)
        teacher = self.network.apply(state.teacher, x, train=False, predict=False)
        s, t = student["projection"][None], teacher["projection"][None]
        ce = dino_loss(
            jnp.concatenate([s, s]),
            t,
            state.center,
            self.student_temperature,
            self.teacher_temperature,
        )
        return carry, {
            "loss": average(ce, mask),
            "teacher_entropy": average(entropy(t[0], state.center, self.teacher_temperature), mask),
        }


def make_dino_task(setup: TaskSetup) -> DinoTask:
    """The registry's factory of the task `dino`."""
    return DinoTask(setup)
