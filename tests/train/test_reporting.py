"""Console progress, image files and curves of a run."""

from __future__ import annotations

import os

import matplotlib.image
import numpy as np

from jaxlab.train import reporting


def test_progress_line_counts_steps_per_second_only_after_start(capsys):
    progress = reporting.ProgressLine(10, ("loss", "accuracy"))
    progress(1, {"loss": 2.0, "accuracy": float("nan"), "learning_rate": 0.1})
    first = capsys.readouterr().out
    assert first.startswith("step 1/10 (10%) | loss 2") and "steps/s" not in first
    assert "accuracy" not in first and "learning_rate" not in first  # NaN / not a train name
    progress.start(1)
    progress(3, {"loss": 1.0, "accuracy": 0.5})
    line = capsys.readouterr().out
    assert "loss 1 accuracy 0.5" in line and "steps/s | ETA" in line


def test_images_are_written_as_png_grids(tmp_path):
    writer = reporting.JsonlWriter(str(tmp_path / reporting.METRICS_FILE))
    images = np.stack([np.full((4, 5, 1), v, np.float32) for v in (0.0, 0.5, 1.0)])
    writer.write_images(7, {"samples/grid": images})
    png = matplotlib.image.imread(os.path.join(tmp_path, "images", "samples_grid_7.png"))
    assert png.shape[:2] == (4, 3 * 5 + 2)  # three images side by side, 1-pixel gaps
    np.testing.assert_allclose(png[0, 6, :3], 0.5, atol=1 / 255)  # the second image


def test_plot_curves_draws_any_task_keys(tmp_path):
    writer = reporting.JsonlWriter(str(tmp_path / reporting.METRICS_FILE))
    writer.write_scalars(1, {"train/d_loss": 1.0, "train/g_loss": 2.0})
    writer.write_scalars(2, {"eval/iou/mean_iou": 0.5, "eval/loss": 0.3})
    assert reporting.plot_curves(str(tmp_path)) == os.path.join(tmp_path, reporting.CURVES_FILE)
