"""DDPM on CIFAR-10 in the paper's setting (Ho et al., 2020, unconditional CIFAR-10).

Run:    python -m scripts.train --config configs/cifar10_ddpm.py --workdir runs/cifar10_ddpm
Smoke:  --config configs/cifar10_ddpm.py:smoke
Recipe: the paper's: unet with 128 base channels, multipliers (1, 2, 2, 2) (32, 16, 8, 4),
        2 residual blocks per level, self-attention at 16x16, dropout 0.1 (35.7M parameters);
        T = 1000, linear schedule beta 1e-4..0.02, L_simple on images in [-1, 1]
        (dataset.normalize=False), random horizontal flips; Adam lr 2e-4 with 5000 warmup
        steps, gradients clipped at norm 1, batch 128, 800k steps; EMA 0.9999 of the weights
        (a copy of the initial ones at step 0) for sampling; ancestral sampling over all
        1000 steps (--config.task.sampler=ddim --config.task.sample_steps=100 for DDIM).
Target: FID 3.17 and Inception score 9.46 (the paper, 50k samples). Not measured here
        (no accelerator; jaxlab has no Inception FID, `sample_quality` needs a jaxlab
        classifier of CIFAR-10 as its feature network).
Variants (the argument):
  smoke   2 steps of a 4-wide one-level U-Net with T = 10 (no sampling), for tests.
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
    c.dataset.augment = "flip_lr"
    c.model.name = "unet"
    c.model.channels = 128
    c.model.channel_mults = (1, 2, 2, 2)
    c.model.num_res_blocks = 2
    c.model.attention_resolutions = (16,)
    c.model.dropout = 0.1
    c.task = ml_collections.ConfigDict(
        {
            "name": "diffusion",
            "schedule": "linear",
            "timesteps": 1000,
            "ema_decay": 0.9999,
            "sampler": "ddpm",
            "sample_steps": 100,
        }
    )
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 2e-4
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "constant"
    c.schedule.warmup_steps = 5000
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_train_steps = 800_000
    c.log_every_steps = 1000
    c.eval_every_steps = 50_000
    c.checkpoint_every_steps = 10_000
    c.best_metric, c.best_mode = "loss", "min"
    c.evaluators = {"samples": {"num": 64, "every_steps": 50_000}}
    if "smoke" in variants:
        c.model.channels = 4
        c.model.channel_mults = (1,)
        c.model.num_res_blocks = 1
        c.model.attention_resolutions = (16,)  # none at 32x32: the middle only
        c.task.timesteps = 10
        c.task.sample_steps = 3
        c.schedule.warmup_steps = 0
        c.batch_size = 4
        c.eval_batch_size = 8
        c.num_train_steps = 2
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators = {}  # the sampler compiles in gen_digits_ddpm's smoke
    return finish_config(c)
