"""Inpainting (a context encoder without the adversarial term, Pathak et al., 2016) on
jaxlab's offline 8x8 digits: a random 4x4 square is blanked (set to the mean) and the
squared error of the decoded image over that square is minimized; evaluated by a linear
probe and kNN on the backbone's features of whole images.

Run:    nice -n 5 python -m scripts.train --config configs/digits_inpainting.py --workdir runs/digits_inpainting
Smoke:  --config configs/digits_inpainting.py:smoke
Recipe: digits_rotation.py's (`digits_pretext_config`) with the inpainting task.
Result: not measured (the shared CPU's time went to BYOL, DINO and rotation).
Variants (the argument):
  smoke   3 steps of a tiny network, for tests.
"""

from __future__ import annotations

import ml_collections

from configs.digits_rotation import VARIANTS as VARIANTS  # the same documented arguments
from configs.digits_rotation import digits_pretext_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    task = ml_collections.ConfigDict({"name": "inpainting", "mask_size": 4})
    return digits_pretext_config(task, arg)
