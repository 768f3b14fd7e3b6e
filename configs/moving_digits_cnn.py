"""The frame-by-frame baseline of configs/moving_digits_cnn_lstm.py: the same CNN encoder
and the same recipe, with a per-frame hidden layer (Dense 64 + ReLU) instead of the LSTM.

Run:    nice -n 5 python -m scripts.train --config configs/moving_digits_cnn.py --workdir runs/moving_digits_cnn
Smoke:  --config configs/moving_digits_cnn.py:smoke
Target: the reference the LSTM head must beat (a single frame cannot see through a dropped
        frame: about 0.7 x its clean-frame accuracy + 0.3 x chance).
Result: see docs/sections/video.md (measured numbers below).
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
