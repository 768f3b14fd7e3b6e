"""The train script's bad-input contract: one line on stderr, exit status 2, nothing written."""

from __future__ import annotations

import os

import pytest

from tests.conftest import run_script

CASES = {
    "unknown_key": (["--config.optimizer.lrr=1"], "unknown config key 'optimizer.lrr'"),
    "unknown_model": (["--config.model.name=resnet9000"], "unknown model 'resnet9000'; valid"),
    "unknown_dataset": (["--config.dataset.name=imagenet9"], "unknown dataset 'imagenet9'; valid"),
    "unknown_task": (["--config.task.name=gan"], "unknown task 'gan'; valid choices"),
    "unknown_optimizer": (["--config.optimizer.name=adamx"], "unknown optimizer 'adamx'"),
    "unknown_parallel": (["--config.parallel.mode=tpu"], "unknown parallel mode 'tpu'"),
    "negative_batch": (["--config.batch_size=-8"], "batch_size must be > 0"),
    "zero_lr": (["--config.optimizer.learning_rate=0"], "learning_rate must be > 0"),
    "wrong_type": (["--config.batch_size=abc"], "batch_size"),
    "not_prepared": (["--config.dataset.name=mnist"], "dataset 'mnist' is not prepared"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line(case, data_dir, tmp_path):
    overrides, expected = CASES[case]
    workdir = tmp_path / "run"
    proc = run_script(
        "scripts.train", "--config", "configs/digits_cnn.py", f"--workdir={workdir}",
        f"--config.dataset.data_dir={data_dir}", *overrides,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert not os.path.exists(workdir)


@pytest.mark.parametrize(
    "config, expected",
    [("configs/nope.py", "config file not found"), ("README.md", "must be a Python file")],
)
def test_bad_config_file(config, expected, tmp_path):
    proc = run_script("scripts.train", "--config", config, f"--workdir={tmp_path / 'run'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert expected in proc.stderr
    assert not os.path.exists(tmp_path / "run")


def test_batch_not_divisible_by_devices(data_dir, tmp_path):
    proc = run_script(
        "scripts.train", "--config", "configs/digits_cnn.py", f"--workdir={tmp_path / 'run'}",
        f"--config.dataset.data_dir={data_dir}", "--config.batch_size=12",
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"},
    )
    assert proc.returncode == 2
    assert "batch_size (12) must be divisible by the device count (8)" in proc.stderr
    assert not os.path.exists(tmp_path / "run")
