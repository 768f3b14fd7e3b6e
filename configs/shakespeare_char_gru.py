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

from configs.shakespeare_char_lstm import VARIANTS as VARIANTS  # the same documented arguments
from configs.shakespeare_char_lstm import get_config as shakespeare_char_lstm
from jaxlab.config import finish_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config: the LSTM config's with GRU cells; `arg == 'smoke'`
    gives a tiny run for tests."""
    c = shakespeare_char_lstm(arg)
    c.model.cell = "gru"
    return finish_config(c)
