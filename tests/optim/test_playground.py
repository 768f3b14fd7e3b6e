"""The optimizer playground: test functions, settling steps, tables, plots, the script."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest
from jax import numpy as jnp

from jaxlab.optim import playground as pg
from tests.conftest import run_script


@pytest.mark.parametrize("name", list(pg.FUNCTIONS))
def test_minima_are_stationary_with_the_stated_value(name):
    fn = pg.FUNCTIONS[name]
    for m in fn.minima:
        p = jnp.asarray(m)
        assert float(fn.fn(p)) == pytest.approx(fn.min_value, abs=1e-6)
        np.testing.assert_allclose(jax.grad(fn.fn)(p), 0.0, atol=1e-5)
    assert float(fn.fn(jnp.asarray(fn.start))) > fn.min_value
    if name == "saddle":
        np.testing.assert_allclose(jax.grad(fn.fn)(jnp.zeros(2)), 0.0)


def test_settling_steps_ignore_passing_through():
    inside = np.array([[0, 1, 0, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], bool)
    np.testing.assert_array_equal(pg.settling_steps(inside), [3, 0, -1])


def test_run_optimizer_vmaps_rates_and_matches_plain_gradient_descent():
    lrs = [1e-4, 1e-3]
    trajs = pg.run_optimizer(pg.rosenbrock, "sgd", (-1.5, 2.0), lrs, 5)
    assert trajs.shape == (2, 6, 2)
    p = np.array([-1.5, 2.0], np.float32)
    for _ in range(5):
        p = p - 1e-3 * np.asarray(jax.grad(pg.rosenbrock)(jnp.asarray(p)))
    np.testing.assert_allclose(trajs[1, -1], p, rtol=1e-5)


def test_table_reports_steps_or_why_not():
    fn = pg.FUNCTIONS["rosenbrock"]
    rows, paths = pg.steps_table(fn, ["adam", "lamb"], lrs=[1e-2, 1e-1], num_steps=4000)
    adam, lamb = rows
    assert adam["steps"] is not None and adam["steps"] < 4000 and adam["reason"] == ""
    assert adam["final_distance"] <= 1e-3
    assert len(paths["adam"]) == adam["steps"] + 1
    assert lamb["steps"] is None
    assert "not within tol" in lamb["reason"] and "trust ratio" in lamb["reason"]
    md = pg.markdown_table(fn, rows, 4000, 1e-3)
    assert "| adam | 0.01 |" in md or "| adam | 0.1 |" in md


def test_divergence_is_reported():
    fn = pg.FUNCTIONS["rosenbrock"]
    rows, _ = pg.steps_table(fn, ["sgd"], lrs=[0.1, 1.0], num_steps=50)
    assert rows[0]["reason"] == "every rate diverged within 50 steps"


@pytest.mark.slow  # a subprocess: start-up and compilation
def test_script_writes_plots_and_tables(tmp_path):
    out = str(tmp_path / "pg")
    res = run_script(
        "scripts.optim_playground",
        f"--out={out}",
        "--optimizers=sgd,eve,esgd",
        "--grid_min=1e-3",
        "--grid_max=1e-1",
        "--grid_per_decade=1",
        "--rosenbrock_steps=300",
        "--beale_steps=100",
        "--saddle_steps=100",
    )
    assert res.returncode == 0, res.stderr
    assert {"rosenbrock.png", "beale.png", "saddle.png", "table.json", "table.md"} <= set(
        os.listdir(out)
    )
    data = json.load(open(os.path.join(out, "table.json")))
    assert [r["optimizer"] for r in data["tables"]["rosenbrock"]] == ["sgd", "eve", "esgd"]
    assert data["settings"]["grid"] == pytest.approx([1e-3, 1e-2, 1e-1])
    assert "| esgd |" in res.stdout
    bad = run_script("scripts.optim_playground", f"--out={out}", "--optimizers=adamm")
    assert bad.returncode == 2 and "unknown optimizer 'adamm'" in bad.stderr
