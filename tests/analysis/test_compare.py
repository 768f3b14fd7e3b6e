"""Comparing runs: the table's numbers from the workdirs (parameters against the closed
form of a linear classifier, the best metric by the run's best_mode, the training time
from the files), the overlaid plot, and bad workdirs."""

from __future__ import annotations

import json
import os

import pytest

from jaxlab.analysis.compare import comparison_table, plot_runs, summarize_run


def make_run(path, accuracies, best_mode="max", start=1000.0, end=1100.0):
    from configs.digits_linear import get_config

    os.makedirs(path)
    c = get_config()
    c.unlock()
    c.best_mode = best_mode
    with open(path / "config.json", "w") as f:
        json.dump({"config": json.loads(c.to_json_best_effort())}, f)
    with open(path / "metrics.jsonl", "w") as f:
        for i, a in enumerate(accuracies):
            f.write(json.dumps({"step": 10 * (i + 1), "train/loss": 2.0 / (i + 1)}) + "\n")
            f.write(json.dumps({"step": 10 * (i + 1), "eval/accuracy": a}) + "\n")
    os.utime(path / "config.json", (start, start))
    os.utime(path / "metrics.jsonl", (end, end))
    return str(path)


def test_table_and_plot_of_two_runs(tmp_path):
    a = make_run(tmp_path / "a", [0.5, 0.9, 0.8])
    b = make_run(tmp_path / "b", [0.7, 0.6], best_mode="min", end=1250.0)
    ra = summarize_run(a)
    assert ra.params == 8 * 8 * 10 + 10  # digits: 64 inputs x 10 classes + biases
    assert ra.flops is not None and 2 * 640 <= ra.flops <= 2 * 650 + 100
    assert (ra.best, ra.steps, ra.train_seconds) == (0.9, 30, 100.0)
    rb = summarize_run(b, with_cost=False)
    assert (rb.best, rb.params, rb.train_seconds) == (0.6, None, 250.0)
    table = comparison_table([ra, rb])
    assert "| a | classification/linear | 650 |" in table and "eval/accuracy 0.6000" in table
    plot_runs([a, b], ["a", "b"], str(tmp_path / "cmp.png"))
    assert (tmp_path / "cmp.png").stat().st_size > 1000


def test_a_directory_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        summarize_run(str(tmp_path))
