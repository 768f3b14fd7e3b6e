"""The default experiment: the small conv net on scikit-learn's 8x8 digits (offline).

Run:    python -m scripts.train --config configs/digits_cnn.py --workdir runs/digits_cnn
Expect: >= 98.5% test accuracy (360 test images) in well under a minute on 2 CPU cores.
Smoke:  --config configs/digits_cnn.py:smoke (a few steps, for tests).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    c = default_config()
    c.dataset.name = "digits"
    c.model.name = "small_cnn"
    c.model.widths = (16, 32, 64)
    c.model.dropout = 0.0
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 3e-3
    c.schedule.name = "constant"
    c.batch_size = 128
    c.eval_batch_size = 120
    c.num_epochs = 20
    c.log_every_steps = 11
    c.eval_every_steps = 110
    c.checkpoint_every_steps = 110
    if arg == "smoke":
        c.num_epochs = -1
        c.num_train_steps = 6
        c.log_every_steps = 2
        c.eval_every_steps = 3
        c.checkpoint_every_steps = 3
    return c
