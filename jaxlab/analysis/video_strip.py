"""Pictures of per-frame video predictions: a strip of clip frames with the label and each
model's prediction under every frame (wrong ones in red, dropped-frame noise included).

`predict_workdir` runs a trained `video_frames` run (its latest checkpoint) on clips;
`clip_strip_figure` draws the strip with matplotlib. `scripts/video_strip.py` puts them
together for the eval clips of a dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import jax
import numpy as np

from jaxlab.analysis.ensemble import load_config
from jaxlab.models import build_model
from jaxlab.train.transfer import load_pretrained

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OK_COLOUR, WRONG_COLOUR = "black", "red"


def predict_workdir(workdir: str, clips: np.ndarray, num_classes: int) -> np.ndarray:
    """Arg-max per-frame predictions int [N, T] of the latest checkpoint of `workdir` (a
    `video_frames` run) on `clips` [N, T, H, W, C]."""
    config = load_config(workdir)
    model = build_model(
        config.model.name,
        {k: v for k, v in config.model.to_dict().items() if k != "name"},
        num_classes=num_classes,
    )
    weights = load_pretrained(workdir)
    variables = {"params": weights["params"], **weights["model_state"]}
    logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, clips)
    return np.asarray(np.argmax(logits, -1))


def clip_strip_figure(
    clips: np.ndarray, labels: np.ndarray, predictions: Mapping[str, np.ndarray]
) -> Figure:
    """A matplotlib Figure: one row of frames per clip (clips [N, T, H, W, 1] in [0, 1]),
    and under each frame its label and every model's prediction (`predictions` name ->
    int [N, T]), a wrong prediction in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num, frames = labels.shape
    fig, axes = plt.subplots(
        num, frames, figsize=(1.1 * frames, 1.5 * num), squeeze=False, layout="constrained"
    )
    for n in range(num):
        for t in range(frames):
            ax = axes[n, t]
            ax.imshow(clips[n, t, ..., 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"y={labels[n, t]}", fontsize=7, labelpad=1)
            for i, (name, pred) in enumerate(predictions.items()):
                wrong = pred[n, t] != labels[n, t]
                ax.text(
                    0.5,
                    -0.32 - 0.16 * i,
                    f"{name} {pred[n, t]}",
                    color=WRONG_COLOUR if wrong else OK_COLOUR,
                    fontsize=6,
                    ha="center",
                    va="top",
                    transform=ax.transAxes,
                )
    return fig
