"""Ensemble evaluation: average the predicted probabilities of several checkpoints (of one
workdir or of several) over the eval split, and report each member's accuracy beside the
ensemble's. Runs in one process on the default device."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxlab import data
from jaxlab.config import ConfigError
from jaxlab.train.checkpoint import run_checkpointer, variables_of
from jaxlab.train.setup import Experiment, build_experiment


@dataclasses.dataclass
class Member:
    """One checkpoint of the ensemble."""

    workdir: str
    step: int
    variables: dict[str, Any]


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The resolved config a run recorded in its workdir's config.json."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise ConfigError(f"{workdir!r} is not a jaxlab workdir (no config.json)")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f)["config"])


def load_members(workdir: str, which: str = "latest") -> list[Member]:
    """Checkpoints of a workdir: `latest`, `best` or `all` (every kept checkpoint)."""
    ckpt = run_checkpointer(workdir, load_config(workdir))
    try:
        steps = {
            "latest": [ckpt.latest_step()],
            "best": [ckpt.best_step()],
            "all": ckpt.all_steps(),
        }.get(which)
        if steps is None:
            raise ConfigError(
                f"unknown checkpoint choice {which!r}; valid choices: latest, best, all"
            )
        steps = [s for s in steps if s is not None]
        if not steps:
            raise ConfigError(f"no {which} checkpoint in {workdir!r}")
        members = []
        for step in steps:
            state = ckpt.restore_raw(step)
            members.append(Member(workdir, step, variables_of(state)))
        return members
    finally:
        ckpt.close()


def evaluate_ensemble(
    members: list[Member], config: ml_collections.ConfigDict, exp: Experiment | None = None
) -> dict[str, Any]:
    """Accuracy of every member and of the averaged probabilities, over the eval split.

    All members must be the model of `config` (the first member's run config).
    """
    exp = exp or build_experiment(config)
    predict = jax.jit(lambda v, x: jax.nn.softmax(exp.task.model.apply(v, x, train=False), -1))
    correct = np.zeros(len(members))
    ensemble_correct, count = 0.0, 0.0
    for batch in data.create_eval_iterator(config, exp.info):
        mask = batch["mask"]
        probs = [np.asarray(predict(m.variables, jnp.asarray(batch["image"]))) for m in members]
        for i, p in enumerate(probs):
            correct[i] += float(np.sum((p.argmax(-1) == batch["label"]) * mask))
        ensemble = np.mean(probs, axis=0)
        ensemble_correct += float(np.sum((ensemble.argmax(-1) == batch["label"]) * mask))
        count += float(mask.sum())
    return {
        "members": [
            {"workdir": m.workdir, "step": m.step, "accuracy": c / count}
            for m, c in zip(members, correct, strict=True)
        ],
        "ensemble_accuracy": ensemble_correct / count,
        "num_examples": int(count),
    }


def ensemble_from_workdirs(workdirs: list[str], which: str = "latest") -> dict[str, Any]:
    """Loads the checkpoints of `workdirs` and evaluates their ensemble on the first run's
    config; every run must share its model name and dataset."""
    if not workdirs:
        raise ConfigError("give at least one workdir")
    configs = [load_config(w) for w in workdirs]
    first = configs[0]
    for w, c in zip(workdirs, configs, strict=True):
        if c.model.name != first.model.name or c.dataset.name != first.dataset.name:
            raise ConfigError(
                f"{w!r} is a {c.model.name} on {c.dataset.name}; the ensemble needs "
                f"{first.model.name} on {first.dataset.name} like {workdirs[0]!r}"
            )
    members = [m for w in workdirs for m in load_members(w, which)]
    return evaluate_ensemble(members, first)
