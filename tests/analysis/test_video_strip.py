"""The clip strip figure: one panel per frame, wrong predictions in red."""

from __future__ import annotations

import numpy as np

from jaxlab.analysis.video_strip import WRONG_COLOUR, clip_strip_figure


def test_strip_has_a_panel_per_frame_and_marks_wrong_predictions():
    clips = np.zeros((2, 3, 4, 4, 1), np.float32)
    labels = np.array([[1, 2, 3], [4, 5, 6]])
    predictions = {"a": labels.copy(), "b": labels.copy()}
    predictions["b"][1, 2] = 0
    fig = clip_strip_figure(clips, labels, predictions)
    assert len(fig.axes) == 6
    reds = [
        (i, text.get_text())
        for i, ax in enumerate(fig.axes)
        for text in ax.texts
        if text.get_color() == WRONG_COLOUR
    ]
    assert reds == [(5, "b 0")]
