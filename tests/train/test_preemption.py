"""Preemption: SIGTERM saves and exits cleanly; SIGKILL at any moment leaves a resumable
workdir; in both cases the resumed run ends bitwise equal to an uninterrupted one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxlab.train.checkpoint import Checkpointer
from tests.conftest import ROOT, run_script

pytestmark = pytest.mark.slow
STEPS = 240


def args(data_dir: str, workdir: str, checkpoint_every: int) -> list[str]:
    return [
        "--config",
        "configs/digits_cnn.py",
        f"--workdir={workdir}",
        f"--config.dataset.data_dir={data_dir}",
        "--config.model.widths=(4,8)",
        "--config.batch_size=16",
        "--config.num_epochs=-1",
        f"--config.num_train_steps={STEPS}",
        "--config.log_every_steps=1",
        "--config.eval_every_steps=0",
        f"--config.checkpoint_every_steps={checkpoint_every}",
        "--config.model.dropout=0.2",
    ]


def final_state(workdir: str) -> dict:
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    assert ckpt.latest_step() == STEPS
    state = ckpt.restore_raw(STEPS)
    ckpt.close()
    return state


def train_rows(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if "train/loss" in r]


def start(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "scripts.train", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_rows(workdir: str, n: int, proc: subprocess.Popen) -> None:
    path = os.path.join(workdir, "metrics.jsonl")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(path) and sum(1 for _ in open(path)) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"run ended or stalled before {n} rows: {proc.poll()}")


@pytest.fixture(scope="module")
def straight(data_dir, tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("straight") / "run")
    proc = run_script("scripts.train", *args(data_dir, workdir, 50))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def assert_identical(reference: str, other: str) -> None:
    a, b = final_state(reference), final_state(other)
    jax.tree.map(np.testing.assert_array_equal, a["task"]["params"], b["task"]["params"])
    jax.tree.map(np.testing.assert_array_equal, a["task"]["model_state"], b["task"]["model_state"])
    assert train_rows(reference) == train_rows(other)


def test_sigterm_then_sigkill_anytime_and_resume_is_exact(straight, data_dir, tmp_path):
    """One workdir through both interruptions (each a process start: the suite's time): a
    SIGTERM saves a checkpoint at the current step and exits 0; the continued run, saving
    every step, is killed outright mid-run; the next run resumes from the latest complete
    checkpoint and ends bitwise where the uninterrupted run did."""
    workdir = str(tmp_path / "run")
    proc = start(args(data_dir, workdir, 50))
    wait_for_rows(workdir, 60, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "Received SIGTERM: saved a checkpoint at step" in out
    stopped = int(out.split("saved a checkpoint at step ")[1].split(";")[0])
    assert 60 <= stopped < STEPS
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    assert ckpt.latest_step() == stopped
    ckpt.close()

    proc = start(args(data_dir, workdir, 1))  # killed mid-run while saving every step
    wait_for_rows(workdir, stopped + 60, proc)
    proc.kill()
    proc.communicate(timeout=60)

    proc = run_script("scripts.train", *args(data_dir, workdir, 50))
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = int(re.search(r"Resuming from checkpoint at step (\d+)", proc.stdout).group(1))
    assert stopped < resumed < STEPS  # the last complete checkpoint, not the SIGTERM one
    assert_identical(straight, workdir)
