"""CBOW with negative sampling on gensim's head500 corpus, gensim's recipe.

Run:    python -m scripts.train --config configs/head500_cbow.py --workdir runs/head500_cbow
Recipe: configs/head500_skipgram.py's (gensim's defaults) with sg=0, cbow_mean=1: the mean of
        the context words' input vectors predicts the center word; word2vec's update adds the
        whole gradient of that mean to every context word. Rate 0.025 as gensim (word2vec.c
        uses 0.05 for CBOW).
Result: WordSim-353 Spearman 0.3397 (seed 0) and 0.3481 (seed 1) against gensim's 0.2907
        and 0.2787 with the same settings (mean +0.059); analogies 2.60% / 3.99% against
        2.23% / 2.04% (same coverage as skip-gram: 27.2% of the pairs, 5.5% of the
        questions). 45-55 s on 2 shared CPU cores (about 85 steps/s: one set of negatives
        per window, not per pair). Measured with `python -m scripts.compare_gensim
        --models=skipgram,cbow --seeds=0,1`.
Variants (the argument):
  smoke   a few steps of batch 16 with 8-wide vectors (tests).
"""

from __future__ import annotations

import ml_collections

from configs.head500_skipgram import word2vec_config

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the CBOW experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    return word2vec_config("cbow", arg)
