"""The flow task's config checks (jaxlab.tasks.flow); its runs are the configs' smokes."""

from __future__ import annotations

import pytest

from jaxlab.config import ConfigError
from jaxlab.train.setup import build_experiment
from tests.test_configs import load_config


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("dequantization", "gaussian", "task.dequantization.*valid choices: uniform, variational"),
        ("sample_temperature", -1.0, "task.sample_temperature"),
    ],
)
def test_bad_task_options_are_config_errors(key, value, message):
    _, config = load_config("gen_digits_realnvp")
    config.task[key] = value
    with pytest.raises(ConfigError, match=message):
        build_experiment(config)


def test_bad_temperatures_option_is_a_config_error():
    _, config = load_config("gen_digits_realnvp")
    config.evaluators.temperatures.temps = (0.5,)
    with pytest.raises(ConfigError, match="unknown option.*temps.*valid: every_steps, num"):
        build_experiment(config)
