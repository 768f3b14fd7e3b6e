"""XLNet-style permutation language model on the Shakespeare character corpus (small scale).

Run:    python -m scripts.train --config configs/shakespeare_char_xlnet.py --workdir runs/shakespeare_char_xlnet
Recipe: task permutation_lm (per window a uniformly random factorization order; the last
        1/6 of each order predicted from the characters before it in the order), model
        xlnet: two-stream attention (content and query streams sharing 4 post-LN blocks of
        width 128, 4 heads of 32, GELU MLP 512), learned absolute positions; windows of 64
        characters, batch 64; AdamW (lr 1e-3, b2 0.98, weight decay 0.01), gradient
        clipping at norm 1, 200 warmup steps then cosine decay over 5,000 steps.
Result: not measured yet (a permutation LM's nats are not comparable to the left-to-right
        references of the LM configs: a predicted character may see both sides).
Variants (the argument):
  smoke   a few steps of a 1-block width-16 net on windows of 16 (tests).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")  # the documented arguments


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "shakespeare_char"
    c.dataset.seq_len = 64
    c.dataset.shuffle_buffer = 0
    c.task.name = "permutation_lm"
    c.task.predict_fraction = 1 / 6
    c.model.name = "xlnet"
    c.model.d_model, c.model.depth, c.model.num_heads, c.model.head_dim = 128, 4, 4, 32
    c.model.d_inner, c.model.max_len, c.model.dropout = 512, 64, 0.1
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.b2 = 0.98
    c.optimizer.weight_decay = 0.01
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 200
    c.batch_size, c.eval_batch_size = 64, 64
    c.num_epochs = -1
    c.num_train_steps = 5000
    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.checkpoint_every_steps = 1000
    c.best_metric, c.best_mode = "loss", "min"
    if "smoke" in variants:
        c.dataset.seq_len = 16
        c.model.d_model, c.model.depth, c.model.num_heads, c.model.head_dim = 16, 1, 2, 8
        c.model.d_inner, c.model.max_len = 32, 16
        c.schedule.name, c.schedule.warmup_steps = "constant", 0
        c.batch_size, c.eval_batch_size = 8, 1024  # 29 eval strips' windows, not 3,750
        c.num_train_steps = 4
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    return finish_config(c)
