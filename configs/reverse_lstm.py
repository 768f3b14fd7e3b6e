"""Reverse with an LSTM encoder-decoder WITHOUT attention (Sutskever et al. 2014), length 30.

Run:    python -m scripts.train --config configs/reverse_lstm.py --workdir runs/rev_lstm
Recipe: as configs/reverse_lstm_attention.py (embeddings 32, LSTM 128, Adam 3e-3, batch 128,
        2,000 steps) with `model.attention='none'`: the decoder sees the source only through
        the encoder's final state. Length 30 (10 symbols) by default.
Target: (issue 9) measurably worse than the attention model at length 30: compare with
        `--config configs/reverse_lstm_attention.py --config.dataset.seq_len=30
        --config.dataset.min_len=30` (both in the README table).
Result: at length 30, 0.0% exact (0/1000; token accuracy 60.8%, BLEU 19.3) after 1,000 steps
        (`--config.num_train_steps=1000 --config.eval_every_steps=500`), while the attention
        model (configs/reverse_lstm_attention.py with `--config.dataset.seq_len=30
        --config.dataset.min_len=30 --config.num_train_steps=500`) reached 99.3% exact
        (token accuracy 99.98%) after only 500 steps; 2 CPU cores shared with other jobs.
Variants (the argument):
  len16   length 16 (the attention config's length).
  smoke   a tiny model and 4 steps, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "len16", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg` selects the variants (module docstring)."""
    variants = parse_variants(arg, ("len16", "smoke"))
    c = default_config()
    c.dataset.name = "reverse"
    c.dataset.seq_len = 16 if "len16" in variants else 30
    c.dataset.min_len = c.dataset.seq_len
    c.dataset.num_symbols = 10
    c.model.name = "seq2seq_rnn"
    c.model.embed_dim = 32
    c.model.hidden = 128
    c.model.attention = "none"
    c.task = ml_collections.ConfigDict()
    c.task.name = "seq2seq"
    c.task.training = "teacher_forcing"
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 100
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_train_steps = 2000
    c.log_every_steps = 100
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 1000
    c.best_metric = "exact_match"
    c.best_mode = "max"
    if "smoke" in variants:
        c.dataset.seq_len = 6
        c.dataset.min_len = 3
        c.model.embed_dim = 8
        c.model.hidden = 16
        c.schedule.name = "constant"
        c.schedule.warmup_steps = 0
        c.batch_size = 8
        c.eval_batch_size = 250
        c.num_train_steps = 4
        c.log_every_steps = 2
        c.eval_every_steps = 4
        c.checkpoint_every_steps = 4
    return finish_config(c)
