"""1 device vs 8 simulated devices (jit and pmap) vs 2 processes: the same losses.

Each run is a subprocess, since the device count is fixed when JAX starts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, run_script

pytestmark = pytest.mark.slow

EIGHT_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}


def overrides(data_dir: str) -> list[str]:
    return [
        "--config",
        "configs/digits_cnn.py",
        f"--config.dataset.data_dir={data_dir}",
        "--config.model.widths=(8,16)",
        "--config.batch_size=32",
        "--config.eval_batch_size=64",
        "--config.num_epochs=-1",
        "--config.num_train_steps=20",
        "--config.log_every_steps=1",
        "--config.eval_every_steps=10",
        "--config.checkpoint_every_steps=10",
        # SGD + momentum: the devices' float32 reduction order moves the losses by ~1e-7,
        # so a tight tolerance catches real bugs (Adam magnifies that noise to ~7%).
        "--config.optimizer.name=momentum",
        "--config.optimizer.learning_rate=0.05",
        "--config.optimizer.weight_decay=0.0",
        "--config.optimizer.grad_clip_norm=0.0",
        "--config.schedule.name=constant",
        "--config.schedule.warmup_steps=0",
    ]


def logged(workdir: str, key: str) -> np.ndarray:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return np.array([r[key] for r in map(json.loads, f) if key in r])


@pytest.fixture(scope="module")
def single_device_run(data_dir, tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("one") / "run")
    proc = run_script("scripts.train", *overrides(data_dir), f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def assert_same_run(reference: str, other: str) -> None:
    a, b = logged(reference, "train/loss"), logged(other, "train/loss")
    assert len(a) == len(b) == 20
    # float32 sums in another order: ~1e-7 over 20 SGD+momentum steps; a bug shows as 1e-2.
    np.testing.assert_allclose(b, a, rtol=1e-5)
    np.testing.assert_allclose(
        logged(other, "eval/loss"), logged(reference, "eval/loss"), rtol=1e-5
    )
    np.testing.assert_array_equal(
        logged(other, "eval/accuracy"), logged(reference, "eval/accuracy")
    )


@pytest.mark.parametrize("mode", ["jit", "pmap"])
def test_eight_devices_match_one(mode, single_device_run, data_dir, tmp_path):
    workdir = str(tmp_path / mode)
    proc = run_script(
        "scripts.train",
        *overrides(data_dir),
        f"--workdir={workdir}",
        f"--config.parallel.mode={mode}",
        env=EIGHT_DEVICES,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 8 device(s)" in proc.stdout
    assert_same_run(single_device_run, workdir)
    record = json.load(open(os.path.join(workdir, "config.json")))
    assert record["topology"]["device_count"] == 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(single_device_run, data_dir, tmp_path):
    workdir = str(tmp_path / "two")
    port = _free_port()
    procs = []
    for pid in range(2):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "JAXLAB_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
            "JAXLAB_NUM_PROCESSES": "2",
            "JAXLAB_PROCESS_ID": str(pid),
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scripts.train",
                    *overrides(data_dir),
                    f"--workdir={workdir}",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert_same_run(single_device_run, workdir)
    record = json.load(open(os.path.join(workdir, "config.json")))
    assert record["topology"]["process_count"] == 2
    # Only process 0 writes logs and plots.
    events = [n for n in os.listdir(workdir) if n.startswith("events.out")]
    assert len(events) == 1 and os.path.exists(os.path.join(workdir, "curves.png"))
