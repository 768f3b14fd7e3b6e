"""Hyperparameter search: grid and random search (log-uniform ranges) over any config keys,
short runs first, then refined ranges trained longer; in sequence or in N parallel
processes; a results table (CSV and Markdown) sorted by the metric and a plot of the metric
against each swept key.

The search code is independent of training: `run_search(objective, points, parallel)`
evaluates any `objective(point) -> metric` (a synthetic function in the tests, a training
run in `train_objective`). Random search beats a grid of the same budget when only some keys
matter (Bergstra & Bengio, 2012): a grid of n^d points tries only n values of each key,
random search tries n^d values of every key.

Ranges are `Param(key, low, high, log=True, integer=False)`; `Param.parse('a.b=1e-4:1e-1:log')`
reads the command-line form ('lin' for a linear range, 'int' for integers). `refine_params`
narrows each range to the span of the best trials (in log space for log ranges), widened
by a factor on each side and clipped to the original range.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Sequence

import numpy as np

from jaxlab.config import ConfigError

Point = dict[str, float]


@dataclasses.dataclass(frozen=True)
class Param:
    """One swept config key and its range."""

    key: str
    low: float
    high: float
    log: bool = True
    integer: bool = False

    @staticmethod
    def parse(spec: str) -> Param:
        """'key=low:high[:log|lin|int]' -> Param (ConfigError for a bad spec)."""
        key, sep, rng = spec.partition("=")
        parts = rng.split(":")
        if not sep or not key or len(parts) not in (2, 3):
            raise ConfigError(f"bad --param {spec!r}; expected key=low:high[:log|lin|int]")
        kind = parts[2] if len(parts) == 3 else "log"
        if kind not in ("log", "lin", "int"):
            raise ConfigError(f"bad range kind {kind!r} in {spec!r}; valid choices: log, lin, int")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ConfigError(f"bad bounds in --param {spec!r}; expected numbers") from None
        if not low < high or (kind == "log" and low <= 0):
            raise ConfigError(f"bad range in {spec!r}: need low < high (and low > 0 for log)")
        return Param(key, low, high, log=kind == "log", integer=kind == "int")

    def _to_unit(self, v: float) -> float:
        if self.log:
            return (math.log(v) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (v - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        """The value at fraction `u` of the range (log-spaced for log ranges)."""
        if self.log:
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return float(round(v)) if self.integer else v


def grid_points(params: Sequence[Param], budget: int) -> list[Point]:
    """A full grid of at most `budget` points: floor(budget^(1/d)) values per key, evenly
    spaced (in log space for log ranges) from low to high."""
    n = max(1, int(math.floor(budget ** (1 / len(params)) + 1e-9)))
    axes = [[p.from_unit(u) for u in (np.linspace(0, 1, n) if n > 1 else [0.5])] for p in params]
    mesh = np.meshgrid(*[np.arange(n)] * len(params), indexing="ij")
    idx = np.stack([m.ravel() for m in mesh], 1)
    return [{p.key: axes[j][i[j]] for j, p in enumerate(params)} for i in idx]


def random_points(params: Sequence[Param], budget: int, seed: int = 0) -> list[Point]:
    """`budget` points drawn independently, uniform (log-uniform for log ranges)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(budget, len(params)))
    return [{p.key: p.from_unit(float(row[j])) for j, p in enumerate(params)} for row in u]


@dataclasses.dataclass
class Trial:
    """One evaluated point: its values, its metric (NaN when the run failed), its stage."""

    point: Point
    metric: float
    stage: str = "short"
    workdir: str = ""


def sort_trials(trials: Sequence[Trial], mode: str = "max") -> list[Trial]:
    """Best first (by `mode` 'max' or 'min'); failed trials (NaN) last."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(trials, key=lambda t: (math.isnan(t.metric), sign * np.nan_to_num(t.metric)))


def run_search(
    objective: Callable[[Point], float],
    points: Sequence[Point],
    *,
    parallel: int = 1,
    stage: str = "short",
    progress: Callable[[str], None] | None = None,
) -> list[Trial]:
    """Evaluates `objective` at every point, `parallel` at a time (threads: the real
    objective runs each trial in its own process), in input order."""
    if parallel < 1:
        raise ConfigError(f"parallel must be >= 1, got {parallel}")

    def one(i_point: tuple[int, Point]) -> Trial:
        i, point = i_point
        metric = float(objective(point))
        if progress:
            progress(f"{stage} trial {i + 1}/{len(points)}: {format_point(point)} -> {metric:.4g}")
        return Trial(dict(point), metric, stage)

    if parallel == 1:
        return [one(ip) for ip in enumerate(points)]
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, enumerate(points)))


def refine_params(
    params: Sequence[Param],
    trials: Sequence[Trial],
    mode: str = "max",
    top: int = 3,
    widen: float = 0.25,
) -> list[Param]:
    """Each range narrowed to the span of the `top` best trials' values, widened by `widen`
    of the span's width (in unit coordinates) on each side, within the original range."""
    best = [t for t in sort_trials(trials, mode)[:top] if not math.isnan(t.metric)]
    if not best:
        return list(params)
    out = []
    for p in params:
        units = [p._to_unit(t.point[p.key]) for t in best]
        lo, hi = min(units), max(units)
        pad = widen * max(hi - lo, 0.1)
        lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
        low, high = p.from_unit(lo), p.from_unit(hi)
        if p.integer and high <= low:
            high = low + 1
        out.append(dataclasses.replace(p, low=low, high=high))
    return out


