"""Figures of the interpretability methods: grids of images and maps drawn with
matplotlib, each saved as `<outdir>/<name>.png` and written to TensorBoard (clu's metric
writers) as the image `interpret/<name>`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

Cell = tuple[np.ndarray, str | None, str]  # (image [H, W] or [H, W, 3], cmap, title)


def to_display(pixels: np.ndarray) -> np.ndarray:
    """[H, W, C] [0, 1] pixels -> a displayable [H, W] (C == 1) or [H, W, 3] image; other
    channel counts show their mean."""
    p = np.clip(np.asarray(pixels, np.float32), 0.0, 1.0)
    if p.shape[-1] == 1:
        return p[..., 0]
    return p if p.shape[-1] == 3 else p.mean(-1)


def rescale(x: np.ndarray) -> np.ndarray:
    """Min-max scaling to [0, 1] (a constant array gives zeros)."""
    x = np.asarray(x, np.float32)
    span = float(x.max() - x.min())
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def grid_figure(rows: Sequence[Sequence[Cell]], title: str, row_labels: Sequence[str] = ()):  # noqa: ANN201 - a matplotlib Figure
    """A figure with one subplot per cell (rows may differ in length), axes hidden; cell
    images hold values in [0, 1] (pixels, or maps scaled by the caller)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(1.3 * ncols + 0.6, 1.4 * len(rows) + 0.5), squeeze=False
    )
    for r, row in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(row):
                ax.axis("off")
                continue
            image, cmap, label = row[c]
            ax.imshow(image, cmap=cmap, interpolation="nearest", vmin=0.0, vmax=1.0)
            ax.set_title(label, fontsize=7)
        if r < len(row_labels):
            axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


class FigureSink:
    """Saves figures as PNG files in `outdir` and as TensorBoard images there."""

    def __init__(self, outdir: str, tensorboard: bool = True) -> None:
        from clu import metric_writers

        os.makedirs(outdir, exist_ok=True)
        self.outdir = outdir
        self.writer = (
            metric_writers.create_default_writer(outdir, asynchronous=False)
            if tensorboard
            else None
        )
        self.paths: list[str] = []

    def save(self, name: str, fig: Any, step: int = 0) -> str:
        """Writes `fig` as `<outdir>/<name>.png` and the TensorBoard image `interpret/<name>`;
        closes it; returns the PNG's path."""
        import matplotlib.pyplot as plt

        path = os.path.join(self.outdir, f"{name}.png")
        fig.savefig(path, dpi=100)
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        plt.close(fig)
        if self.writer is not None:
            self.writer.write_images(step, {f"interpret/{name}": rgba[None, ..., :3]})
        self.paths.append(path)
        return path

    def scalars(self, scalars: dict[str, float], step: int = 0) -> None:
        """Writes scalars (the measured numbers) to TensorBoard."""
        if self.writer is not None:
            self.writer.write_scalars(step, scalars)

    def close(self) -> None:
        """Flushes and closes the TensorBoard writer."""
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
