"""Ensemble evaluation over checkpoints of finished runs."""

from __future__ import annotations

import pytest

from jaxlab.analysis.ensemble import ensemble_from_workdirs
from jaxlab.config import ConfigError
from jaxlab.train import train_and_evaluate


@pytest.mark.slow
def test_ensemble_reports_members_and_ensemble(tiny_config, tmp_path):
    tiny_config.eval_every_steps = 0
    tiny_config.checkpoint_every_steps = 0
    workdirs = []
    finals = []
    for seed in (0, 1):
        tiny_config.seed = seed
        workdirs.append(str(tmp_path / f"s{seed}"))
        finals.append(train_and_evaluate(tiny_config, workdirs[-1])["accuracy"])
    result = ensemble_from_workdirs(workdirs)
    assert [m["step"] for m in result["members"]] == [30, 30]
    # each member's accuracy is exactly its run's own final evaluation
    assert [m["accuracy"] for m in result["members"]] == pytest.approx(finals, abs=1e-6)
    assert result["num_examples"] == 360
    assert 0.0 < result["ensemble_accuracy"] <= 1.0


def test_ensemble_needs_workdirs(tmp_path):
    with pytest.raises(ConfigError, match="not a jaxlab workdir"):
        ensemble_from_workdirs([str(tmp_path)])
