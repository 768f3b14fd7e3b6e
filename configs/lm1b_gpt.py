"""A small GPT subword language model on TFDS's One Billion Word benchmark (`lm1b`), the
sentences of a split joined by newlines into one stream, task language_model.

Run:    python -m scripts.train --config configs/lm1b_gpt.py --workdir runs/lm1b_gpt
        (needs `tfds build lm1b` in the TFDS data dir: nothing downloads here)
Smoke:  --config configs/lm1b_gpt.py:smoke (the tests run it on TFDS mock data)
Recipe: the first 10% of the 30M training sentences (`train[:10%]`: the source reads a
        split into memory) with a 16k BPE vocabulary learned from it; gpt with 6 pre-LN
        layers, 8 heads, width 512, context 128, dropout 0.1, tied embeddings; windows at
        random offsets, batch 64; AdamW 6e-4 (b2 0.95, weight decay 0.1), 1000 warmup steps
        and cosine to 6e-5 over 100k steps; the test split (306k sentences) for validation.
Target: none of the published lm1b numbers is for this size or vocabulary: Transformer-XL
        Large reaches test perplexity 21.8 per word (Dai et al. 2019, 0.8B parameters,
        word-level vocabulary of 793k). This config reports per-subword perplexity, which is
        not comparable with per-word numbers. Not measured here.
Variants (the argument):
  smoke   4 steps of a one-layer 16-wide GPT on 16-character windows, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "lm1b"
    c.dataset.train_split = "train[:10%]"
    c.dataset.eval_split = "test"
    c.dataset.tokenizer = "bpe"
    c.dataset.vocab_size = 16_000
    c.dataset.seq_len = 128
    c.dataset.random_windows = True
    c.task = ml_collections.ConfigDict({"name": "language_model"})
    c.model.name = "gpt"
    c.model.num_layers = 6
    c.model.num_heads = 8
    c.model.d_model = 512
    c.model.block_size = 128
    c.model.dropout = 0.1
    c.model.tie_weights = True
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 6e-4
    c.optimizer.b2 = 0.95
    c.optimizer.weight_decay = 0.1
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 1000
    c.schedule.alpha = 0.1
    c.batch_size = 64
    c.eval_batch_size = 256
    c.num_train_steps = 100_000
    c.log_every_steps = 200
    c.eval_every_steps = 10_000
    c.checkpoint_every_steps = 5000
    c.best_metric = "loss"
    c.best_mode = "min"
    if "smoke" in variants:
        c.dataset.train_split = "train"
        c.dataset.tokenizer, c.dataset.vocab_size = "char", 0
        c.dataset.seq_len = c.model.block_size = 16
        c.dataset.random_windows = False
        c.model.num_layers, c.model.num_heads, c.model.d_model = 1, 2, 16
        c.model.dropout = 0.0
        c.schedule.name = "constant"
        c.schedule.warmup_steps = 0
        c.batch_size, c.eval_batch_size = 8, 8
        c.num_train_steps = 4
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    return finish_config(c)
