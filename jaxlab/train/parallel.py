"""Parallel modes: jit over a device Mesh with a 'data' axis (default), or pmap.

`Parallel` hides the difference from the loop: where batches go, how the steps are
compiled, and how state moves to and from its canonical (checkpoint) form. The canonical
form is the jit layout (global arrays, replicated), so a checkpoint written in one mode or
on N devices restores in the other mode or on M devices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxlab.config import check_choice

PyTree = Any
DATA_AXIS = "data"


@dataclasses.dataclass
class Parallel:
    """Device placement and compilation for one parallel mode ('jit' or 'pmap')."""

    mode: str
    mesh: Mesh

    @classmethod
    def create(cls, mode: str) -> Parallel:
        """Builds the mode over all devices of all processes."""
        check_choice("parallel mode", mode, ("jit", "pmap"))
        return cls(mode=mode, mesh=Mesh(np.array(jax.devices()), (DATA_AXIS,)))

    @property
    def axis_name(self) -> str | None:
        """The mapped axis the steps reduce over (pmap only)."""
        return DATA_AXIS if self.mode == "pmap" else None

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def batch_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))

    def place_batch(self, local_batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
        """Process-local numpy batch -> global jax.Arrays with the batch sharding (jit), or
        arrays with a leading local-device axis (pmap)."""
        if self.mode == "jit":
            if jax.process_count() == 1:  # the same placement, with less host work
                return jax.device_put(dict(local_batch), self.batch_sharding)
            return {
                k: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(v))
                for k, v in local_batch.items()
            }
        n = jax.local_device_count()
        return {k: np.asarray(v).reshape((n, -1, *np.shape(v)[1:])) for k, v in local_batch.items()}

    def step_input(self, local_batch: Mapping[str, np.ndarray]) -> Mapping[str, Any]:
        """What the compiled steps take for a process-local numpy batch: in one process under
        jit, the numpy arrays themselves (jit's dispatch places them with the batch sharding
        of its `in_shardings`, the same global arrays as `place_batch` gives, with less host
        work: a Python-side device_put costs about as much as the dispatch of a small
        model's step); otherwise `place_batch`."""
        if self.mode == "jit" and not self.mesh.is_multi_process:
            return local_batch
        return self.place_batch(local_batch)

    def init_state(self, init_fn: Callable[..., PyTree], *args: PyTree) -> PyTree:
        """Runs `init_fn(*args)` under jit so the state is born replicated where it lives."""
        state = jax.jit(init_fn, out_shardings=self.replicated)(*args)
        return self.from_canonical(state)

    def abstract_state(self, init_fn: Callable[[], PyTree]) -> PyTree:
        """The canonical state's shapes, dtypes and shardings (a restore target)."""
        shapes = jax.eval_shape(init_fn)
        return jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.replicated), shapes
        )

    def to_canonical(self, state: PyTree) -> PyTree:
        """State in the checkpoint layout: replicated global arrays."""
        if self.mode == "jit":
            return state
        first = jax.tree.map(_first_replica, state)
        return jax.tree.map(
            lambda x: jax.make_array_from_callback(x.shape, self.replicated, lambda _: x), first
        )

    def from_canonical(self, state: PyTree) -> PyTree:
        """Canonical state -> the layout the compiled steps take."""
        if self.mode == "jit":
            return jax.device_put(state, self.replicated)
        host = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), state)
        return jax.tree.map(_replicate_pmap, host)

    def to_host(self, tree: PyTree) -> PyTree:
        """One copy of replicated values as numpy (for logging)."""
        if self.mode == "pmap":
            return jax.tree.map(_first_replica, tree)
        if not self.mesh.is_multi_process:
            # Per leaf: jax.device_get first queues a new host copy of every leaf, which
            # waits behind the steps already dispatched (~30 us a leaf on a busy CPU).
            return jax.tree.map(np.asarray, tree)
        return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)

    def compile_train_step(
        self, step: Callable[..., PyTree], donate: Sequence[bool] = (True,)
    ) -> Callable[..., PyTree]:
        """jit (state replicated, batch sharded) or pmap of `step(*state_args, batch)`, with
        one entry of `donate` per state argument: whether its buffers are donated."""
        donated = tuple(i for i, d in enumerate(donate) if d)
        if self.mode == "jit":
            return jax.jit(
                step,
                in_shardings=(self.replicated,) * len(donate) + (self.batch_sharding,),
                out_shardings=self.replicated,
                donate_argnums=donated,
            )
        return jax.pmap(step, axis_name=DATA_AXIS, donate_argnums=donated)

    def compile_eval_step(self, step: Callable[..., PyTree]) -> Callable[..., PyTree]:
        """jit or pmap of `(state, batch, carry) -> outputs` (outputs replicated)."""
        if self.mode == "jit":
            return jax.jit(
                step,
                in_shardings=(self.replicated, self.batch_sharding, self.replicated),
                out_shardings=self.replicated,
            )
        return jax.pmap(step, axis_name=DATA_AXIS)

    def compile_batch_fn(self, fn: Callable[..., PyTree]) -> Callable[..., PyTree]:
        """jit or pmap of `(state, batch) -> outputs` (outputs replicated)."""
        if self.mode == "jit":
            return jax.jit(
                fn,
                in_shardings=(self.replicated, self.batch_sharding),
                out_shardings=self.replicated,
            )
        return jax.pmap(fn, axis_name=DATA_AXIS)

    def batch_to_host(self, tree: PyTree) -> PyTree:
        """Per-example outputs of a compiled step as host arrays of the whole batch: under
        pmap the per-device parts are joined along the batch axis. (Several processes: each
        host gets the whole batch under jit; pmap gives each its local part.)"""
        if self.mode == "pmap":
            return jax.tree.map(
                lambda x: (
                    np.asarray(x).reshape(-1, *np.shape(x)[2:])
                    if np.ndim(x) > 1
                    else np.asarray(x)[0]
                ),
                tree,
            )
        return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)

    def replicate(self, tree: PyTree) -> PyTree:
        """Host values -> the layout of the compiled steps (e.g. an empty metric collection)."""
        canonical = jax.tree.map(
            lambda x: jax.make_array_from_callback(
                np.shape(x), self.replicated, lambda _: np.asarray(x)
            ),
            tree,
        )
        return self.from_canonical(canonical)


def _first_replica(x: jax.Array) -> np.ndarray:
    """The value on the first local device of an array with a leading pmap axis."""
    return np.asarray(x.addressable_data(0))[0]


def _replicate_pmap(x: np.ndarray) -> jax.Array:
    """One copy of `x` per local device, stacked on a new leading axis (pmap's input layout)."""
    devices = jax.local_devices()
    mesh = Mesh(np.array(devices), (DATA_AXIS,))
    stacked = np.broadcast_to(np.asarray(x), (len(devices), *np.shape(x)))
    return jax.device_put(stacked, NamedSharding(mesh, PartitionSpec(DATA_AXIS)))
