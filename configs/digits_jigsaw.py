"""Jigsaw puzzles (Noroozi & Favaro, 2016) on jaxlab's offline 8x8 digits: a 2x2 grid of
4x4 tiles shuffled by one of all 24 permutations (the Hamming-distance set with every
permutation), classified from the shared backbone's tile features; evaluated by a linear
probe and kNN on the backbone's features of whole images.

Run:    nice -n 5 python -m scripts.train --config configs/digits_jigsaw.py --workdir runs/digits_jigsaw
Smoke:  --config configs/digits_jigsaw.py:smoke
Recipe: digits_rotation.py's (`digits_pretext_config`) with the jigsaw task.
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
    task = ml_collections.ConfigDict(
        {"name": "jigsaw", "grid": 2, "num_permutations": 24, "permutation_seed": 0}
    )
    return digits_pretext_config(task, arg)
