"""Glow on CIFAR-10 (Kingma & Dhariwal 2018), uniformly dequantized 8-bit pixels.

Run:    python -m scripts.train --config configs/cifar10_glow.py --workdir runs/cifar10_glow
Smoke:  --config configs/cifar10_glow.py:smoke (tests, under tfds mock data)
Recipe: 3 scales of 32 steps (ActNorm, LU 1x1 convolution, affine coupling with 512-wide
        conv nets), learned conditional priors at the splits; Adam 1e-3 with linear
        warmup; batch 64. (The paper's additive/affine couplings use 3x3 - 1x1 - 3x3 nets of
        width 512 as here, K = 32, L = 3.)
Target: 3.35 bits/dim on the CIFAR-10 test set (Kingma & Dhariwal 2018, "Glow: Generative
        Flow with Invertible 1x1 Convolutions", Table 2; RealNVP, Dinh et al. 2017: 3.49).
Result: not measured here (no CIFAR-10 offline, and days of accelerator time).
Variants: `smoke` (a few steps of batch 4, one scale of one step, width 4).
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
    c.model.name = "glow"
    c.model.num_scales = 3
    c.model.num_steps = 32
    c.model.hidden = 512
    c.model.learned_prior = True
    c.task.name = "flow"
    c.task.dequantization = "uniform"
    c.task.num_levels = 256
    c.task.sample_temperature = 0.7
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.schedule.warmup_steps = 10_000
    c.batch_size = 64
    c.eval_batch_size = 500
    c.num_train_steps = 1_000_000
    c.log_every_steps = 500
    c.eval_every_steps = 10_000
    c.checkpoint_every_steps = 10_000
    c.best_metric, c.best_mode = "loss", "min"
    c.evaluators = {
        "samples": {"num": 64, "every_steps": 10_000},
        "temperatures": {"num": 8},
    }
    if "smoke" in variants:
        c.model.num_steps, c.model.hidden, c.model.num_scales = 1, 4, 1
        c.schedule.warmup_steps = 0
        c.batch_size, c.eval_batch_size, c.num_train_steps = 4, 4, 2
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators = {"samples": {"num": 2}, "temperatures": {"num": 1, "temperatures": (1.0,)}}
    return finish_config(c)
