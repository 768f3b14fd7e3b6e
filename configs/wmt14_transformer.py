"""The Transformer (base) of "Attention Is All You Need" on TFDS's WMT'14 English-German,
task seq2seq, one byte-pair vocabulary shared by both languages.

Run:    python -m scripts.train --config configs/wmt14_transformer.py \
            --workdir runs/wmt14_transformer
        (needs `tfds build wmt14_translate/de-en` in the TFDS data dir and the memory to
        hold the 4.5M training pairs: nothing downloads here)
Smoke:  --config configs/wmt14_transformer.py:smoke (the tests run it on TFDS mock data)
Recipe: Vaswani et al. (2017), base model: post-LN encoder-decoder, 6 + 6 layers, width
        512, 8 heads, feed-forward 2048, dropout 0.1, sinusoidal positions, shared
        embeddings; Adam (b1 0.9, b2 0.98, eps 1e-9) at d_model^-0.5 * warmup^-0.5 = 7e-4
        peak with 4000 warmup steps then inverse square root; 100k steps. Differences: the
        paper batches about 25k source and 25k target tokens per step and uses label
        smoothing 0.1; here batches are 128 sentence pairs cut to 64 subwords, no label
        smoothing (the seq2seq task has none), and a 32k BPE vocabulary learned by jaxlab's
        tokenizer from the training text (the paper: 37k shared BPE). Beam search of 4 with
        length penalty 0.6 at the end (evaluators.decode), BLEU by sacrebleu.
Target: BLEU 27.3 on newstest2014 English->German (the paper's base model, 100k steps on
        8 P100 GPUs). Not measured here.
Variants (the argument):
  smoke   4 steps of a one-layer 16-wide transformer over 8 characters, no beam search,
          for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "wmt14"
    c.dataset.source_language = "en"
    c.dataset.target_language = "de"
    c.dataset.tokenizer = "bpe"
    c.dataset.vocab_size = 32_000
    c.dataset.seq_len = 64
    c.dataset.train_split = "train"
    c.dataset.eval_split = "test"  # newstest2014
    c.model.name = "transformer"
    c.model.d_model = 512
    c.model.num_heads = 8
    c.model.num_layers = 6
    c.model.mlp_dim = 2048
    c.model.dropout = 0.1
    c.model.norm_first = False
    c.model.positions = "sinusoidal"
    c.task = ml_collections.ConfigDict({"name": "seq2seq", "training": "teacher_forcing"})
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 7e-4
    c.optimizer.b1, c.optimizer.b2, c.optimizer.eps = 0.9, 0.98, 1e-9
    c.schedule.name = "inverse_sqrt"
    c.schedule.warmup_steps = 4000
    c.schedule.timescale = 0  # tau = warmup: lr * sqrt(4000 / step) after the warmup
    c.batch_size = 128
    c.eval_batch_size = 256
    c.num_train_steps = 100_000
    c.log_every_steps = 200
    c.eval_every_steps = 10_000
    c.checkpoint_every_steps = 5000
    c.best_metric = "loss"
    c.best_mode = "min"
    c.evaluators = ml_collections.ConfigDict(
        {"decode": {"beam_size": 4, "alpha": 0.6, "num_examples": 4, "every_steps": 0}}
    )
    if "smoke" in variants:
        c.dataset.tokenizer, c.dataset.vocab_size, c.dataset.seq_len = "char", 0, 8
        c.model.d_model, c.model.num_heads, c.model.num_layers, c.model.mlp_dim = 16, 2, 1, 32
        c.model.dropout = 0.0
        c.schedule.warmup_steps = 2
        c.batch_size, c.eval_batch_size = 8, 24
        c.num_train_steps = 4
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators = ml_collections.ConfigDict()  # beam search: addition's smoke runs it
    return finish_config(c)
