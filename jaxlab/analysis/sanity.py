"""The first steps of the course's debugging recipe as checks with verdicts, on any config of
a one-model task (classification, linear_svm, softmax_regression, ...):

1. `initial_loss_check`: the loss of the first train batch at initialization with weight
   decay off against `ln(C)` (the softmax loss of uniform predictions over C classes; the
   multiclass SVM loss starts near `(C - 1) * margin` instead), and the same objective with
   weight decay on: `loss + wd/2 * ||W||^2` over the decayed tensors (jaxlab applies weight
   decay in the optimizer, `optimizer.weight_decay` with `weight_decay_exclude`'s mask, so
   the penalty is computed here from the initial parameters) must be higher.
2. `overfit_check`: a few fixed train batches, regularization off (weight decay, dropout,
   label smoothing, mixup/cutmix, augmentation), at the config's peak rate held constant
   (warmup kept), trained until the train accuracy on them
   reaches `target` (default 0.99); reports the steps needed, or a diagnosis.
3. The learning-rate search is the existing range test (`jaxlab.analysis.lr_find`);
   `lr_verdict` names the rate and compares it with the config's.

The steps are the task's own jit-compiled `train_step` and `eval_step` driven from the
host, so the checks exercise the code that trains.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxlab import data
from jaxlab.config import ConfigError
from jaxlab.tasks.base import StepContext, stream_keys
from jaxlab.train.setup import build_experiment
from jaxlab.train.state import init_context


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A check's outcome: ok or not, and one line saying why."""

    name: str
    ok: bool
    message: str

    def format(self) -> str:
        """'[ok] name: message' or '[!!] name: message'."""
        return f"[{'ok' if self.ok else '!!'}] {self.name}: {self.message}"


def _config_copy(config: ml_collections.ConfigDict, **changes: Any) -> ml_collections.ConfigDict:
    c = copy.deepcopy(config)
    c.unlock()
    for key, value in changes.items():
        node = c
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if leaf in node:
            node[leaf] = value
    c.lock()
    return c


