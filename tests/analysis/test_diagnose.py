"""Curve diagnosis on synthetic curves of each shape it names, and the script on a
workdir's metrics.jsonl."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxlab.analysis.diagnose import diagnose

STEPS = np.arange(10, 1010, 10)


def rows(train, eval_loss=None, train_acc=None):
    out = []
    for i, s in enumerate(STEPS):
        row = {"step": int(s), "train/loss": float(train[i])}
        if train_acc is not None:
            row["train/accuracy"] = float(train_acc[i])
        out.append(row)
        if eval_loss is not None and i % 10 == 9:
            out.append({"step": int(s), "eval/loss": float(eval_loss[i])})
    return out


def names(r, **kw):
    return [f.name for f in diagnose(r, **kw)]


t = STEPS / STEPS[-1]
CURVES = {
    "diverged": 2.3 * np.exp(-5 * t) + np.where(t > 0.6, np.exp(20 * (t - 0.6)), 0),
    "oscillating": 0.5 + 0.3 * (np.arange(len(t)) % 2),
    "lr_too_low": 2.3 - 0.5 * t,
    "plateaued": 0.1 + 2.2 * np.exp(-20 * t),
    "still_improving": 0.1 + 2.2 * np.exp(-2 * t),
}


@pytest.mark.parametrize("shape", list(CURVES))
def test_each_train_curve_shape_is_named(shape):
    assert names(rows(CURVES[shape]))[0] == shape


def test_non_finite_loss_diverged():
    loss = CURVES["plateaued"].copy()
    loss[50:] = np.nan
    found = diagnose(rows(loss))
    assert found[0].name == "diverged" and "step 510" in found[0].evidence


def test_overfitting_when_eval_loss_turns_up_as_train_falls():
    train = 0.01 + 2.2 * np.exp(-5 * t)
    evals = 0.4 + 2.0 * np.exp(-8 * t) + 0.5 * t**2
    found = names(rows(train, evals))
    assert "overfitting" in found and "still_improving" not in found
    assert "overfitting" not in names(rows(train, train + 0.05))


def test_underfitting_at_a_plateau_with_low_train_accuracy():
    train = 1.2 + 1.1 * np.exp(-20 * t)
    found = names(rows(train, train * 1.02, np.full(len(t), 0.6)))
    assert found == ["plateaued", "underfitting"]
    assert "underfitting" not in names(rows(train, train * 1.02, np.full(len(t), 0.99)))


def test_the_script_reads_a_workdir(tmp_path):
    from scripts.diagnose import PLOT_FILE, run

    with open(tmp_path / "metrics.jsonl", "w") as f:
        for r in rows(CURVES["lr_too_low"]):
            f.write(json.dumps(r) + "\n")
    out = run(str(tmp_path))
    assert "lr_too_low" in out and "next:" in out and (tmp_path / PLOT_FILE).exists()
    with pytest.raises(ValueError, match="metrics.jsonl"):
        run(str(tmp_path / "nope"))
