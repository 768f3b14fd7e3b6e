"""MoCo v2 on the offline 8x8 digits (1437 train / 360 test), scored by a linear probe.

Run:    nice -n 5 python -m scripts.train --config configs/digits_moco.py \
            --workdir runs/digits_moco
Smoke:  --config configs/digits_moco.py:smoke
Recipe: the views, encoder, optimizer and evaluators of configs/digits_simclr.py; MoCo v2's
        MLP head without batch norm (128 -> 256 -> ReLU -> 64); InfoNCE at temperature
        0.2 against a queue of 1024 keys (4 batches); key encoder momentum 0.99; shuffled
        BN simulated with 8 groups of 32 (see jaxlab/tasks/moco.py).
Target: issue 13: a linear probe on the features beats the same probe on a randomly
        initialized encoder by a clear margin and reaches >= 0.95; a logistic regression on
        the raw pixels gives 0.967.
Result: see docs/sections/ssl.md.
Variants (the argument, comma-separated):
  random  the baseline of the target: every parameter frozen at its random init (100
          steps that only estimate the batch-norm statistics), then the same evaluators.
  smoke   2 steps of a 4/8-wide encoder, batch 16, a queue of 32, for tests.
"""

from __future__ import annotations

import ml_collections

from configs.digits_simclr import digits_ssl_config
from jaxlab.config import finish_config, parse_variants

VARIANTS = ("", "random", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("random", "smoke"))
    task = ml_collections.ConfigDict(
        {
            "name": "moco",
            "temperature": 0.2,
            "momentum": 0.99,
            "queue_size": 1024,
            "bn_groups": 8,
            "feature_dim": 128,
            "proj_hidden_dim": 256,
            "proj_dim": 64,
            "proj_depth": 1,
        }
    )
    if "smoke" in variants:
        task.feature_dim, task.proj_hidden_dim, task.proj_dim = 8, 8, 4
        task.queue_size, task.bn_groups = 32, 2
    return finish_config(digits_ssl_config(task, variants))
