"""Checkpoints behind our own small interface (orbax's API has changed several times).

Layout: `workdir/checkpoints/<step>/{state,meta}`. Orbax writes each step into a temporary
folder and renames it when complete, so a process killed at any moment (even SIGKILL during
a save) leaves only complete checkpoints plus a temporary folder that is removed on the next
start. Kept: the latest `keep` steps and the best one by an eval metric.

Resume order (one place: `jaxlab.train.loop`): this workdir's latest checkpoint, else the
initial state.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers as cm

from jaxlab.config import ConfigError

PyTree = Any


class Checkpointer:
    """Saves and restores (state, metadata) pairs by step."""

    def __init__(
        self,
        directory: str,
        *,
        keep: int = 3,
        best_metric: str | None = None,
        best_mode: str = "max",
        async_save: bool = True,
    ) -> None:
        policies: list[Any] = [cm.LatestN(n=keep)]
        if best_metric:
            policies.append(
                cm.BestN(
                    get_metric_fn=lambda m: float(m[best_metric]),
                    reverse=best_mode == "min",
                    n=1,
                    keep_checkpoints_without_metrics=False,
                )
            )
        # best_fn too: without it orbax's `best_step()` silently returns the latest step.
        best: dict[str, Any] = {}
        if best_metric:
            best = {"best_fn": lambda m: float(m[best_metric]), "best_mode": best_mode}
        options = ocp.CheckpointManagerOptions(
            **best,
            preservation_policy=cm.AnyPreservationPolicy(policies),
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
            create=True,
        )
        self.directory = os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta")
        )

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """Steps of all complete checkpoints kept, ascending."""
        return sorted(self._manager.all_steps())

    def best_step(self) -> int | None:
        """Step of the best checkpoint by the eval metric, or None."""
        return self._manager.best_step()

    def save(
        self,
        step: int,
        state: PyTree,
        meta: dict[str, Any],
        metrics: dict[str, float] | None = None,
    ) -> None:
        """Starts saving `state` (a pytree of arrays) and JSON `meta` at `step`."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            metrics=metrics,
            force=True,
        )

    def restore(self, step: int, abstract_state: PyTree) -> tuple[PyTree, dict[str, Any]]:
        """Restores the state into the shapes/shardings of `abstract_state`, and its meta."""
        out = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
            ),
        )
        return out["state"], dict(out["meta"])

    def restore_raw(self, step: int) -> PyTree:
        """Restores the state at `step` as nested dicts of host arrays (no target needed),
        whatever the devices it was saved from: every array is read onto this process's
        first device (the saved shardings name devices this process may not have)."""
        # The manager knows its items' handlers only after using them; read the state's
        # tree metadata (shapes, dtypes) with the handler that wrote it.
        path = epath.Path(self.directory) / str(step) / "state"
        metadata = ocp.StandardCheckpointHandler().metadata(path).tree
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        target = jax.tree.map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), metadata
        )
        out = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
        )
        return jax.tree.map(np.asarray, out["state"])

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()


def run_checkpointer(workdir: str, config: Any) -> Checkpointer:
    """A read-side Checkpointer of a run's `workdir/checkpoints` that knows the run's
    `best_metric` / `best_mode`, so that `best_step()` is the best kept step, not the
    latest."""
    return Checkpointer(
        os.path.join(workdir, "checkpoints"),
        best_metric=config.get("best_metric") or None,
        best_mode=config.get("best_mode", "max"),
    )


def variables_of(raw_state: dict[str, PyTree]) -> dict[str, PyTree]:
    """The model variables {'params': ..., **model_state} of a raw restored state
    (`restore_raw`) of a one-model task; ConfigError for a state without them (a task of
    several models, or a checkpoint of an older layout)."""
    task = raw_state.get("task") or {}
    if not isinstance(task, dict) or "params" not in task:
        raise ConfigError(
            "the checkpoint holds no single model's variables (task state keys: "
            f"{', '.join(task) if isinstance(task, dict) else type(task).__name__})"
        )
    return {"params": task["params"], **(task.get("model_state") or {})}
