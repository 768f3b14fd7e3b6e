"""Logging of a run: clu metric writers (TensorBoard + console), `metrics.jsonl`, a console
progress line, and `curves.png` drawn from the JSON lines at the end of a run."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from clu import metric_writers

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"


class JsonlWriter(metric_writers.MetricWriter):
    """A clu MetricWriter appending one JSON object per write: {"step": s, name: value, ...}.

    clu has no JSON-lines writer; this one makes a run's numbers machine-readable.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        row = {"step": int(step), **{k: float(np.asarray(v)) for k, v in scalars.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def write_summaries(
        self, step: int, values: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> None:
        pass

    def write_images(self, step: int, images: Mapping[str, Any]) -> None:
        pass

    def write_videos(self, step: int, videos: Mapping[str, Any]) -> None:
        pass

    def write_audios(self, step: int, audios: Mapping[str, Any], *, sample_rate: int) -> None:
        pass

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        pass

    def write_histograms(
        self, step: int, arrays: Mapping[str, Any], num_buckets: Any = None
    ) -> None:
        pass

    def write_pointcloud(
        self, step: int, point_clouds: Any, *, point_colors: Any = None, configs: Any = None
    ) -> None:
        pass

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def create_writer(workdir: str, process_index: int) -> metric_writers.MetricWriter:
    """TensorBoard events, console logging and metrics.jsonl on process 0; logging elsewhere."""
    writer = metric_writers.create_default_writer(
        workdir, just_logging=process_index > 0, asynchronous=False
    )
    if process_index > 0:
        return writer
    return metric_writers.MultiWriter([writer, JsonlWriter(os.path.join(workdir, METRICS_FILE))])


def read_metrics(path: str) -> list[dict[str, float]]:
    """Reads a metrics.jsonl file (skipping a torn last line left by a killed process)."""
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def truncate_metrics(
    path: str, last_step: int, keep_at_last: Callable[[dict[str, Any]], bool] | None = None
) -> None:
    """Drops rows logged after `last_step` (written before a crash, re-logged on resume), and
    rows at `last_step` for which `keep_at_last(row)` is False."""
    if not os.path.exists(path):
        return
    rows = [
        r
        for r in read_metrics(path)
        if r["step"] < last_step
        or (r["step"] == last_step and (keep_at_last is None or keep_at_last(r)))
    ]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    os.replace(tmp, path)


class ProgressLine:
    """Prints 'step s/N (p%) | key value ... | x steps/s | ETA' lines to stdout."""

    def __init__(self, total_steps: int, start_step: int) -> None:
        self.total, self.t0, self.s0 = total_steps, time.time(), start_step

    def __call__(self, step: int, values: Mapping[str, float]) -> None:
        dt = max(time.time() - self.t0, 1e-9)
        rate = (step - self.s0) / dt
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        shown = " ".join(f"{k} {v:.4g}" for k, v in values.items())
        print(
            f"step {step}/{self.total} ({100 * step / self.total:.0f}%) | {shown} | "
            f"{rate:.1f} steps/s | ETA {eta:.0f}s",
            file=sys.stdout,
            flush=True,
        )


def plot_curves(workdir: str) -> str | None:
    """Draws train loss per step and per epoch, and eval metrics, into workdir/curves.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(os.path.join(workdir, METRICS_FILE))
    if not rows:
        return None

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    eval_keys = sorted({k for r in rows for k in r if k.startswith("eval/")})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (
        ("train/loss", "train loss (per logged step)"),
        ("epoch/loss", "train loss (per epoch)"),
        ("eval/loss", "eval loss"),
    ):
        x, y = series(key)
        if x:
            axes[0].plot(x, y, marker="o" if key != "train/loss" else None, label=label)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss")
    axes[0].set_yscale("log")
    axes[0].legend()
    for key in [k for k in eval_keys if k != "eval/loss"] + ["epoch/accuracy"]:
        x, y = series(key)
        if x:
            axes[1].plot(x, y, marker="o", label=key)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("metric")
    axes[1].legend()
    fig.tight_layout()
    out = os.path.join(workdir, CURVES_FILE)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
