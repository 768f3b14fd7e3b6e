"""Parallel's batch feeding on this process's devices (one CPU device in the main suite; the
8-device layouts are covered end to end by tests/train/test_distributed.py)."""

from __future__ import annotations

import jax
import numpy as np

from jaxlab.train.parallel import Parallel


def _batch() -> dict[str, np.ndarray]:
    return {"image": np.ones((4, 2, 2, 1), np.float32), "label": np.arange(4, dtype=np.int32)}


def test_step_input_hands_numpy_to_jit_in_one_process_and_places_otherwise():
    batch = _batch()
    jit_mode = Parallel.create("jit")
    assert jit_mode.step_input(batch) is batch  # jit's dispatch places it
    placed = Parallel.create("pmap").step_input(batch)
    n = jax.local_device_count()
    assert placed["image"].shape == (n, 4 // n, 2, 2, 1)
    np.testing.assert_array_equal(placed["label"].reshape(-1), batch["label"])


def test_compiled_step_places_numpy_like_place_batch_and_donates_only_what_it_is_told():
    mode = Parallel.create("jit")
    step = mode.compile_train_step(lambda s, kept, b: s + kept + b["image"].sum(), (True, False))
    state, kept = jax.numpy.zeros(()), jax.numpy.ones(())
    out = step(state, kept, mode.step_input(_batch()))
    assert float(out) == 1 + 16
    assert state.is_deleted() and not kept.is_deleted()
    placed = mode.place_batch(_batch())
    assert placed["image"].sharding == mode.batch_sharding
