"""The independent per-pixel categorical on gen_digits: the reference likelihood of the
generative models (issue 10: 110.5 nats validation / 106.4 test; uniform 64 ln 17 = 181.3).

Run:    python -m scripts.train --config configs/gen_digits_pixel_baseline.py \
            --workdir runs/gen_digits_pixel_baseline
        (test split: add --config.dataset.eval_split=test)
Smoke:  --config configs/gen_digits_pixel_baseline.py:smoke
Recipe: one pass over the 1000 train images (5 steps of 200) accumulates the 17-way counts
        of every pixel; p = (count + 0.5) / (1000 + 17 * 0.5) (`task.pseudo_count` 0.5, the
        Jeffreys prior). No gradient, no optimizer step.
Result: see the measured line below.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")  # the documented arguments


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "gen_digits"
    c.dataset.eval_split = "validation"
    c.dataset.shuffle_buffer = 1000
    c.task = ml_collections.ConfigDict(
        {"name": "pixel_baseline", "levels": 0, "pseudo_count": 0.5, "binarize": ""}
    )
    c.best_metric, c.best_mode = "loss", "min"
    c.batch_size = 200
    c.eval_batch_size = 175
    c.num_epochs, c.num_train_steps = -1, 5  # exactly one pass over the 1000 train images
    c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 5
    c.evaluators = {"samples": {"num": 64}}
    if "smoke" in variants:
        c.num_train_steps = 2
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators = {"samples": {"num": 4}}
    return finish_config(c)
