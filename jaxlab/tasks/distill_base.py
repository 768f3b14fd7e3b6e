"""What BYOL and DINO share: a student (online) network trained by gradient, a teacher
(target) that is an exponential moving average of it, and two augmented views per example.

State (`TeacherStudentState`): the student's variables ({'params', 'batch_stats'}), the
teacher's variables (the student's backbone and head, not BYOL's predictor), the
optimizer state and DINO's center (None for BYOL). One train step:

    teacher_out = stop_gradient(teacher(global views))      (batch statistics of the batch)
    loss, grads = value_and_grad(loss(student(views), teacher_out))(student params)
    student params <- optimizer update (grads pmean-ed under pmap)
    teacher params <- m * teacher params + (1 - m) * new student params

The EMA is `optax.incremental_update(new_student, teacher, step_size=1 - m)`; the teacher is
outside the differentiated function (and its outputs pass `stop_gradient`), so its
parameters change only through the EMA. Its batch statistics are those of its own forward
passes (it runs in training mode, as in BYOL and DINO), not an average of the student's.

The momentum `m` is `task.momentum` ('constant'), or with `task.momentum_schedule='cosine'`
BYOL's schedule `1 - (1 - m0) (cos(pi k / K) + 1) / 2` rising from m0 at step 0 to 1 at
the last step K (DINO uses the same).

The backbone is `config.model` (any registry model, built with `num_classes =
task.feature_dim`: its classification layer is the feature layer); `embed` returns the
student backbone's features in inference mode (the online network, as in the papers).
Train examples carry 'views' [B, V, H, W, C] (`dataset.num_views = V >= 2`, made by the
`dataset.augment` ops); views 0 and 1 are the two global views.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from clu import metrics as clu_metrics

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data.registry import num_views
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.models.ssl_heads import SSLNetwork
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.representation import RepresentationTask

MOMENTUM_SCHEDULES = ("constant", "cosine")
COMMON_OPTIONS = ("name", "feature_dim", "momentum", "momentum_schedule")


def momentum_at(
    step: jax.Array | int, base: float, total_steps: int, schedule: str = "constant"
) -> jax.Array:
    """The teacher's EMA momentum at `step`: `base` ('constant'), or ('cosine')
    `1 - (1 - base) (cos(pi step / total_steps) + 1) / 2` (base at 0, 1 at total_steps)."""
    check_choice("task.momentum_schedule", schedule, MOMENTUM_SCHEDULES)
    base = jnp.float32(base)
    if schedule == "constant":
        return base
    progress = jnp.minimum(jnp.asarray(step, jnp.float32) / max(total_steps, 1), 1.0)
    return 1.0 - (1.0 - base) * (jnp.cos(jnp.pi * progress) + 1.0) / 2.0


def ema_update(teacher: PyTree, student: PyTree, momentum: jax.Array | float) -> PyTree:
    """`momentum * teacher + (1 - momentum) * student`, leaf by leaf
    (`optax.incremental_update` with step size `1 - momentum`)."""
    return optax.incremental_update(student, teacher, 1.0 - momentum)


@flax.struct.dataclass
class TeacherStudentState:
    """The student's and the teacher's variables, the optimizer state, DINO's center."""

    student: PyTree
    teacher: PyTree
    opt_state: PyTree
    center: jax.Array | None = None


def check_options(task: str, options: ml_collections.ConfigDict, valid: tuple[str, ...]) -> None:
    """ConfigError naming an unknown `config.task` key of `task` and the valid ones."""
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"task {task!r} has no option(s) {', '.join(f'task.{k}' for k in unknown)}; "
            f"valid: {', '.join(f'task.{k}' for k in valid if k != 'name')}"
        )


def require_views(setup: TaskSetup, task: str) -> int:
    """The number of views V; ConfigError unless `dataset.num_views >= 2`."""
    views = num_views(setup.config)
    if views < 2:
        raise ConfigError(
            f"task {task!r} trains on augmented views: set dataset.num_views >= 2 (with "
            f"dataset.augment ops), got {views}"
        )
    return views


def split_variables(variables: Mapping[str, PyTree]) -> tuple[PyTree, PyTree]:
    """(params, the other collections) of a variables dict."""
    rest = dict(variables)
    return rest.pop("params"), rest


