"""Logging of a run: clu metric writers (TensorBoard events), `metrics.jsonl` and PNG
images in the workdir, one console progress line per log window, and `curves.png` drawn
from the JSON lines at the end of a run.

The console shows each number once: the progress line (train metrics) and the evaluators'
lines are printed by the loop, so the writers do not also log scalars to the console.
"""

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
IMAGES_DIR = "images"


def image_grid(images: np.ndarray) -> np.ndarray:
    """[N, H, W, C] (or [H, W, C], or [H, W]) images -> one [rows*H, cols*W, 3] float image
    in [0, 1] (uint8 scaled; grayscale repeated), at most 8 per row, 1-pixel gaps."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    if x.ndim == 2:
        x = x[None, ..., None]
    elif x.ndim == 3:
        x = x[None]
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    n, h, w, c = x.shape
    cols = min(n, 8)
    rows = -(-n // cols)
    grid = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1, c), np.float32)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[r * (h + 1) : r * (h + 1) + h, col * (w + 1) : col * (w + 1) + w] = x[i]
    return grid[..., :3] if c >= 3 else grid


def finite_scalars(prefix: str, values: Mapping[str, Any]) -> dict[str, float]:
    """Prefixed floats; values that are NaN (nothing accumulated: 0/0; the IoU of an absent
    class) are left out."""
    out = {f"{prefix}/{k}": float(np.asarray(v)) for k, v in values.items()}
    return {k: v for k, v in out.items() if not np.isnan(v)}


def flatten_config(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as {'a.b': value} with plain values (hyperparameters)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


class JsonlWriter(metric_writers.MetricWriter):
    """A clu MetricWriter appending one JSON object per write: {"step": s, name: value, ...},
    and writing images as PNG files `images/<name>_<step>.png` beside it (a batch of images
    as one grid).

    clu has no JSON-lines or image-file writer; this one makes a run's numbers
    machine-readable and its images viewable without TensorBoard.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.images_dir = os.path.join(os.path.dirname(os.path.abspath(path)), IMAGES_DIR)

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        row = {"step": int(step), **{k: float(np.asarray(v)) for k, v in scalars.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def write_summaries(
        self, step: int, values: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> None:
        pass

    def write_images(self, step: int, images: Mapping[str, Any]) -> None:
        import matplotlib.image

        os.makedirs(self.images_dir, exist_ok=True)
        for name, value in images.items():
            path = os.path.join(self.images_dir, f"{name.replace('/', '_')}_{int(step)}.png")
            matplotlib.image.imsave(path, image_grid(np.asarray(value)))

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
    """TensorBoard events, metrics.jsonl and image files on process 0; nothing elsewhere
    (the console lines are the loop's)."""
    if process_index > 0:
        return metric_writers.MultiWriter([])
    return metric_writers.MultiWriter(
        [
            metric_writers.SummaryWriter(workdir),
            JsonlWriter(os.path.join(workdir, METRICS_FILE)),
        ]
    )


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
    """Prints 'step s/N (p%) | name value ... | x steps/s | ETA' lines to stdout, with the
    given train metric names; the rate counts from `start` (after compilation)."""

    def __init__(self, total_steps: int, names: tuple[str, ...]) -> None:
        self.total, self.names = total_steps, names
        self.t0: float | None = None
        self.s0 = 0

    def start(self, step: int) -> None:
        """Starts the clock at `step` (the first step has compiled and run)."""
        self.t0, self.s0 = time.time(), step

    def __call__(self, step: int, values: Mapping[str, float]) -> None:
        shown = " ".join(
            f"{k} {values[k]:.4g}" for k in self.names if k in values and np.isfinite(values[k])
        )
        line = f"step {step}/{self.total} ({100 * step / self.total:.0f}%) | {shown}"
        if self.t0 is not None and step > self.s0:
            rate = (step - self.s0) / max(time.time() - self.t0, 1e-9)
            line += f" | {rate:.1f} steps/s | ETA {(self.total - step) / rate:.0f}s"
        print(line, file=sys.stdout, flush=True)


def plot_curves(workdir: str) -> str | None:
    """Draws the losses (every logged key ending in 'loss': train per window and per epoch,
    eval) and the other eval and epoch metrics into workdir/curves.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(os.path.join(workdir, METRICS_FILE))
    if not rows:
        return None

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    keys = sorted({k for r in rows for k in r if "/" in k})
    loss_keys = [k for k in keys if k.endswith("loss")]
    other_keys = [
        k
        for k in keys
        if k not in loss_keys and not k.startswith("train/") and "learning_rate" not in k
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in loss_keys:
        x, y = series(key)
        axes[0].plot(x, y, marker=None if key.startswith("train/") else "o", label=key)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss")
    if all(v > 0 for k in loss_keys for v in series(k)[1]):
        axes[0].set_yscale("log")
    if loss_keys:
        axes[0].legend()
    for key in other_keys:
        x, y = series(key)
        axes[1].plot(x, y, marker="o", label=key)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("metric")
    if other_keys:
        axes[1].legend()
    fig.tight_layout()
    out = os.path.join(workdir, CURVES_FILE)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
