"""The train script's bad-input contract: one line on stderr, exit status 2, nothing written."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import run_script

# Each case is a separate process (exit status and stderr are the contract): the ones the
# command line itself catches (flag parsing) and one found after TensorFlow is loaded. Every
# other name and value goes through the same validation in-process, below (IN_PROCESS).
CASES = {
    "unknown_key": (["--config.optimizer.lrr=1"], "unknown config key 'optimizer.lrr'"),
    "wrong_type": (["--config.batch_size=abc"], "batch_size"),
    "not_prepared": (["--config.dataset.name=mnist"], "dataset 'mnist' is not prepared"),
}


@pytest.mark.parametrize(
    "spec, expected",
    [
        (
            "configs/digits_cnn.py:bogus",
            "error: unknown config variant 'bogus'; valid choices: smoke",
        ),
        (
            "configs/digits_optimizers.py:adamz",
            "unknown config variant 'adamz'; valid choices: sgd",
        ),
        ("configs/cifar10_resnet20.py:long", "variant 'long' lengthens the digits run"),
        ("configs/imagenet_resnet50.py:digits", "it has no digits variant"),
    ],
)
def test_unknown_config_variant_exits_2_with_one_line(spec, expected, tmp_path):
    """A misspelt variant used to run the full experiment; now get_config refuses it."""
    proc = run_script("scripts.train", "--config", spec, f"--workdir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expected in lines[0], lines[0]
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("inside", [False, True])
def test_workdir_that_is_a_file_exits_2(inside, tmp_path):
    path = tmp_path / "file"
    path.write_text("not a run directory")
    workdir = path / "run" if inside else path
    proc = run_script(
        "scripts.train", "--config", "configs/digits_cnn.py:smoke", f"--workdir={workdir}"
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "an existing file, not a directory" in lines[0], proc.stderr
    assert path.read_text() == "not a run directory"


def test_misspelt_model_key_lists_the_completed_model_fields(tmp_path):
    """The model section holds every field of the model (completed by get_config), so the
    list of valid keys shows them all; a misspelt one still fails."""
    proc = run_script(
        "scripts.train",
        "--config",
        "configs/cifar10_resnet20.py",
        f"--workdir={tmp_path / 'run'}",
        "--config.model.nrom=group:8",
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "unknown config key 'model.nrom' (no 'nrom' in model); valid keys:" in lines[0]
    for key in ("norm", "activation", "depth", "width", "stochastic_depth"):
        assert f" {key}," in lines[0] or lines[0].endswith(f" {key}"), (key, lines[0])
    assert not os.path.exists(tmp_path / "run")


def parse_config_flags(*argv: str):
    """Parses `--config ...` and overrides as the scripts do, with a fresh flag registry;
    returns the config flag (its `.value` is the config)."""
    from absl import flags
    from ml_collections import config_flags

    argv = ["prog", *argv]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, "", flag_values=flag_values, lock_config=True, sys_argv=argv
    )
    flag_values(argv)
    return flag_values["config"]


def test_model_field_override_reaches_the_model():
    """resnet20's config sets only the model name; `--config.model.norm=group:8` reaches the
    model all the same (the section is completed from the model's fields)."""
    import jax

    from jaxlab.models import get_model

    def collections(*overrides: str) -> list[str]:
        flag = parse_config_flags("--config=configs/cifar10_resnet20.py:smoke", *overrides)
        kwargs = flag.value.model.to_dict()
        model = get_model(kwargs.pop("name"), num_classes=10, **kwargs)
        x = jax.ShapeDtypeStruct((1, 32, 32, 3), jax.numpy.float32)
        return sorted(jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x))

    assert collections() == ["batch_stats", "params"]
    assert collections("--config.model.norm=group:8") == ["params"]  # no running statistics


def test_model_name_override_replaces_the_completed_fields():
    """`--config.model.name=resnet56` on resnet20's config builds a ResNet-56 (the section's
    completed depth 20 is replaced), keeping what the command line and the file set."""
    from scripts.cli import complete_model_after_overrides

    flag = parse_config_flags(
        "--config=configs/cifar10_resnet20.py:digits",
        "--config.model.name=plain56",
        "--config.model.norm=group:4",
        "--config.model.width=8",
    )
    config = flag.value
    assert config.model.depth == 20 and config.model.shortcut is None  # before
    complete_model_after_overrides(flag)
    assert (config.model.depth, config.model.shortcut) == (56, "none")
    assert config.model.norm == "group:4" and config.model.width == 8  # the command line


IN_PROCESS = {
    "dataset": (("dataset", "name"), "imagenet9", "unknown dataset 'imagenet9'; valid choices"),
    "task": (("task", "name"), "gann", "unknown task 'gann'; valid choices"),
    "optimizer": (("optimizer", "name"), "adamx", "unknown optimizer 'adamx'; valid choices"),
    "schedule": (("schedule", "name"), "warm", "unknown schedule 'warm'; valid choices"),
    "parallel": (("parallel", "mode"), "tpu", "unknown parallel mode 'tpu'; valid choices"),
    "zero_lr": (("optimizer", "learning_rate"), 0.0, "learning_rate must be > 0"),
    "eval_batch": ((None, "eval_batch_size"), 0, "eval_batch_size must be > 0"),
    "augment": (("dataset", "augment"), "rotate", "unknown augment op 'rotate'"),
    "input_too_small": (("model", "name"), "lenet5", "lenet5 needs NHWC inputs of at least 12x12"),
    "nan_learning_rate": (
        ("optimizer", "learning_rate"),
        float("nan"),
        "optimizer.learning_rate must be a finite number, got nan",
    ),
    "inf_cosine_floor": (("schedule", "alpha"), float("inf"), "schedule.alpha must be a finite"),
    "inf_step_factor": (("schedule", "factors"), (float("inf"),), "schedule.factors must be a"),
    "nan_unused_hparam": (("optimizer", "eve_loss_min"), float("nan"), "optimizer.eve_loss_min"),
    "nan_label_smoothing": (("task", "label_smoothing"), float("nan"), "task.label_smoothing"),
    "inf_mixup": (("task", "mixup_alpha"), float("inf"), "task.mixup_alpha must be a finite"),
    "widths_not_integers": (("model", "widths"), ("abc",), "model.widths must be a sequence"),
    "widths_zero": (("model", "widths"), (8, 0), "positive integers, e.g. (16, 32) (model"),
    "dropout_nan": (("model", "dropout"), float("nan"), "model.dropout must be a finite number"),
    "unknown_model": (("model", "name"), "resnet9000", "unknown model 'resnet9000'; valid"),
    "negative_batch": ((None, "batch_size"), -8, "batch_size must be > 0"),
    "frozen_matches_nothing": (
        ("optimizer", "frozen"),
        "backbone/.*",
        "optimizer.frozen pattern 'backbone/.*' matches no parameter",
    ),
}


@pytest.mark.parametrize("case", sorted(IN_PROCESS))
def test_bad_names_and_values_raise_config_error(case, tiny_config):
    from jaxlab.config import ConfigError
    from jaxlab.train.setup import build_experiment

    (group, key), value, expected = IN_PROCESS[case]
    node = tiny_config[group] if group else tiny_config
    node[key] = value
    if case == "input_too_small":
        from jaxlab.models import complete_model_config

        del tiny_config.model["widths"]  # set by the test config; other keys hold defaults
        complete_model_config(tiny_config.model, previous_name="small_cnn")
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


@pytest.mark.slow  # a subprocess: start-up and compilation
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


@pytest.mark.slow  # a subprocess: start-up and compilation
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
