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
# The tests compile far more than they compute (tiny shapes, a few steps), so they skip
# LLVM's optimization of XLA's CPU code: measured on a quiet machine from a cold cache, the
# whole suite took 28 min 50 s with this and 38 min 29 s without, although the few tests
# that train for real (the default experiment's 220 steps) run about 10x slower. Training
# runs and scripts keep XLA's default. JAXLAB_TESTS_XLA_OPT=1 tests with it.
NO_BACKEND_OPT = "--xla_backend_optimization_level=0"
if os.environ.get("JAXLAB_TESTS_XLA_OPT") != "1":
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {NO_BACKEND_OPT}".strip()


def merged_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with `env` on top; XLA_FLAGS are joined, not replaced (a
    subprocess asking for 8 host devices keeps the tests' other XLA flags)."""
    merged = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    if env and "XLA_FLAGS" in env and os.environ.get("XLA_FLAGS"):
        merged["XLA_FLAGS"] = f"{os.environ['XLA_FLAGS']} {env['XLA_FLAGS']}"
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
