"""The train script's bad-input contract: one line on stderr, exit status 2, nothing written."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import run_script

# Each case is a separate process (exit status and stderr are the contract); the remaining
# names and values are checked in-process below, through the same validation.
CASES = {
    "unknown_key": (["--config.optimizer.lrr=1"], "unknown config key 'optimizer.lrr'"),
    "unknown_model": (["--config.model.name=resnet9000"], "unknown model 'resnet9000'; valid"),
    "negative_batch": (["--config.batch_size=-8"], "batch_size must be > 0"),
    "wrong_type": (["--config.batch_size=abc"], "batch_size"),
    "not_prepared": (["--config.dataset.name=mnist"], "dataset 'mnist' is not prepared"),
}


def test_config_argument_error_names_the_reason(tmp_path):
    proc = run_script(
        "scripts.train",
        "--config",
        "configs/digits_optimizers.py:adamz",
        f"--workdir={tmp_path / 'run'}",
    )
    assert proc.returncode == 2
    assert "unknown optimizer 'adamz'" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


IN_PROCESS = {
    "dataset": (("dataset", "name"), "imagenet9", "unknown dataset 'imagenet9'; valid choices"),
    "task": (("task", "name"), "gan", "unknown task 'gan'; valid choices"),
    "optimizer": (("optimizer", "name"), "adamx", "unknown optimizer 'adamx'; valid choices"),
    "schedule": (("schedule", "name"), "warm", "unknown schedule 'warm'; valid choices"),
    "parallel": (("parallel", "mode"), "tpu", "unknown parallel mode 'tpu'; valid choices"),
    "zero_lr": (("optimizer", "learning_rate"), 0.0, "learning_rate must be > 0"),
    "eval_batch": ((None, "eval_batch_size"), 0, "eval_batch_size must be > 0"),
    "augment": (("dataset", "augment"), "rotate", "unknown augment op 'rotate'"),
    "input_too_small": (("model", "name"), "lenet5", "lenet5 needs NHWC inputs of at least 12x12"),
}


@pytest.mark.parametrize("case", sorted(IN_PROCESS))
def test_bad_names_and_values_raise_config_error(case, tiny_config):
    from jaxlab.config import ConfigError
    from jaxlab.train.setup import build_experiment

    (group, key), value, expected = IN_PROCESS[case]
    node = tiny_config[group] if group else tiny_config
    node[key] = value
    if case == "input_too_small":
        del tiny_config.model["widths"], tiny_config.model["dropout"]
    with pytest.raises(ConfigError, match=re.escape(expected)):
        build_experiment(tiny_config)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line(case, data_dir, tmp_path):
    overrides, expected = CASES[case]
    workdir = tmp_path / "run"
    proc = run_script(
        "scripts.train",
        "--config",
        "configs/digits_cnn.py",
        f"--workdir={workdir}",
        f"--config.dataset.data_dir={data_dir}",
        *overrides,
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
        "scripts.train",
        "--config",
        "configs/digits_cnn.py",
        f"--workdir={tmp_path / 'run'}",
        f"--config.dataset.data_dir={data_dir}",
        "--config.batch_size=12",
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"},
    )
    assert proc.returncode == 2
    assert "batch_size (12) must be divisible by the device count (8)" in proc.stderr
    assert not os.path.exists(tmp_path / "run")


def test_mock_data_runs_a_config_on_generated_examples(tmp_path):
    """--mock_data runs a dataset that is not prepared here (mnist) on generated examples,
    saving checkpoints during the run; a negative count is bad input."""
    workdir = tmp_path / "run"
    args = [
        "--config",
        "configs/digits_linear.py",
        f"--config.dataset.data_dir={tmp_path / 'tfds'}",
        "--config.dataset.name=mnist",
        "--config.batch_size=8",
        "--config.eval_batch_size=8",
        "--config.num_epochs=-1",
        "--config.num_train_steps=4",
        "--config.log_every_steps=2",
        "--config.eval_every_steps=2",
        "--config.checkpoint_every_steps=2",
    ]
    proc = run_script("scripts.train", *args, f"--workdir={workdir}", "--mock_data=16")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Training linear on mnist" in proc.stdout and "final eval" in proc.stdout
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
    bad = run_script("scripts.train", *args, f"--workdir={tmp_path / 'bad'}", "--mock_data=-1")
    assert bad.returncode == 2 and "--mock_data must be >= 0" in bad.stderr
    assert not os.path.exists(tmp_path / "bad")