def no_regularization(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config with weight decay, dropout, label smoothing, mixing and augmentation off."""
    return _config_copy(
        config,
        **{
            "optimizer.weight_decay": 0.0,
            "model.dropout": 0.0,
            "model.attention_dropout": 0.0,
            "model.stochastic_depth": 0.0,
            "task.label_smoothing": 0.0,
            "task.mixup_alpha": 0.0,
            "task.cutmix_alpha": 0.0,
            "dataset.augment": "",
        },
    )


def _step_ctx(task, seed: int, step: int) -> StepContext:
    key = jax.random.fold_in(jax.random.key(seed), step)
    return StepContext(step=jnp.asarray(step, jnp.int32), rngs=stream_keys(key, task.rng_streams))


def _setup(config: ml_collections.ConfigDict, num_batches: int):
    exp = build_experiment(config)
    task = exp.task
    if not hasattr(task, "variables"):
        raise ConfigError(f"task {task.name!r} has no single model")
    state = jax.jit(lambda b: task.init_state(b, init_context(task, config.seed)))(
        exp.example_batch
    )
    it = data.create_train_iterator(config, exp.info)
    batches = [next(it) for _ in range(num_batches)]
    return exp, task, state, batches


def decay_penalty(config: ml_collections.ConfigDict, params: Any, weight_decay: float) -> float:
    """`wd/2 * sum ||W||^2` over the tensors the optimizer decays (its mask)."""
    from jaxlab.optim.groups import decay_mask

    mask = decay_mask(config)(params)
    sq = jax.tree.map(lambda p, m: jnp.sum(jnp.square(p)) if m else 0.0, params, mask)
    return 0.5 * weight_decay * float(sum(jax.tree.leaves(sq)))


def initial_loss_check(
    config: ml_collections.ConfigDict, weight_decay: float | None = None, tolerance: float = 0.15
) -> list[Verdict]:
    """Step 1 (see the module docstring); `weight_decay` for the second half defaults to
    the config's own, or 1e-2 when that is 0. Verdict ok when the loss is within
    `tolerance` (relative) of its expected value."""
    c = _config_copy(config, **{"optimizer.weight_decay": 0.0})
    exp, task, state, batches = _setup(c, 1)
    num_classes = getattr(exp.info, "num_classes", None)
    _, metrics = jax.jit(task.train_step)(state, batches[0], _step_ctx(task, c.seed, 0))
    loss = float(metrics["loss"].compute())
    out = []
    if not num_classes:
        out.append(Verdict("initial loss", True, f"{loss:.4f} (no classes: nothing to compare)"))
    else:
        if task.name == "linear_svm":
            margin = float(c.task.get("margin", 1.0))
            expected, what = (
                (num_classes - 1) * margin,
                f"(C-1)*margin = {(num_classes - 1) * margin:.4f}",
            )
        else:
            expected, what = (
                math.log(num_classes),
                f"ln({num_classes}) = {math.log(num_classes):.4f}",
            )
        rel = (loss - expected) / expected
        if abs(rel) <= tolerance:
            msg, ok = f"{loss:.4f} vs {what}: ok (chance-level predictions at init)", True
        elif rel > 0:
            msg, ok = (
                f"{loss:.4f} vs {what}: {rel:.0%} too high; initial logits too large "
                "(smaller init scale / last-layer init, check the input normalization)",
                False,
            )
        else:
            msg, ok = (
                f"{loss:.4f} vs {what}: {-rel:.0%} too low; the loss may not be a per-example "
                "average over C classes, or labels leak into the input",
                False,
            )
        out.append(Verdict("initial loss", ok, msg))
    wd = weight_decay if weight_decay is not None else (config.optimizer.weight_decay or 1e-2)
    penalty = decay_penalty(c, task.variables(state)["params"], wd)
    out.append(
        Verdict(
            "weight decay",
            penalty > 0,
            f"loss + wd/2*||W||^2 with wd={wd:g}: {loss + penalty:.4f} "
            f"({'rises' if penalty > 0 else 'does NOT rise: no tensor is decayed'} "
            f"by {penalty:.4g})",
        )
    )
    return out


def overfit_check(
    config: ml_collections.ConfigDict,
    num_batches: int = 2,
    max_steps: int = 300,
    target: float = 0.99,
    check_every: int = 10,
) -> tuple[Verdict, dict[str, list[float]]]:
    """Step 2 (see the module docstring): (verdict, {'step', 'loss', 'accuracy'} curve)."""
    # The config's peak rate held constant: a schedule sized for the real run (cosine over
    # a smoke run's 4 steps) would stop the overfit early.
    c = _config_copy(no_regularization(config), **{"schedule.name": "constant"})
    exp, task, state, batches = _setup(c, num_batches)
    if "accuracy" not in task.eval_metric_names:
        raise ConfigError(f"task {task.name!r} reports no accuracy to overfit")
    train = jax.jit(task.train_step)
    evaluate = jax.jit(
        lambda s, b: task.eval_step(s, b, task.init_eval_carry(s, b), _step_ctx(task, 0, 0))[1]
    )
    eval_batches = [{**b, "mask": np.ones(len(b["label"]), np.float32)} for b in batches]
    curve: dict[str, list[float]] = {"step": [], "loss": [], "accuracy": []}
    first = last = None
    for step in range(max_steps + 1):
        if step % check_every == 0 or step == max_steps:
            ms = [evaluate(state, b) for b in eval_batches]
            acc = float(np.mean([float(m["accuracy"].compute()) for m in ms]))
            loss = float(np.mean([float(m["loss"].compute()) for m in ms]))
            curve["step"].append(step)
            curve["loss"].append(loss)
            curve["accuracy"].append(acc)
            first = loss if first is None else first
            last = loss
            if not math.isfinite(loss):
                return Verdict(
                    "overfit", False, f"loss non-finite at step {step}: lower the learning rate"
                ), curve
            if acc >= target:
                n = len(batches) * len(batches[0]["label"])
                return Verdict(
                    "overfit", True, f"{acc:.1%} train accuracy on {n} examples after {step} steps"
                ), curve
        if step < max_steps:
            state, _ = train(state, batches[step % len(batches)], _step_ctx(task, c.seed, step))
    if last >= 0.9 * first:
        why = (
            "the loss barely moved: learning rate too low, or gradients do not reach the "
            "weights (run scripts/gradcheck.py)"
        )
    else:
        why = "the loss falls too slowly: raise the learning rate, train longer, or a bigger model"
    return Verdict(
        "overfit",
        False,
        f"{curve['accuracy'][-1]:.1%} < {target:.0%} after {max_steps} steps; {why}",
    ), curve


def lr_verdict(result: dict[str, Any], config_lr: float) -> Verdict:
    """Step 3's verdict from `run_range_test`'s result: the suggested rates and where the
    config's rate falls."""
    hi, base, low = result["max_lr"], result["base_lr"], result["base_lr_low"]
    if config_lr > hi:
        where = "above the steepest-descent rate: expect instability"
    elif config_lr < low / 10:
        where = "far below the suggested range: expect slow training"
    else:
        where = "in a sensible range"
    return Verdict(
        "learning rate",
        config_lr <= hi and config_lr >= low / 10,
        f"loss falls fastest at {hi:.3g}; use {low:.3g}..{base:.3g}; "
        f"the config's {config_lr:g} is {where}",
    )


def init_statistics(config: ml_collections.ConfigDict) -> list:
    """`jaxlab.analysis.init_stats.layer_statistics` of the config's model at init on its
    first train batch (tasks with a `model` and 'image' inputs)."""
    from jaxlab.analysis.init_stats import layer_statistics

    exp, task, state, batches = _setup(config, 1)
    if not hasattr(task, "model") or "image" not in batches[0]:
        raise ConfigError(f"task {task.name!r} has no image model to inspect")
    return layer_statistics(
        task.model,
        task.variables(state),
        jnp.asarray(batches[0]["image"]),
        jnp.asarray(batches[0]["label"]),
    )
