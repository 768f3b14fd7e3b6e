"""Reverse a sequence (length 16, 10 symbols) with an LSTM encoder-decoder and Luong attention.

Run:    python -m scripts.train --config configs/reverse_lstm_attention.py --workdir runs/rev_att
Recipe: `seq2seq_rnn`: embeddings 32, one LSTM layer of 128 in the encoder and the decoder,
        Luong attention with the 'general' score and input feeding; teacher forcing, Adam
        (lr 3e-3, clipped at global norm 1), batch 128, 2,000 steps (about 5 epochs of the
        50,000 train examples) with cosine decay; greedy decoding at eval.
Target: (issue 9) >= 99.5% exact sequences on the 1,000 test sequences (disjoint from train).
Result: 100.0% exact (1000/1000 test sequences, BLEU 100) at the evals of steps 500, 1000
        and 1500, and at step 1759 where a 15-minute limit stopped the run (2 CPU cores
        shared with other jobs, load ~10: 2-4 steps/s), measured with the Run command.
Variants (the argument):
  smoke   a tiny model and 4 steps, for tests.
  bahdanau  Bahdanau's additive attention instead of Luong's.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "bahdanau", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg` selects the variants (module docstring)."""
    variants = parse_variants(arg, ("bahdanau", "smoke"))
    c = default_config()
    c.dataset.name = "reverse"
    c.dataset.seq_len = 16
    c.dataset.min_len = 16
    c.dataset.num_symbols = 10
    c.model.name = "seq2seq_rnn"
    c.model.embed_dim = 32
    c.model.hidden = 128
    c.model.cell = "lstm"
    c.model.attention = "bahdanau" if "bahdanau" in variants else "luong"
    c.model.score = "general"
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
