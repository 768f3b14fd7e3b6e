"""A linear softmax classifier (multinomial logistic regression) on the offline digits.

Run:    python -m scripts.train --config configs/digits_linear.py --workdir runs/digits_linear
Smoke:  --config configs/digits_linear.py:smoke
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
    c.model.name = "linear"
    c.optimizer.name = "sgd"
    c.optimizer.learning_rate = 0.1
    c.optimizer.weight_decay = 1e-4  # L2 on the weights (biases exempt)
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
