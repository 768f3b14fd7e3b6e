"""A two-layer GRU character language model on Shakespeare's plays (shakespeare_char: first
90% of the characters train, last 10% validation); the LSTM config's recipe with GRU cells.

Run:    python -m scripts.train --config configs/shakespeare_char_gru.py \
            --workdir runs/shakespeare_char_gru
        python -m scripts.sample --workdir runs/shakespeare_char_gru --prompt "ROMEO:"
Recipe: rnn_lm (GRU, embedding 128, 2 layers of 256, no dropout), windows of 128
        characters over 32 strips, truncated BPTT (task language_model); Adam lr 2e-3 (b2
        0.99), gradients clipped at global norm 1, 100 steps of warmup then cosine to 2e-4;
        1000 steps (4.1M characters, about one epoch). A GRU layer has 3/4 of an LSTM
        layer's parameters and time (the LSTM config runs 0.8 steps/s on 2 shared CPU
        cores).
Target: validation loss near the LSTM's (<= 2.0 nats/char). References on the same split:
        count trigram 2.06, count 4-gram 1.75, `bzip2 -9` 1.69 nats/char; nanoGPT's small
        GPT 1.88 (configs/shakespeare_char_gpt.py).
Result: validation loss 1.599 nats/char (2.306 bits/char, perplexity 4.95) after 1000
        steps, 958 s wall on 2 CPU cores shared with other jobs (2026-12-03, the Run
        command above).
Variants (the argument):
  smoke   4 steps of a one-layer 16-wide GRU on 16-character windows, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "shakespeare_char"
    c.dataset.seq_len = 128
    c.task = ml_collections.ConfigDict({"name": "language_model"})  # no classification keys
    c.model.name = "rnn_lm"
    c.model.cell = "gru"
    c.model.embed_dim = 128
    c.model.hidden_size = 256
    c.model.num_layers = 2
    c.model.dropout = 0.0
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.b2 = 0.99
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 100
    c.schedule.alpha = 0.1
    c.batch_size = 32
    c.eval_batch_size = 64
    c.num_train_steps = 1000
    c.log_every_steps = 50
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 250
    c.best_metric = "loss"
    c.best_mode = "min"
    if "smoke" in variants:
        c.dataset.seq_len = 16
        c.model.embed_dim = c.model.hidden_size = 16
        c.model.num_layers = 1
        c.schedule.name = "constant"
        c.schedule.warmup_steps = 0
        c.batch_size = 8
        c.eval_batch_size = 1024
        c.num_train_steps = 4
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    return finish_config(c)
