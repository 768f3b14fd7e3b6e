"""RealNVP on CIFAR-10 (Dinh et al. 2017), uniformly dequantized 8-bit pixels.

Run:    python -m scripts.train --config configs/cifar10_realnvp.py \
            --workdir runs/cifar10_realnvp
Smoke:  --config configs/cifar10_realnvp.py:smoke (tests, under tfds mock data)
Recipe: the paper's multi-scale architecture: at each of 3 scales, 3 checkerboard affine
        couplings, a squeeze, 3 channel couplings, then half the channels factored out
        (the last scale: 4 checkerboard couplings in the paper, 3 + 3 here); ActNorm in
        place of the paper's batch normalization; coupling networks of width 256 (the
        paper: residual networks of 8 blocks, 64 features); Adam 1e-3, batch 64.
Target: 3.49 bits/dim on the CIFAR-10 test set (Dinh et al. 2017, "Density estimation
        using Real NVP", Table 1). The gen_digits twin (configs/gen_digits_realnvp.py)
        reaches 124.81 nats here. Not measured here (no CIFAR-10 offline, and days of
        accelerator time).
Variants: `smoke` (2 steps of batch 4, one scale, width 4, no sampling).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "cifar10"
    c.dataset.normalize = False
    c.model.name = "realnvp"
    c.model.num_scales = 3
    c.model.num_couplings = 3
    c.model.hidden = 256
    c.model.mask_types = ("checkerboard", "channel")
    c.model.actnorm = True
    c.task.name = "flow"
    c.task.dequantization = "uniform"
    c.task.num_levels = 256
    c.task.sample_temperature = 1.0
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.schedule.warmup_steps = 2000
    c.batch_size = 64
    c.eval_batch_size = 500
    c.num_train_steps = 500_000
    c.log_every_steps = 500
    c.eval_every_steps = 10_000
    c.checkpoint_every_steps = 10_000
    c.best_metric, c.best_mode = "loss", "min"
    c.evaluators = {"samples": {"num": 64, "every_steps": 10_000}}
    if "smoke" in variants:
        c.model.num_scales, c.model.num_couplings, c.model.hidden = 1, 1, 4
        c.schedule.warmup_steps = 0
        c.batch_size, c.eval_batch_size, c.num_train_steps = 4, 4, 2
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators = {}
    return finish_config(c)
