"""RealNVP on the offline 8x8 digits (17 levels), Tomczak's setting: 8 affine couplings on
uniformly dequantized pixels.

Run:    python -m scripts.train --config configs/gen_digits_realnvp.py --workdir runs/gen_digits_realnvp
Smoke:  --config configs/gen_digits_realnvp.py:smoke
Recipe: one scale of 4 checkerboard couplings, a 2x2 squeeze, 4 channel couplings (8
        couplings, conv nets of width 64, soft-clamped log-scales); Adam 1e-3 with cosine
        decay, batch 100; data in level units [0, 17) + U[0, 1) noise (jaxlab.tasks.flow).
Target: validation <= 135 nats per image (Tomczak's Deep Generative Modeling RealNVP curve
        ends near 125).
Result: 124.8 nats per image (2.81 bits/dim) on the validation split after the 1200 steps
        (138.4 at step 400, 127.6 at step 800); 3.1 minutes wall (first step at 23 s) on
        the 2 shared CPU cores under a load of about 5 (13.5 minutes under a load of 10).
        With 800 steps (cosine over 800): 131.6.
Variants: `variational` (Flow++ variational dequantization; its bound includes
        -E log q(u|x)); `smoke` (a few steps, width 4).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "variational", "smoke", "variational,smoke")


def digits_flow_config(
    variants: set[str], num_train_steps: int, eval_every_steps: int
) -> ml_collections.ConfigDict:
    """The gen_digits flow recipe without the model section (shared with
    configs/gen_digits_glow.py): the flow task, Adam with cosine decay, batch 100, sample and
    temperature grids; `smoke` in `variants` shrinks the run (the caller shrinks its model)."""
    c = default_config()
    c.dataset.name = "gen_digits"
    c.dataset.eval_split = "validation"
    c.dataset.shuffle_buffer = 1000
    c.task.name = "flow"
    c.task.dequantization = "variational" if "variational" in variants else "uniform"
    c.task.sample_temperature = 1.0
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.grad_clip_norm = 100.0
    c.schedule.name = "cosine"
    c.batch_size = 100
    c.eval_batch_size = 175
    c.num_train_steps = num_train_steps
    c.log_every_steps = 100
    c.eval_every_steps = c.checkpoint_every_steps = eval_every_steps
    c.best_metric, c.best_mode = "loss", "min"
    c.evaluators = {
        "samples": {"num": 64, "every_steps": eval_every_steps},
        "temperatures": {"num": 8, "temperatures": (0.5, 0.7, 0.9, 1.0)},
    }
    if "smoke" in variants:
        c.batch_size, c.num_train_steps = 8, 2
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators = {
            "samples": {"num": 4},
            "temperatures": {"num": 4, "temperatures": (0.5, 1.0)},
        }
    return c


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg` selects the variants of the module docstring."""
    variants = parse_variants(arg, ("variational", "smoke"))
    c = digits_flow_config(variants, num_train_steps=1200, eval_every_steps=400)
    c.model.name = "realnvp"
    c.model.num_scales = 1
    c.model.num_couplings = 4
    c.model.mask_types = ("checkerboard", "channel")
    c.model.hidden = 64
    if "smoke" in variants:
        c.model.hidden, c.model.num_couplings = 4, 1
    return finish_config(c)
