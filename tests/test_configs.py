"""Every config in configs/ runs a few steps: digits offline, the others under TFDS mock data."""

from __future__ import annotations

import glob
import importlib.util
import os

import pytest
import tensorflow_datasets as tfds

from jaxlab.train import train_and_evaluate
from tests.conftest import ROOT

CONFIGS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
    if not os.path.basename(p).startswith("_")
)


def load_config(name: str, arg: str | None = None):
    """Imports configs/<name>.py; returns it and its config for `arg` (default: its smoke
    variant, `SMOKE_ARG` where the config's argument means something else)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.get_config(arg or getattr(module, "SMOKE_ARG", "smoke"))


def test_configs_document_how_to_run_them():
    for name in CONFIGS:
        module, _ = load_config(name)
        assert f"configs/{name}.py" in (module.__doc__ or ""), name


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_config_runs_a_few_steps(name, data_dir, tmp_path):
    _, config = load_config(name)
    config.dataset.data_dir = data_dir
    workdir = str(tmp_path / "run")
    if config.dataset.name == "digits":
        metrics = train_and_evaluate(config, workdir)
    else:
        # mock_data fakes the file system while a pipeline is built; an asynchronous orbax
        # save running at that moment would write into the fake one. Save only at the end.
        config.checkpoint_every_steps = 0
        with tfds.testing.mock_data(num_examples=24):
            metrics = train_and_evaluate(config, workdir)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert os.path.exists(os.path.join(workdir, "metrics.jsonl"))
