"""CBOW with negative sampling on gensim's head500 corpus, gensim's recipe.

Run:    python -m scripts.train --config configs/head500_cbow.py --workdir runs/head500_cbow
Recipe: configs/head500_skipgram.py's (gensim's defaults) with sg=0, cbow_mean=1: the mean of
        the context words' input vectors predicts the center word; word2vec's update adds the
        whole gradient of that mean to every context word. Rate 0.025 as gensim (word2vec.c
        uses 0.05 for CBOW).
Result: RESULT
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
