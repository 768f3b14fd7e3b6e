"""Several runs side by side: parameters, FLOPs of one forward pass, training wall time and
best eval metric of each workdir in one table, and their curves overlaid in one plot.

Parameters and FLOPs come from the run's model (config.json's `model` section and its
dataset's input shape) through `jaxlab.analysis.params.parameter_table` (shapes only, XLA's
cost analysis for FLOPs). The training time is the wall time between the run's config.json
(written at start) and its last metrics.jsonl line (mtimes: the loop records no clock;
a resumed run counts its pause). The best metric is `best_metric` of the run's config
(`eval/<best_metric>`, max or min by `best_mode`) over metrics.jsonl.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence

import ml_collections
import numpy as np

from jaxlab.analysis.diagnose import curves
from jaxlab.train.reporting import METRICS_FILE, read_metrics


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One workdir's row of the comparison."""

    name: str
    model: str
    params: int | None
    flops: float | None
    train_seconds: float | None
    steps: int
    metric: str
    best: float


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The resolved config of a run (config.json; ValueError when absent)."""
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"no config.json in {workdir!r} (not a run's workdir)")
    with open(path) as f:
        record = json.load(f)
    return ml_collections.ConfigDict(record.get("config", record))


def model_cost(config: ml_collections.ConfigDict) -> tuple[int | None, float | None]:
    """(parameter count, forward FLOPs per example) of the run's model, or (None, None)
    when the task has no single registry model (kNN, GANs) or the dataset is unreadable."""
    from jaxlab import data
    from jaxlab.analysis.params import parameter_table
    from jaxlab.models import build_model

    try:
        info = data.get_dataset_info(config)
        kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        context = {"num_classes": info.num_classes} if getattr(info, "num_classes", None) else {}
        model = build_model(config.model.name, kwargs, **context)
        example = info.example_batch(1, train=False)
        table = parameter_table(model, example["image"].shape)
    except Exception:  # noqa: BLE001 - a run whose model cannot be rebuilt gets no cost
        return None, None
    return table.total, table.flops


def summarize_run(workdir: str, with_cost: bool = True) -> RunSummary:
    """The RunSummary of `workdir` (ValueError for a workdir without config or metrics)."""
    config = load_run_config(workdir)
    metrics_path = os.path.join(workdir, METRICS_FILE)
    rows = read_metrics(metrics_path)
    if not rows:
        raise ValueError(f"no {METRICS_FILE} rows in {workdir!r}")
    metric = f"eval/{config.get('best_metric') or 'loss'}"
    mode = config.get("best_mode", "max")
    c = curves(rows)
    values = c[metric][1] if metric in c else np.array([])
    values = values[np.isfinite(values)]
    best = float(values.max() if mode == "max" else values.min()) if len(values) else math.nan
    seconds = os.path.getmtime(metrics_path) - os.path.getmtime(
        os.path.join(workdir, "config.json")
    )
    params, flops = model_cost(config) if with_cost else (None, None)
    if config.task.get("name") == "knn":
        params, flops = None, None
    return RunSummary(
        name=os.path.basename(os.path.normpath(workdir)),
        model=f"{config.task.get('name')}/{config.model.get('name')}",
        params=params,
        flops=flops,
        train_seconds=max(seconds, 0.0),
        steps=int(max(r["step"] for r in rows)),
        metric=metric,
        best=best,
    )


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def comparison_table(runs: Sequence[RunSummary]) -> str:
    """A Markdown table, one row per run, in the given order."""
    lines = [
        "| run | task/model | params | FLOPs/example | train time (s) | steps | best metric |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.name} | {r.model} | {_fmt(r.params, ',')} | {_fmt(r.flops, '.3g')} | "
            f"{_fmt(r.train_seconds, '.0f')} | {r.steps} | {r.metric} {_fmt(r.best, '.4f')} |"
        )
    return "\n".join(lines)


def plot_runs(workdirs: Sequence[str], names: Sequence[str], path: str) -> None:
    """Train loss and every eval metric common to the runs, each run one colour, overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_curves = [curves(read_metrics(os.path.join(w, METRICS_FILE))) for w in workdirs]
    keys = ["train/loss"] + sorted(
        set.intersection(*[{k for k in c if k.startswith("eval/")} for c in all_curves])
    )
    keys = [k for k in keys if all(k in c for c in all_curves)][:3]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        for c, name in zip(all_curves, names, strict=False):
            ax.plot(*c[key], label=name, marker="." if key.startswith("eval") else None)
        ax.set_title(key)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