def format_point(point: Point) -> str:
    """'key=value, ...' with 4 significant digits."""
    return ", ".join(f"{k}={v:.4g}" for k, v in point.items())


def write_results(
    trials: Sequence[Trial], keys: Sequence[str], metric_name: str, mode: str, out_dir: str
) -> tuple[str, str]:
    """Writes `results.csv` and `results.md` (sorted best first) into `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    ordered = sort_trials(trials, mode)
    csv_path, md_path = os.path.join(out_dir, "results.csv"), os.path.join(out_dir, "results.md")
    header = ["rank", "stage", *keys, metric_name, "workdir"]
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, t in enumerate(ordered):
            w.writerow([i + 1, t.stage, *[t.point[k] for k in keys], t.metric, t.workdir])
    lines = ["| " + " | ".join(header[:-1]) + " |", "|" + "---|" * (len(header) - 1)]
    for i, t in enumerate(ordered):
        cells = [str(i + 1), t.stage, *[f"{t.point[k]:.4g}" for k in keys], f"{t.metric:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return csv_path, md_path


def plot_results(
    trials: Sequence[Trial], params: Sequence[Param], metric_name: str, path: str
) -> None:
    """One panel per swept key: the metric of every trial against the key's value (log x
    for log ranges), short and long stages in two colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(params), figsize=(4 * len(params), 3.2), squeeze=False)
    for ax, p in zip(axes[0], params, strict=False):
        for stage, color in (("short", "tab:blue"), ("long", "tab:red")):
            ts = [t for t in trials if t.stage == stage and not math.isnan(t.metric)]
            if ts:
                ax.scatter(
                    [t.point[p.key] for t in ts], [t.metric for t in ts], c=color, label=stage, s=18
                )
        if p.log:
            ax.set_xscale("log")
        ax.set_xlabel(p.key)
        ax.set_ylabel(metric_name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def best_metric(workdir: str, metric: str, mode: str) -> float:
    """The best value of `metric` in `workdir/metrics.jsonl` (NaN when absent)."""
    path = os.path.join(workdir, "metrics.jsonl")
    values = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if metric in row and math.isfinite(row[metric]):
                    values.append(row[metric])
    if not values:
        return float("nan")
    return float(max(values) if mode == "max" else min(values))


def train_objective(
    config_spec: str,
    out_dir: str,
    params: Sequence[Param],
    metric: str,
    mode: str,
    steps: int,
    overrides: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> Callable[[Point], float]:
    """An objective that trains `config_spec` for `steps` steps in its own process
    (`python -m scripts.train`, workdir `out_dir/trial_<n>`) with the point's values as
    `--config.<key>=` overrides and returns the run's best `metric`."""
    counter = iter(range(10**9))

    def objective(point: Point) -> float:
        workdir = os.path.join(out_dir, f"trial_{next(counter):03d}_{steps}steps")
        args = [
            f"--config.{p.key}={int(point[p.key]) if p.integer else repr(point[p.key])}"
            for p in params
        ]
        cmd = [
            sys.executable, "-m", "scripts.train", "--config", config_spec, "--workdir", workdir,
            f"--config.num_train_steps={steps}", "--config.num_epochs=-1", *overrides, *args,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        with open(os.path.join(out_dir, os.path.basename(workdir) + ".log"), "w") as f:
            f.write(proc.stdout + proc.stderr)
        if proc.returncode not in (0,) and log:
            log(f"trial {workdir} failed (exit {proc.returncode}); see its .log")
        value = best_metric(workdir, metric, mode)
        objective.workdirs[json.dumps(point, sort_keys=True)] = workdir
        return value

    objective.workdirs = {}  # type: ignore[attr-defined]
    return objective
