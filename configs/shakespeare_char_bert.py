"""BERT-style masked language model on the Shakespeare character corpus.

Run:    python -m scripts.train --config configs/shakespeare_char_bert.py --workdir runs/shakespeare_char_bert
Recipe: task masked_lm (per window, 15% of the characters chosen; of those 80% [MASK], 10% a
        random character, 10% kept; cross entropy on the chosen ones), model bert: 4 post-LN
        blocks, width 128, 4 heads, GELU MLP 512, learned positions, dropout 0.1, MLM output
        tied to the input embeddings; windows of 64 characters, batch 64; AdamW (lr 1e-3,
        b2 0.98, weight decay 0.01), gradient clipping at norm 1, 200 warmup steps then
        cosine decay over 5,000 steps.
        Fine-tuning: `bert_classifier` with the same sizes and
        `--config.init_from=runs/shakespeare_char_bert` loads `params/encoder/**`; its
        `head/**` (pooler and output) is created afresh (the default init_head 'head').
Result: not measured yet (masked-character nats are not comparable to the next-character
        references of the LM configs: the model sees both sides of each masked character).
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
    c.task.name = "masked_lm"
    c.task.mask_rate = 0.15
    c.task.mask_token_frac = 0.8
    c.task.random_token_frac = 0.1
    c.task.special_ids = ()
    c.model.name = "bert"
    c.model.hidden_size, c.model.depth, c.model.num_heads = 128, 4, 4
    c.model.mlp_dim, c.model.max_len, c.model.dropout = 512, 128, 0.1
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
        c.model.hidden_size, c.model.depth, c.model.num_heads = 16, 1, 2
        c.model.mlp_dim, c.model.max_len = 32, 17
        c.schedule.name, c.schedule.warmup_steps = "constant", 0
        c.batch_size, c.eval_batch_size = 8, 1024  # 29 eval strips' windows, not 3,750
        c.num_train_steps = 4
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    return finish_config(c)
