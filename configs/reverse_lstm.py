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

from configs.reverse_lstm_attention import get_config as reverse_lstm_attention
from jaxlab.config import finish_config, parse_variants

VARIANTS = ("", "len16", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config: the attention config's without attention, at length 30
    unless `len16`; `arg` selects the variants (module docstring)."""
    variants = parse_variants(arg, VARIANTS[1:])
    c = reverse_lstm_attention("smoke" if "smoke" in variants else "")
    c.model.attention = "none"
    if "smoke" not in variants and "len16" not in variants:
        c.dataset.seq_len = c.dataset.min_len = 30
    return finish_config(c)
