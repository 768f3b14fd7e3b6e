"""A two-hidden-layer MLP on the offline 8x8 digits, for comparison with digits_cnn.

Run:    python -m scripts.train --config configs/digits_mlp.py --workdir runs/digits_mlp
Smoke:  --config configs/digits_mlp.py:smoke
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")  # the documented arguments


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "digits"
    c.model.name = "mlp"
    c.model.depth = 2
    c.model.width = 256
    c.model.activation = "relu"
    c.model.dropout = 0.1
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.batch_size = 128
    c.eval_batch_size = 120
    c.num_epochs = 40
    c.log_every_steps = 11
    c.eval_every_steps = 110
    c.checkpoint_every_steps = 110
    if "smoke" in variants:
        c.num_epochs, c.num_train_steps = -1, 6
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 3
    return finish_config(c)
