"""Gated convolutional language model (Dauphin et al. 2017) on the Shakespeare characters.

Run:    python -m scripts.train --config configs/shakespeare_char_conv_lm.py --workdir runs/shakespeare_char_conv_lm
Recipe: task language_model (next-character cross entropy), model conv_lm: embeddings of
        128, 4 residual blocks of 2 causal GLU convolutions (width 128, kernel 4: a
        receptive field of 8 * 3 + 1 = 25 characters), dropout 0.1; windows of 64
        characters, batch 64 (the model carries nothing across windows); AdamW (lr 2e-3,
        weight decay 0.01), gradient clipping at norm 1 (GCNN used clipping at 0.1 with
        Nesterov momentum), 200 warmup steps then cosine decay over 5,000 steps.
Result: not measured yet; compare with the references on the same split: count trigram
        2.06, count 4-gram 1.75, `bzip2 -9` 1.69 nats/char.
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
    c.task.name = "language_model"
    c.model.name = "conv_lm"
    c.model.embed_dim, c.model.width, c.model.kernel_size = 128, 128, 4
    c.model.num_blocks, c.model.layers_per_block, c.model.dropout = 4, 2, 0.1
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 2e-3
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
        c.model.embed_dim, c.model.width, c.model.num_blocks = 16, 16, 1
        c.schedule.name, c.schedule.warmup_steps = "constant", 0
        c.batch_size, c.eval_batch_size = 8, 1024  # 29 eval strips' windows, not 3,750
        c.num_train_steps = 4
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    return finish_config(c)
