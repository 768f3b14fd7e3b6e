"""Skip-gram with negative sampling on gensim's head500 corpus, gensim's recipe.

Run:    python -m scripts.train --config configs/head500_skipgram.py --workdir runs/head500_sg
Recipe: gensim's Word2Vec defaults with sg=1: 100-dimensional vectors, window 5 (dynamic:
        reduced uniformly per word), 5 negatives from unigram^0.75, subsampling sample=1e-3,
        min_count 5 (7,978 words); plain SGD on the touched rows, rate 0.025 decaying
        linearly to 1e-4 (gensim's alpha and min_alpha); 10 epochs (2,870 steps) of batch
        1024 windows (one window: a kept word and up to 10 context words, 6.0 on average;
        the epoch's windows shuffled); input vectors uniform(-0.5, 0.5)/100, output zero.
Result: WordSim-353 Spearman 0.6015 (seed 0) and 0.5949 (seed 1) against gensim's
        0.5583 and 0.5624 with the same settings (mean +0.038); analogies (3CosAdd)
        6.78% / 5.85% against gensim's 6.87% / 5.76%. Coverage: 96 of the 353 pairs (27.2%)
        and 1,077 of the 19,544 questions (5.5%) have all their words in this stemmed
        corpus's vocabulary. About 10 minutes on 2 shared CPU cores (4-7 steps/s; gensim
        takes 25-100 s). Measured with `python -m scripts.compare_gensim --models=skipgram,cbow
        --seeds=0,1` (which prints the table); gensim at 20 epochs reaches 0.75.
Variants (the argument):
  smoke   a few steps of batch 16 with 8-wide vectors (tests).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")
EPOCHS = 10
BATCH_SIZE = 1024


def word2vec_config(model_name: str, arg: str = "") -> ml_collections.ConfigDict:
    """The head500 recipe for `model_name` ('skipgram' or 'cbow'); `arg` 'smoke' shrinks it."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "head500"
    c.dataset.train_split = "train"
    c.dataset.eval_split = "train"  # a fixed sample of its windows (no held-out text)
    c.dataset.min_count = 5
    c.dataset.window = 5
    c.dataset.sample = 1e-3
    c.dataset.num_eval_windows = 4096
    c.dataset.shuffle_buffer = 1  # > 0: each epoch's windows in a random order
    c.model.name = model_name
    c.model.embed_dim = 100
    c.task.name = "word2vec"
    c.task.negatives = 5
    c.task.noise_exponent = 0.75
    c.task.max_exp = 6.0
    c.optimizer.name = "sgd"
    c.optimizer.learning_rate = 0.025  # gensim's alpha
    c.schedule.name = "linear"
    c.schedule.alpha = 1e-4 / 0.025  # down to gensim's min_alpha
    c.batch_size = BATCH_SIZE
    c.eval_batch_size = 1024
    c.num_epochs = EPOCHS
    c.log_every_steps = 100
    c.eval_every_steps = 1440  # about 5 epochs
    c.checkpoint_every_steps = 1440
    c.best_metric = "loss"
    c.best_mode = "min"
    c.evaluators = ml_collections.ConfigDict()
    c.evaluators.wordsim = ml_collections.ConfigDict({"every_steps": 1440, "path": ""})
    c.evaluators.analogies = ml_collections.ConfigDict(
        {"every_steps": 0, "path": "", "restrict_vocab": 30_000}
    )
    c.evaluators.neighbours = ml_collections.ConfigDict(
        {"every_steps": 0, "words": "war,music,king,physic,french,church,comput,film", "topn": 8}
    )
    if "smoke" in variants:
        c.model.embed_dim = 8
        c.dataset.num_eval_windows = 32
        c.batch_size = 16
        c.eval_batch_size = 16
        c.num_epochs = -1
        c.num_train_steps = 6
        c.log_every_steps = 2
        c.eval_every_steps = 3
        c.checkpoint_every_steps = 3
        c.evaluators.wordsim.every_steps = 3
    return finish_config(c)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the skip-gram experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    return word2vec_config("skipgram", arg)
