"""The frame-by-frame baseline of configs/moving_digits_cnn_lstm.py: the same CNN encoder
and the same recipe, with a per-frame hidden layer (Dense 64 + ReLU) instead of the LSTM.

Run:    nice -n 5 python -m scripts.train --config configs/moving_digits_cnn.py --workdir runs/moving_digits_cnn
Smoke:  --config configs/moving_digits_cnn.py:smoke
Target: the reference the LSTM head must beat (a single frame cannot see through a dropped
        frame: about 0.7 x its clean-frame accuracy + 0.3 x chance).
Result: test accuracy 0.340 on the scored frames (0.358 on all 8), flip_rate 0.614
        (labels: 0.0715), loss 1.787 after 800 steps (train accuracy 0.467);
        the LSTM head: 0.4475 and flip_rate 0.180. 8.8 minutes wall (first step at 134 s,
        2.0 steps/s) on the 2 CPU cores shared with other jobs (load 25-30), 2026-12-03.
Variants (the argument):
  smoke   4 steps of a 4/8-wide encoder with an 8-wide head, for tests.
"""

from __future__ import annotations

import ml_collections

from configs.moving_digits_cnn_lstm import VARIANTS as VARIANTS  # the same arguments
from configs.moving_digits_cnn_lstm import moving_digits_config
from jaxlab.config import finish_config, parse_variants


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    return finish_config(moving_digits_config(variants, "video_cnn"))
