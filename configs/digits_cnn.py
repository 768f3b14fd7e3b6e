"""The default experiment: the small conv net on scikit-learn's 8x8 digits (offline).

Run:    python -m scripts.train --config configs/digits_cnn.py --workdir runs/digits_cnn
Recipe: the chain jaxlab is built around: AdamW (lr 5e-3, b1 0.9, b2 0.999, decoupled weight
        decay 1e-4, biases and batch-norm parameters exempt), gradients clipped at global
        norm 1, one epoch (11 steps) of linear warmup then cosine decay to 0, 20 epochs of
        batch 128 (220 steps); small_cnn with 16/32/64 filters, batch norm, no dropout.
Result: 99.44% test accuracy (358/360) at seed 0, in 37 s wall time on 2 CPU cores shared
        with other jobs (load average 4.4; 13.6 steps/s), measured with
        `python -m scripts.train --config configs/digits_cnn.py --workdir /tmp/cli-digits`
        (a fresh workdir). Seeds 1 and 2 (--config.seed=N): 98.61% and 99.44%; the split's
        360 images make one error 0.28%. On the CPU of 2026-12-03 (float results differ
        in the last bits): 99.17%, 99.72%, 99.44% at seeds 0, 1, 2.
Variants (the argument):
  smoke   6 steps at a constant rate, for tests (tests/conftest.py's `tiny_config` starts
          from it).
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
    c.model.name = "small_cnn"
    c.model.widths = (16, 32, 64)
    c.model.dropout = 0.0
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 5e-3
    c.optimizer.weight_decay = 1e-4
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 11  # one epoch
    c.batch_size = 128
    c.eval_batch_size = 120
    c.num_epochs = 20
    c.log_every_steps = 11
    c.eval_every_steps = 110
    c.checkpoint_every_steps = 110
    if "smoke" in variants:
        # A constant rate (AdamW and clipping kept): tests derive runs from this variant
        # (tests/conftest.py `tiny_config`) as short as 1 step, which no warmup fits, and
        # lengthen a run when resuming it, which a cosine over the run's length would change.
        c.schedule.name = "constant"
        c.schedule.warmup_steps = 0
        c.num_epochs = -1
        c.num_train_steps = 6
        c.log_every_steps = 2
        c.eval_every_steps = 3
        c.checkpoint_every_steps = 3
    return finish_config(c)
