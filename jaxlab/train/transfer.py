"""Transfer learning: start a run from another workdir's parameters (`config.init_from`).

Parameters (and batch statistics) are matched by path. Paths matching `config.init_head`
(a regex, default "head") are re-created for the new task; every other path must exist in
the source with the same shape, else ConfigError names the mismatched paths. Paths the
source lacks and the source's paths the model lacks are reported. The step counter, the
optimizer state and the rng are never taken from the source. Freeze or slow down the
backbone with the optimizer's parameter groups (`optimizer.frozen`, `optimizer.lr_multipliers`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

import numpy as np
from flax import traverse_util

from jaxlab.config import ConfigError
from jaxlab.train.checkpoint import Checkpointer, variables_of

PyTree = Any


@dataclasses.dataclass
class TransferReport:
    """What `merge_pretrained` did, by parameter path."""

    loaded: list[str]
    reinitialized: list[str]
    missing: list[str]
    unexpected: list[str]

    def summary(self) -> str:
        """One line for the console."""
        return (
            f"init_from: loaded {len(self.loaded)} arrays, re-created {len(self.reinitialized)} "
            f"(head: {', '.join(self.reinitialized) or 'none'}), missing in source "
            f"{len(self.missing)}{': ' + ', '.join(self.missing) if self.missing else ''}, "
            f"unused from source {len(self.unexpected)}"
            f"{': ' + ', '.join(self.unexpected) if self.unexpected else ''}"
        )


def _flat(tree: PyTree) -> dict[str, Any]:
    """{'a/b/c': leaf} of nested dicts of arrays (flax.traverse_util)."""
    return traverse_util.flatten_dict(dict(tree), sep="/") if tree else {}


def load_pretrained(workdir: str) -> dict[str, PyTree]:
    """The latest checkpoint's {'params', 'model_state'} of a workdir, as host arrays."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        raise ConfigError(f"init_from: no checkpoints in {workdir!r} (expected {directory})")
    ckpt = Checkpointer(directory)
    try:
        step = ckpt.latest_step()
        if step is None:
            raise ConfigError(f"init_from: no complete checkpoint in {directory}")
        state = ckpt.restore_raw(step)
    finally:
        ckpt.close()
    variables = variables_of(state)
    params = variables.pop("params")
    return {"params": params, "model_state": variables}


def merge_pretrained(
    variables: dict[str, PyTree], pretrained: dict[str, PyTree], head: str
) -> tuple[dict[str, PyTree], TransferReport]:
    """Returns `variables` (params and model state of the new model) with every non-head
    array taken from `pretrained`, and the report. Raises ConfigError on shape mismatches
    outside the head."""
    head_re = re.compile(head) if head else None
    source = {
        **{f"params/{k}": v for k, v in _flat(pretrained["params"]).items()},
        **_flat(pretrained.get("model_state") or {}),
    }
    report = TransferReport([], [], [], [])
    mismatched = []

    def pick(path: str, new: Any) -> Any:
        if head_re is not None and head_re.search(path):
            report.reinitialized.append(path)
            return new
        if path not in source:
            report.missing.append(path)
            return new
        old = np.asarray(source[path])
        if old.shape != tuple(new.shape):
            mismatched.append(f"{path} {old.shape} vs {tuple(new.shape)}")
            return new
        report.loaded.append(path)
        return old.astype(new.dtype)

    flat_new = _flat(variables)
    merged_flat = {path: pick(path, leaf) for path, leaf in flat_new.items()}
    if mismatched:
        raise ConfigError(
            "init_from: shapes differ outside the head (init_head="
            f"{head!r}): {'; '.join(mismatched)}"
        )
    report.unexpected = sorted(set(source) - set(flat_new))
    return traverse_util.unflatten_dict(merged_flat, sep="/"), report
