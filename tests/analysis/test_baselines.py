"""scikit-learn baselines on the digits split, and reading a run's final eval accuracy."""

from __future__ import annotations

import json

import pytest

from jaxlab.analysis.baselines import (
    RunMetricsError,
    final_eval_accuracy,
    format_scores,
    run_score,
    score_from_accuracy,
    sklearn_baselines,
)
from jaxlab.data import load_digits_split
from tests.conftest import run_script


def write_run(workdir, rows, dataset="digits", model="small_cnn"):
    workdir.mkdir(exist_ok=True)
    with open(workdir / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
        f.write('{"step": 99, "eval/acc')  # a torn last line, as a killed run leaves
    record = {"config": {"dataset": {"name": dataset}, "model": {"name": model}}}
    (workdir / "config.json").write_text(json.dumps(record))
    return str(workdir)


ROWS = [
    {"step": 11, "train/loss": 1.0},
    {"step": 110, "eval/accuracy": 0.95, "eval/loss": 0.2},
    {"step": 220, "train/loss": 0.1},
    {"step": 220, "eval/accuracy": 355 / 360, "eval/loss": 0.05},
    {"step": 220, "epoch": 20.0, "epoch/accuracy": 1.0},
]


def test_split_sizes():
    x_train, y_train, x_test, y_test = load_digits_split()
    assert x_train.shape == (1437, 8, 8) and y_train.shape == (1437,)
    assert x_test.shape == (360, 8, 8) and y_test.shape == (360,)
    assert x_train.max() == 16  # raw scikit-learn scale


def test_sklearn_baselines_are_strong_but_not_perfect():
    svc, knn = sklearn_baselines()
    assert (svc.model, knn.model) == ("SVC()", "KNeighborsClassifier(3)")
    for s in (svc, knn):
        assert s.total == 360 and s.correct == round(s.accuracy * 360)
        assert 0.95 <= s.accuracy <= 1.0  # both are ~98-99% on digits


def test_final_eval_accuracy_is_the_last_eval_row(tmp_path):
    workdir = write_run(tmp_path / "run", ROWS)
    assert final_eval_accuracy(workdir) == pytest.approx(355 / 360)
    score = run_score(workdir, 360)
    assert (score.model, score.correct, score.total) == ("jaxlab small_cnn", 355, 360)


def test_unusable_workdirs_raise_one_line_errors(tmp_path):
    with pytest.raises(RunMetricsError, match="no metrics.jsonl"):
        final_eval_accuracy(str(tmp_path))
    no_eval = write_run(tmp_path / "no_eval", ROWS[:1])
    with pytest.raises(RunMetricsError, match="no 'eval/accuracy'"):
        final_eval_accuracy(no_eval)
    other = write_run(tmp_path / "other", ROWS, dataset="cifar10")
    with pytest.raises(RunMetricsError, match="cifar10"):
        final_eval_accuracy(other)
    assert final_eval_accuracy(other, dataset=None) == pytest.approx(355 / 360)


def test_format_scores():
    table = format_scores([score_from_accuracy("jaxlab small_cnn", 0.99, 360)])
    assert table.splitlines()[1].split() == ["jaxlab", "small_cnn", "99.00%", "356", "/", "360"]


@pytest.mark.slow  # a subprocess importing JAX and TF
def test_script_reads_a_workdir(tmp_path):
    workdir = write_run(tmp_path / "run", ROWS)
    proc = run_script("scripts.compare_sklearn", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("jaxlab small_cnn") and "355 / 360" in line for line in lines)
    assert any(line.startswith("SVC()") for line in lines)
    assert any(line.startswith("KNeighborsClassifier(3)") for line in lines)


@pytest.mark.slow
def test_script_bad_workdir_exits_2(tmp_path):
    proc = run_script("scripts.compare_sklearn", f"--workdir={tmp_path / 'missing'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: --workdir {tmp_path / 'missing'} is not a directory"
    ]
    proc = run_script("scripts.compare_sklearn", f"--workdir={tmp_path}")
    assert proc.returncode == 2 and "no metrics.jsonl" in proc.stderr.strip().splitlines()[-1]
