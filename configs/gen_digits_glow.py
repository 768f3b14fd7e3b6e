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

from configs.gen_digits_realnvp import VARIANTS as VARIANTS  # the same documented arguments
from configs.gen_digits_realnvp import digits_flow_config
from jaxlab.config import finish_config, parse_variants


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg` selects the variants of the module docstring."""
    variants = parse_variants(arg, ("variational", "smoke"))
    c = digits_flow_config(variants, num_train_steps=1000, eval_every_steps=500)
    c.model.name = "glow"
    c.model.num_scales = 2
    c.model.num_steps = 4
    c.model.hidden = 64
    c.model.mask_type = "channel"
    c.model.learned_prior = True
    if "smoke" in variants:
        c.model.hidden, c.model.num_steps = 4, 1
    return finish_config(c)