class TeacherStudentTask(RepresentationTask):
    """A student trained by gradient and its EMA teacher (see the module docstring).

    Subclasses set `name`, build `self.network` (an `SSLNetwork`) and `self.teacher_keys`
    (the parameter groups the teacher copies) in their constructor after calling
    `setup_common`, and implement `objective` (and `eval_metrics`)."""

    rng_streams = ("params", "dropout", "crops")
    network: SSLNetwork
    teacher_keys: tuple[str, ...] = ("backbone", "head")

    def setup_common(self, setup: TaskSetup, options_valid: tuple[str, ...]) -> None:
        """Reads and checks the options both methods share; builds the backbone."""
        config = setup.config
        options = config.task
        check_options(self.name, options, options_valid)
        self.num_views = require_views(setup, self.name)
        self.feature_dim = options.get("feature_dim", 128)
        check_positive("task.feature_dim", self.feature_dim, integer=True)
        self.momentum = options.get("momentum", 0.99)
        check_positive("task.momentum", self.momentum)
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"task.momentum must be in [0, 1], got {self.momentum}")
        self.momentum_schedule = options.get("momentum_schedule", "constant")
        check_choice("task.momentum_schedule", self.momentum_schedule, MOMENTUM_SCHEDULES)
        self.total_steps = setup.num_train_steps
        self.axis_name = setup.axis_name
        self.backbone = build_model(
            config.model.name,
            {k: v for k, v in config.model.to_dict().items() if k != "name"},
            num_classes=self.feature_dim,
            bn_axis_name=setup.axis_name,
        )
        self.optimizer = setup.optimizer()

    # --- state ---------------------------------------------------------------------------

    def init_state(self, batch: Batch, ctx: StepContext) -> TeacherStudentState:
        """The student initialized on one view; the teacher a copy of its backbone and head."""
        x = batch["views"][:1, 0]
        student = self.network.init(
            {"params": ctx.rng("params"), "dropout": ctx.rng("dropout")}, x, train=False
        )
        student = flax.core.unfreeze(student)
        teacher = jax.tree.map(jnp.copy, self.teacher_part(student))
        return TeacherStudentState(
            student=student,
            teacher=teacher,
            opt_state=self.optimizer.tx.init(student["params"]),
            center=self.init_center(),
        )

    def init_center(self) -> jax.Array | None:
        """DINO's initial center (None: the method keeps none)."""
        return None

    def teacher_part(self, variables: Mapping[str, PyTree]) -> dict[str, PyTree]:
        """The teacher's share of a student's variables: the groups in `teacher_keys` of
        every collection."""
        return {
            col: {k: v for k, v in tree.items() if k in self.teacher_keys}
            for col, tree in variables.items()
        }

    def variables(self, state: TeacherStudentState) -> dict[str, PyTree]:
        """The student's variables (backbone, head and predictor)."""
        return dict(state.student)

    def embed(self, task_state: TeacherStudentState, images: jax.Array) -> jax.Array:
        """The student backbone's features of `images` in inference mode."""
        return self.network.apply(task_state.student, images, method=SSLNetwork.embed)

    # --- forward passes ------------------------------------------------------------------

    def forward(
        self,
        variables: Mapping[str, PyTree],
        x: jax.Array,
        *,
        train: bool,
        predict: bool,
        rng: jax.Array | None = None,
    ) -> tuple[dict[str, jax.Array], PyTree]:
        """(the network's outputs, its updated non-parameter collections); in inference mode
        the collections come back unchanged."""
        _, rest = split_variables(variables)
        if not train:
            return self.network.apply(variables, x, train=False, predict=predict), rest
        rngs = {"dropout": rng} if rng is not None else {}
        out, new_rest = self.network.apply(
            variables, x, train=True, predict=predict, rngs=rngs, mutable=list(rest)
        )
        return out, {**rest, **new_rest}

    def teacher_forward(self, teacher: PyTree, x: jax.Array) -> tuple[dict[str, jax.Array], PyTree]:
        """The teacher's outputs on `x` (through `stop_gradient`) and its new collections."""
        network = self.network.clone(predictor=None)
        _, rest = split_variables(teacher)
        out, new_rest = network.apply(teacher, x, train=True, predict=False, mutable=list(rest))
        return jax.lax.stop_gradient(out), {**rest, **new_rest}

    # --- the step ------------------------------------------------------------------------

    @abc.abstractmethod
    def objective(
        self,
        student_params: PyTree,
        state: TeacherStudentState,
        views: jax.Array,
        teacher_out: dict[str, jax.Array],
        ctx: StepContext,
    ) -> tuple[jax.Array, tuple[PyTree, dict[str, Any]]]:
        """(mean loss, (the student's new collections, {name: per-example values or
        scalars to report, 'center_batch': DINO's batch center}))."""

    def momentum_now(self, step: jax.Array) -> jax.Array:
        """The EMA momentum of this step (`momentum_at` with the task's options)."""
        return momentum_at(step, self.momentum, self.total_steps, self.momentum_schedule)

    def update_center(
        self, state: TeacherStudentState, aux: dict[str, Any], ctx: StepContext
    ) -> jax.Array | None:
        """DINO's new center (None for BYOL)."""
        return state.center

    def train_step(
        self, state: TeacherStudentState, batch: Batch, ctx: StepContext
    ) -> tuple[TeacherStudentState, Metrics]:
        """One student update, then the teacher's EMA (see the module docstring)."""
        views = batch["views"]
        b = views.shape[0]
        global_views = jnp.concatenate([views[:, 0], views[:, 1]])  # [2B, H, W, C]
        teacher_out, teacher_rest = self.teacher_forward(state.teacher, global_views)
        teacher_out = jax.tree.map(lambda a: a.reshape(2, b, *a.shape[1:]), teacher_out)
        params, _ = split_variables(state.student)
        grad_fn = jax.grad(self.objective, has_aux=True)
        grads, (student_rest, aux) = grad_fn(params, state, views, teacher_out, ctx)
        updates, opt_state = self.optimizer.tx.update(ctx.pmean(grads), state.opt_state, params)
        params = optax.apply_updates(params, updates)
        momentum = self.momentum_now(ctx.step)
        teacher_params, _ = split_variables(state.teacher)
        teacher_params = ema_update(teacher_params, self.teacher_part({"p": params})["p"], momentum)
        new_state = TeacherStudentState(
            student={"params": params, **student_rest},
            teacher={"params": teacher_params, **teacher_rest},
            opt_state=opt_state,
            center=self.update_center(state, aux, ctx),
        )
        metrics = {k: _metric(v) for k, v in aux.items() if k != "center_batch"}
        metrics["momentum"] = _metric(momentum)
        metrics["learning_rate"] = _metric(self.optimizer.schedule(ctx.step))
        return new_state, metrics


def _metric(value: jax.Array) -> clu_metrics.Metric:
    """An average of a scalar or of per-example values."""
    return average(jnp.asarray(value, jnp.float32))
