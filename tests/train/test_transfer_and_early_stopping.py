"""Transfer learning from another workdir, and early stopping with patience."""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.train import train_and_evaluate
from jaxlab.train.checkpoint import Checkpointer
from jaxlab.train.early_stopping import EarlyStopping
from jaxlab.train.transfer import merge_pretrained


def latest_state(workdir: str) -> dict:
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    state = ckpt.restore_raw(ckpt.latest_step())
    ckpt.close()
    return state


def test_early_stopping_counts_evaluations_without_improvement():
    es = EarlyStopping(metric="accuracy", mode="max", patience=2, min_delta=0.01)
    assert not es.update(10, {"accuracy": 0.5})
    assert not es.update(20, {"accuracy": 0.505})  # below min_delta: no improvement
    assert not es.update(30, {"accuracy": 0.6})  # improvement resets the count
    assert not es.update(40, {"accuracy": 0.6})
    assert es.update(50, {"accuracy": 0.59})
    assert (es.best, es.best_step, es.stopped_at) == (0.6, 30, 50)
    restored = EarlyStopping.from_dict(es.to_dict(), metric="accuracy", patience=2)
    assert restored.best == 0.6 and restored.bad_evals == 2


def test_early_stopping_min_mode():
    es = EarlyStopping(metric="loss", mode="min", patience=1)
    assert not es.update(1, {"loss": 2.0})
    assert not es.update(2, {"loss": 1.0})
    assert es.update(3, {"loss": 1.5})


def test_merge_pretrained_reinitializes_head_and_rejects_mismatches():
    new = {
        "params": {"conv": {"kernel": np.zeros((3, 3))}, "head": {"kernel": np.zeros((3, 5))}},
        "batch_stats": {"bn": {"mean": np.zeros(3)}},
    }
    source = {
        "params": {
            "conv": {"kernel": np.ones((3, 3))},
            "head": {"kernel": np.ones((3, 2))},
            "extra": {"bias": np.ones(2)},
        },
        "model_state": {"batch_stats": {"bn": {"mean": np.full(3, 7.0)}}},
    }
    merged, report = merge_pretrained(new, source, "head")
    np.testing.assert_array_equal(merged["params"]["conv"]["kernel"], np.ones((3, 3)))
    np.testing.assert_array_equal(merged["params"]["head"]["kernel"], np.zeros((3, 5)))
    np.testing.assert_array_equal(merged["batch_stats"]["bn"]["mean"], np.full(3, 7.0))
    assert report.reinitialized == ["params/head/kernel"]
    assert report.unexpected == ["params/extra/bias"]
    source["params"]["conv"]["kernel"] = np.ones((4, 3))
    with pytest.raises(ConfigError, match=r"params/conv/kernel \(4, 3\) vs \(3, 3\)"):
        merge_pretrained(new, source, "head")


@pytest.mark.slow
def test_init_from_loads_backbone_with_new_head(tiny_config, tmp_path):
    tiny_config.eval_every_steps = 0
    source = str(tmp_path / "source")
    train_and_evaluate(tiny_config, source)
    trained = latest_state(source)

    tiny_config.init_from = source
    tiny_config.model.num_classes = 12  # a new task: the head is re-created
    tiny_config.num_train_steps = 1
    tiny_config.optimizer.frozen = "conv.*|bn.*"  # the backbone frozen: it must stay as loaded
    target = str(tmp_path / "target")
    train_and_evaluate(tiny_config, target)
    state = latest_state(target)
    for name, leaf in state["task"]["params"].items():
        if name != "head":
            jax.tree.map(np.testing.assert_array_equal, leaf, trained["task"]["params"][name])
    assert state["task"]["params"]["head"]["kernel"].shape[-1] == 12
    assert int(state["step"]) == 1  # the step counter is never taken from the source


def test_init_from_shape_mismatch_fails_before_writing(tiny_config, tmp_path):
    source = str(tmp_path / "source")
    tiny_config.num_train_steps = 1
    tiny_config.eval_every_steps = 0
    train_and_evaluate(tiny_config, source)
    tiny_config.init_from = source
    tiny_config.model.widths = (4, 16)
    target = str(tmp_path / "target")
    with pytest.raises(ConfigError, match="shapes differ outside the head"):
        train_and_evaluate(tiny_config, target)
    assert not os.path.exists(target)


@pytest.mark.slow
def test_early_stopping_stops_and_records(tiny_config, tmp_path):
    tiny_config.eval_every_steps = 5
    tiny_config.early_stopping.patience = 2
    tiny_config.early_stopping.min_delta = 1.0  # accuracy can never improve by more than 1
    workdir = str(tmp_path / "run")
    train_and_evaluate(tiny_config, workdir)
    record = json.load(open(os.path.join(workdir, "early_stopping.json")))
    assert record["stopped_at"] == 15 and record["best_step"] == 5
    assert int(latest_state(workdir)["step"]) == 15
    assert train_and_evaluate(tiny_config, workdir)  # a re-run reports and trains no further
    assert int(latest_state(workdir)["step"]) == 15


@pytest.mark.slow
def test_lsuv_config_rescales_layers_on_a_train_batch(tiny_config, tmp_path, capsys):
    tiny_config.model = ml_collections.ConfigDict(
        {"name": "resnet20", "kernel_init": "lsuv", "norm": "none"}
    )
    tiny_config.num_train_steps = 2
    tiny_config.eval_every_steps = 0
    train_and_evaluate(tiny_config, str(tmp_path / "run"))
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("LSUV"))
    variances = [float(v) for v in line.split(":", 1)[1].split(",") for v in [v.split()[-1]]]
    assert len(variances) >= 8 and all(abs(v - 1.0) < 0.05 for v in variances), line
