"""Captions of two digit glyphs ("a two left of a seven") with show, attend and tell: soft
attention over the CNN's 5x5 feature map at every step of an LSTM decoder.

Run:    nice -n 5 python -m scripts.train --config configs/digit_captions_attention.py --workdir runs/cap_att
Smoke:  --config configs/digit_captions_attention.py:smoke
Recipe: `caption_attention`: the encoder of digit_captions_rnn (25 regions of 32
        features), h_0 and c_0 from their mean, additive attention of width 64 with the
        sigmoid gate, LSTM of 64, deep output; the rest of digit_captions_rnn's recipe
        (teacher forcing, Adam 3e-3, batch 64; 2,000 steps here; the `captions` evaluator, which
        also writes the attention maps of the first 4 test images).
Target: (issue 14) exact-caption accuracy and BLEU on the test split, greedy vs beam.
Result: on the 500 test captions after the 2,000 steps: greedy 65.2% exact captions (BLEU
        78.0), beam 4 66.0% (BLEU 78.7), sampling at temperature 1 49.8% (BLEU 67.7); token
        accuracy 92.9% (23.6% exact, BLEU 46.7 at step 1,000). 6.4 minutes wall (first
        step at 148 s, 10 steps/s) on the 2 shared CPU cores under a load of about 23,
        measured with the Run command. (An earlier run of 3,000 steps on 4,000 train
        captions, without CoordConv and the LayerNorm: 68.0% greedy, 68.8% beam.)
Variants (the argument):
  smoke   a tiny model and 4 steps, for tests.
"""

from __future__ import annotations

import ml_collections

from configs.digit_captions_rnn import VARIANTS as VARIANTS  # the same documented arguments
from configs.digit_captions_rnn import caption_config
from jaxlab.config import finish_config, parse_variants


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg` selects the variants (module docstring)."""
    variants = parse_variants(arg, ("smoke",))
    model = {"name": "caption_attention", "widths": (16, 32), "features": 32, "embed_dim": 32}
    c = caption_config(variants, {**model, "hidden": 64, "attention_dim": 64})
    if "smoke" not in variants:  # 2,000 steps fit 10 minutes on the shared CPUs
        c.num_train_steps = 2000
    else:
        c.model.embed_dim, c.model.hidden, c.model.attention_dim = 4, 8, 4
        c.evaluators.captions = ml_collections.ConfigDict(
            {"beam_size": 2, "num_examples": 2, "every_steps": 0}
        )
    return finish_config(c)
