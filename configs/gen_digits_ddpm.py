"""DDPM (Ho et al., 2020) on the offline 8x8 digits (gen_digits: 1000 train, 350
validation images), with a small U-Net, scored by the `sample_quality` evaluator.

Run:    python -m scripts.train --config configs/gen_digits_classifier.py \
            --workdir runs/gen_digits_classifier   (the feature classifier, once)
        python -m scripts.train --config configs/gen_digits_ddpm.py \
            --workdir runs/gen_digits_ddpm
        DDIM (50 steps) on the trained run: copy the workdir and resume the copy for one
        more step with --config.task.sampler=ddim --config.num_train_steps=1501 (the
        evaluators run at the last step; init_from would restart the EMA).
Smoke:  --config configs/gen_digits_ddpm.py:smoke
Recipe: unet with 32 base channels, multipliers (1, 2) (8x8 and 4x4), 1 residual block per
        level, self-attention at 4x4, dropout 0.1 (GroupNorm groups of 4 channels);
        T = 200 steps, linear schedule (beta 1e-4..0.02, the paper's endpoints), data in
        [-1, 1], L_simple; Adam lr 1e-3 (100 warmup steps, then constant), gradients
        clipped at norm 1, batch 64, 1500 steps (96 epochs); EMA 0.999 of the weights
        (starts as a copy of the initial ones, decay warm-up min(0.999, (1+s)/(10+s)):
        task.ema_warmup), used for eval and sampling; ancestral
        sampling over all 200 steps with x0 clipped to [-1, 1]. Sized for a 2-core CPU
        shared with other jobs (about 5.6 steps/s).
Target: sample_quality/fd below the per-pixel baseline's samples (fd_baseline) and class
        entropy close to the real images' (ln 10 = 2.30 for balanced classes).
Result: (2026-12-03, 2 CPU cores shared with other jobs, load 5-12; sample_quality with the
        classifier of configs/gen_digits_classifier.py (validation accuracy 99.14%), 350
        samples vs the 350 validation images)
        Without EMA warm-up (--config.task.ema_warmup=False), ancestral sampling, 200 steps:
          fd 16.70 (fd_baseline 47.39, fd_real 2.07), entropy 2.280 (real 2.301, baseline
          2.017), confidence 0.881 (real 0.983, baseline 0.764); eval loss (EMA) 0.224,
          train loss 0.177; 671 s wall in all (first step after ~100 s, ~5.6 steps/s,
          final evaluators ~3 min).
        This config (EMA with warm-up), ancestral sampling, 200 steps: fd 2.54, entropy
          2.289, confidence 0.964; eval loss (EMA) 0.184; 881 s wall at load 8-12 (the
          Run command; 222 s before the first step).
        DDIM, 50 steps, eta 0, on the no-warm-up weights: fd 21.14, entropy 2.270,
          confidence 0.842 (worse than ancestral sampling on the same weights).
Variants (the argument):
  smoke   2 steps of a 4-wide one-level U-Net with T = 10, 2 sample images, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "gen_digits"
    c.dataset.eval_split = "validation"
    c.dataset.shuffle_buffer = 1000
    c.model.name = "unet"
    c.model.channels = 32
    c.model.channel_mults = (1, 2)
    c.model.num_res_blocks = 1
    c.model.attention_resolutions = (4,)
    c.model.dropout = 0.1
    c.task = ml_collections.ConfigDict(
        {
            "name": "diffusion",
            "schedule": "linear",
            "timesteps": 200,
            "ema_decay": 0.999,
            "ema_warmup": True,
            "sampler": "ddpm",
            "sample_steps": 50,
        }
    )
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "constant"
    c.schedule.warmup_steps = 100
    c.batch_size = 64
    c.eval_batch_size = 175
    c.num_train_steps = 1500
    c.log_every_steps = 100
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 500
    c.best_metric, c.best_mode = "loss", "min"
    c.evaluators = {
        "samples": {"num": 64},
        "sample_quality": {"classifier": "runs/gen_digits_classifier"},
    }
    if "smoke" in variants:
        c.model.channels = 4
        c.model.channel_mults = (1,)
        c.model.num_res_blocks = 1
        c.model.attention_resolutions = (8,)
        c.task.timesteps = 10
        c.task.sample_steps = 3
        c.schedule.warmup_steps = 0
        c.num_train_steps = 2
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators = {"samples": {"num": 2}}
    return finish_config(c)
