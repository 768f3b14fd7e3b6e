"""Glow on the offline 8x8 digits (17 levels), uniformly dequantized.

Run:    python -m scripts.train --config configs/gen_digits_glow.py --workdir runs/gen_digits_glow
Smoke:  --config configs/gen_digits_glow.py:smoke
Recipe: two scales (squeeze; 4 steps of ActNorm (data-initialized), LU 1x1 convolution and
        channel affine coupling (conv nets of width 64); split with a learned conditional
        prior); Adam 1e-3 with cosine decay, batch 100; data in level units [0, 17) +
        U[0, 1) noise (jaxlab.tasks.flow).
Target: validation <= 135 nats per image.
Result: 115.7 nats per image (2.61 bits/dim) on the validation split after the 1000 steps
        (116.8 at step 500); 2.7 minutes wall (first step at 59 s) on the 2 shared CPU
        cores under a load of about 7 (9.7 minutes under a load of 10).
Variants: `variational` (Flow++ variational dequantization); `smoke` (a few steps, width 4).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "variational", "smoke", "variational,smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg` selects the variants of the module docstring."""
    variants = parse_variants(arg, ("variational", "smoke"))
    c = default_config()
    c.dataset.name = "gen_digits"
    c.dataset.eval_split = "validation"
    c.dataset.shuffle_buffer = 1000
    c.model.name = "glow"
    c.model.num_scales = 2
    c.model.num_steps = 4
    c.model.hidden = 64
    c.model.mask_type = "channel"
    c.model.learned_prior = True
    c.task.name = "flow"
    c.task.dequantization = "variational" if "variational" in variants else "uniform"
    c.task.sample_temperature = 1.0
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.grad_clip_norm = 100.0
    c.schedule.name = "cosine"
    c.batch_size = 100
    c.eval_batch_size = 175
    c.num_train_steps = 1000
    c.log_every_steps = 100
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 500
    c.best_metric, c.best_mode = "loss", "min"
    c.evaluators = {
        "samples": {"num": 64, "every_steps": 500},
        "temperatures": {"num": 8, "temperatures": (0.5, 0.7, 0.9, 1.0)},
    }
    if "smoke" in variants:
        c.model.hidden, c.model.num_steps = 4, 1
        c.batch_size, c.num_train_steps = 8, 2
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators = {
            "samples": {"num": 4},
            "temperatures": {"num": 4, "temperatures": (0.5, 1.0)},
        }
    return finish_config(c)
