"""Grid and random search, range refinement, the results table and plot, on synthetic
objectives through the same search code the script runs."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from jaxlab.analysis.sweep import (
    Param,
    grid_points,
    plot_results,
    random_points,
    refine_params,
    run_search,
    sort_trials,
    write_results,
)
from jaxlab.config import ConfigError

LR = Param("optimizer.learning_rate", 1e-4, 1.0)
WD = Param("optimizer.weight_decay", 1e-6, 1e-2)
BEST_LOG_LR = -2.37


def only_lr_matters(point):
    """A peak at lr = 10^-2.37 (between grid values); weight decay has no effect."""
    return -((math.log10(point[LR.key]) - BEST_LOG_LR) ** 2)


def test_random_search_finds_a_better_rate_than_a_grid_of_the_same_budget():
    grid = run_search(only_lr_matters, grid_points([LR, WD], 9))
    assert len(grid) == 9 and len({t.point[LR.key] for t in grid}) == 3  # 3 rates tried
    grid_best = max(t.metric for t in grid)
    random_best = [
        max(t.metric for t in run_search(only_lr_matters, random_points([LR, WD], 9, seed)))
        for seed in range(20)
    ]
    assert np.mean(np.array(random_best) > grid_best) >= 0.7
    assert np.mean(random_best) > grid_best


def test_grid_is_log_spaced_and_random_is_log_uniform():
    rates = sorted({p[LR.key] for p in grid_points([LR], 5)})
    np.testing.assert_allclose(rates, [1e-4, 1e-3, 1e-2, 1e-1, 1.0], rtol=1e-9)
    logs = np.log10([p[LR.key] for p in random_points([LR], 4000, seed=1)])
    assert logs.min() >= -4 and logs.max() <= 0
    np.testing.assert_allclose(np.histogram(logs, bins=4, range=(-4, 0))[0] / 4000, 0.25, atol=0.03)


def test_refined_ranges_close_in_on_the_best_trials_and_parallel_matches_sequential():
    points = random_points([LR, WD], 12, seed=3)
    trials = run_search(only_lr_matters, points, parallel=3)
    assert [t.metric for t in trials] == [t.metric for t in run_search(only_lr_matters, points)]
    (lr, wd) = refine_params([LR, WD], trials, "max", top=3)
    best = sort_trials(trials, "max")[:3]
    assert lr.low <= min(t.point[LR.key] for t in best) and lr.high >= max(
        t.point[LR.key] for t in best
    )
    assert math.log(lr.high / lr.low) < math.log(LR.high / LR.low)
    assert lr.low <= 10**BEST_LOG_LR <= lr.high
    assert WD.low <= wd.low < wd.high <= WD.high


def test_results_table_sorted_by_metric_with_failures_last(tmp_path):
    trials = run_search(only_lr_matters, grid_points([LR], 4))
    trials[1].metric = float("nan")
    csv_path, md_path = write_results(trials, [LR.key], "score", "max", str(tmp_path))
    rows = list(csv.DictReader(open(csv_path)))
    scores = [float(r["score"]) for r in rows]
    assert math.isnan(scores[-1]) and scores[:-1] == sorted(scores[:-1], reverse=True)
    assert open(md_path).read().count("\n") == 2 + len(trials)
    plot_results(trials, [LR], "score", str(tmp_path / "sweep.png"))
    assert (tmp_path / "sweep.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "spec, message",
    [
        ("lr", "expected key=low:high"),
        ("lr=1:0.1", "need low < high"),
        ("lr=0:1:log", "low > 0"),
        ("lr=1e-3:1:cube", "valid choices: log, lin, int"),
        ("lr=a:1", "expected numbers"),
    ],
)
def test_bad_param_specs_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        Param.parse(spec)
    assert Param.parse("model.width=4:64:int") == Param(
        "model.width", 4, 64, log=False, integer=True
    )
