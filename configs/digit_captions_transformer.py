"""Captions of two digit glyphs ("a two left of a seven") with a small transformer decoder
cross-attending to the CNN's 25 feature-map regions.

Run:    nice -n 5 python -m scripts.train --config configs/digit_captions_transformer.py --workdir runs/cap_tf
Smoke:  --config configs/digit_captions_transformer.py:smoke
Recipe: `caption_transformer`: the encoder of digit_captions_rnn, its regions projected to
        d_model 64 with learned positions and one pre-LN self-attention block; two pre-LN
        decoder blocks (4 heads, MLP 128: causal self-attention, cross-attention, MLP);
        the rest of digit_captions_rnn's recipe (teacher forcing, Adam 3e-3 with 100
        warm-up steps, batch 64; 1,200 steps (7.7 epochs), evals at 600 and 1,200; the
        `captions` evaluator).
Target: (issue 14) exact-caption accuracy and BLEU on the test split, greedy vs beam.
Result: on the 500 test captions after the 1,200 steps: greedy 77.6% exact captions (BLEU
        87.1), beam 4 78.4% (BLEU 87.5), sampling at temperature 1 70.6% (BLEU 82.6); token
        accuracy 95.9%, train token accuracy 99.2% (45.4% exact, BLEU 66.8 at step 600).
        9.3 minutes wall (first step at 162 s, 3.7 steps/s) on the 2 shared CPU cores under
        a load of 23-27, measured with the Run command.
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
    model = {"name": "caption_transformer", "widths": (16, 32), "features": 32}
    c = caption_config(
        variants,
        {
            **model,
            "d_model": 64,
            "num_heads": 4,
            "num_layers": 2,
            "encoder_layers": 1,
            "mlp_dim": 128,
            "dropout": 0.0,
        },
    )
    if "smoke" not in variants:  # it learns fast; 4 steps/s on the shared CPUs
        c.num_train_steps, c.eval_every_steps = 1200, 600
    else:
        c.model.d_model, c.model.num_heads, c.model.mlp_dim = 8, 2, 8
        c.model.num_layers = c.model.encoder_layers = 1
    return finish_config(c)
