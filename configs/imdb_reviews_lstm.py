"""A bidirectional LSTM sentiment classifier on TFDS's `imdb_reviews` (25k train / 25k test
movie reviews, 2 classes) over byte-pair subwords, task sequence_classification.

Run:    python -m scripts.train --config configs/imdb_reviews_lstm.py \
            --workdir runs/imdb_reviews_lstm
        (needs `tfds build imdb_reviews` in the TFDS data dir: nothing downloads here)
Smoke:  --config configs/imdb_reviews_lstm.py:smoke (the tests run it on TFDS mock data)
Recipe: an 8,000-id BPE vocabulary learned from the train reviews; each review's first 400
        subwords (PAD=0 masked: padded steps change neither output nor state); rnn_classifier
        with an embedding of 128, one bidirectional LSTM layer of 256 (concat), mean-pooled
        over the real steps, dropout 0.3; Adam 1e-3 with warmup and cosine, gradients
        clipped at norm 1; batch 64, 8 epochs.
Target: test accuracy about 86.5%, the randomly initialized LSTM of Dai & Le (2015,
        "Semi-supervised Sequence Learning", 13.50% test error on IMDB); Maas et al.
        (2011) report 88.9% with their word vectors. Not measured here (the dataset is not
        prepared on this machine).
Variants (the argument, combinable with ','):
  elmo    ELMo's downstream use of a biLSTM stack: two bidirectional layers, pooled by a
          learned scalar mix of both layers' outputs (`pooling='scalar_mix'`: softmax
          weights s_j and a scale gamma, Peters et al. 2018) instead of the top layer only.
  smoke   4 steps of a 16-wide LSTM over 32 character tokens, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "elmo", "smoke", "elmo,smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg` selects the variants (module docstring)."""
    variants = parse_variants(arg, ("elmo", "smoke"))
    c = default_config()
    c.dataset.name = "imdb_reviews"
    c.dataset.tokenizer = "bpe"
    c.dataset.vocab_size = 8000
    c.dataset.seq_len = 400
    c.task.name = "sequence_classification"
    c.task.input_key = ""  # the 'inputs' tokens
    c.task.top_k = 0
    c.model.name = "rnn_classifier"
    c.model.cell = "lstm"
    c.model.embed_dim = 128
    c.model.hidden_size = 256
    c.model.num_layers = 1
    c.model.bidirectional = True
    c.model.pooling = "mean"
    c.model.dropout = 0.3
    if "elmo" in variants:
        c.model.num_layers = 2
        c.model.pooling = "scalar_mix"
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 200
    c.batch_size = 64
    c.eval_batch_size = 250
    c.num_epochs = 8
    c.log_every_steps = 50
    c.eval_every_steps = 1000
    c.checkpoint_every_steps = 1000
    if "smoke" in variants:
        c.dataset.tokenizer = "char"
        c.dataset.vocab_size = 0
        c.dataset.seq_len = 32
        c.model.embed_dim = c.model.hidden_size = 16
        c.schedule.name = "constant"
        c.schedule.warmup_steps = 0
        c.batch_size, c.eval_batch_size = 8, 24
        c.num_epochs, c.num_train_steps = -1, 4
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    return finish_config(c)
