"""The learning-rate range test through the real loop."""

from __future__ import annotations

import json
import os

import pytest

from jaxlab.analysis.lr_find import range_test_config, run_range_test
from jaxlab.config import ConfigError


def test_range_test_config_grows_the_rate_exponentially(tiny_config):
    from jaxlab.optim import create_schedule

    c = range_test_config(tiny_config, 1e-5, 1.0, 51)
    schedule = create_schedule(c, c.num_train_steps)
    assert float(schedule(0)) == pytest.approx(1e-5)
    assert float(schedule(25)) == pytest.approx(1e-5 * 1e5**0.5, rel=1e-4)
    assert float(schedule(50)) == pytest.approx(1.0, rel=1e-4)
    assert c.log_every_steps == 1 and c.eval_every_steps == 0


def test_range_test_bad_bounds(tiny_config):
    with pytest.raises(ConfigError, match="0 < min_lr < max_lr"):
        range_test_config(tiny_config, 1.0, 0.1, 50)


@pytest.mark.slow
def test_range_test_writes_suggestions(tiny_config, tmp_path):
    workdir = str(tmp_path / "lr")
    result = run_range_test(tiny_config, workdir, 1e-5, 10.0, 60)
    assert os.path.exists(os.path.join(workdir, "lr_find.png"))
    saved = json.load(open(os.path.join(workdir, "lr_find.json")))
    assert saved["max_lr"] == result["max_lr"]
    assert 1e-5 < result["max_lr"] < result["min_loss_lr"] <= 10.0
    assert result["base_lr"] == pytest.approx(result["max_lr"] / 3)
