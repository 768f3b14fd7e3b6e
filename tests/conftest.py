"""Shared fixtures: an offline TFDS data dir, tiny configs, and a subprocess runner."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests compile the same tiny programs over and over (in this process and in the
# subprocesses they start, which inherit the environment): JAX's persistent compilation
# cache turns most of those compiles into lookups. Results are identical either way.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "jaxlab-tests-xla-cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# The tests compile far more than they compute (tiny shapes, a few steps), so they trade
# XLA's CPU code quality for compile time: no LLVM optimization, XLA's older elemental
# fusion emitters (the new MLIR ones compile slower) and no expensive LLVM passes. Measured
# on two config smokes from a cold cache (CPU seconds, digits_cnn + gen_digits_ddpm): 27 +
# 51 with XLA's defaults, 17 + 26 without LLVM optimization, 13 + 20 with all three. The
# compiled code runs about 10x slower, so the few tests that train for real run in a
# subprocess with XLA's defaults (`train_for_real`). Training runs and scripts keep XLA's
# defaults. JAXLAB_TESTS_XLA_OPT=1 tests with them.
FAST_COMPILE_FLAGS = (
    "--xla_backend_optimization_level=0",
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_llvm_disable_expensive_passes=true",
)
if os.environ.get("JAXLAB_TESTS_XLA_OPT") != "1":
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *FAST_COMPILE_FLAGS])


def merged_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with `env` on top; XLA_FLAGS are joined, not replaced (a
    subprocess asking for 8 host devices keeps the tests' other XLA flags)."""
    merged = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    if env and "XLA_FLAGS" in env and os.environ.get("XLA_FLAGS"):
        merged["XLA_FLAGS"] = f"{os.environ['XLA_FLAGS']} {env['XLA_FLAGS']}"
    if merged.get("JAXLAB_TESTS_XLA_OPT") == "1":  # XLA's default code generation
        flags = merged.get("XLA_FLAGS", "").split()
        merged["XLA_FLAGS"] = " ".join(f for f in flags if f not in FAST_COMPILE_FLAGS)
    return merged


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A TFDS data dir of this test session, with the offline digits dataset prepared."""
    from jaxlab.config import default_config
    from jaxlab.data import get_dataset_info

    path = str(tmp_path_factory.mktemp("tfds"))
    config = default_config()
    config.dataset.data_dir = path
    get_dataset_info(config)  # prepares digits (a few seconds, once per session)
    return path


@pytest.fixture
def tiny_config(data_dir: str):
    """The default experiment shrunk for tests: an 8/16-wide conv net, 30 steps of batch 32."""
    from configs.digits_cnn import get_config

    c = get_config("smoke")
    c.dataset.data_dir = data_dir
    c.model.widths = (8, 16)
    c.optimizer.learning_rate = 1e-2
    c.batch_size = 32
    c.eval_batch_size = 60
    c.num_train_steps = 30
    c.log_every_steps = 5
    c.eval_every_steps = 15
    c.checkpoint_every_steps = 10
    return c


def run_script(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Runs `python -m module args...` from the repository root and captures its output."""
    full_env = merged_env(env)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def train_for_real(
    config: str, workdir: str, *overrides: str, timeout: float = 900
) -> dict[str, float]:
    """Trains `config` ('configs/x.py[:arg]') with `scripts.train` in a subprocess that
    compiles with XLA's defaults (this process's fast-compile flags make training about
    10x slower); returns the last eval row of its metrics.jsonl (keys without 'eval/')."""
    from jaxlab.train.reporting import METRICS_FILE, read_metrics

    result = run_script(
        "scripts.train",
        f"--config={config}",
        f"--workdir={workdir}",
        *overrides,
        env={"JAXLAB_TESTS_XLA_OPT": "1"},
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(os.path.join(workdir, METRICS_FILE))
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    assert evals, rows[-3:]
    return {k.removeprefix("eval/"): v for k, v in evals[-1].items()}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Runs tests/train first: its subprocess tests (8 devices, two processes, preemption)
    are the longest, and two xdist workers finish together when the short tests come last
    (collected alphabetically, tests/train came last). Each module stays contiguous."""
    items.sort(key=lambda item: 0 if f"{os.sep}tests{os.sep}train{os.sep}" in str(item.path) else 1)
