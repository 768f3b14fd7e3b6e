"""A small GPT character language model on Shakespeare's plays (shakespeare_char: first 90%
of the characters train, last 10% validation), mirroring nanoGPT's CPU shakespeare_char run.

Run:    python -m scripts.train --config configs/shakespeare_char_gpt.py \
            --workdir runs/shakespeare_char_gpt
        python -m scripts.sample --workdir runs/shakespeare_char_gpt --prompt "ROMEO:" \
            --temperature 0.8 --top_k 40
Recipe: nanoGPT's README command for a CPU (`--block_size=64 --batch_size=12 --n_layer=4
        --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0` on
        config/train_shakespeare_char.py, with train.py's defaults): gpt with 4 pre-LN layers,
        4 heads, width 128, context 64, no biases, tied embeddings; batches of 12 windows of
        64 characters (the task carries nothing between a GPT's windows); AdamW lr 1e-3, b2
        0.99, decoupled weight decay 0.1 on the matrices and embeddings, gradients clipped at
        global norm 1, 100 steps of linear warmup then cosine to 1e-4 at step 2000.
        Train windows are drawn at random offsets, as nanoGPT's get_batch does
        (dataset.random_windows). Differences: nanoGPT estimates the validation loss on 20
        random batches, jaxlab takes every window of the split. Generation (scripts/sample.py) re-prefills the latest 32
        characters whenever the 64-position cache is full. Speed: 3-4 steps/s on 2 CPU
        cores shared with other jobs (load ~8), about 10 minutes with the evaluations.
Target: validation loss <= 1.9 nats/char (nanoGPT reports 1.88 on tiny-shakespeare).
        References on the same split: count trigram 2.06, count 4-gram 1.75, `bzip2 -9` 1.69
        nats/char; the LSTM of configs/shakespeare_char_lstm.py.
Result: validation loss 1.894 nats/char (2.733 bits/char, perplexity 6.65) after 2000
        steps, 564 s wall on 2 CPU cores shared with other jobs (2026-12-03, the Run
        command above); 2.071 at step 1000.
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
    c.dataset.name = "shakespeare_char"
    c.dataset.seq_len = 64
    c.dataset.random_windows = True  # nanoGPT's get_batch: windows at random offsets
    c.task = ml_collections.ConfigDict({"name": "language_model"})  # no classification keys
    c.model.name = "gpt"
    c.model.num_layers = 4
    c.model.num_heads = 4
    c.model.d_model = 128
    c.model.block_size = 64
    c.model.dropout = 0.0
    c.model.bias = False
    c.model.tie_weights = True
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.99
    c.optimizer.weight_decay = 0.1
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 100
    c.schedule.alpha = 0.1
    c.batch_size = 12
    c.eval_batch_size = 256
    c.num_train_steps = 2000
    c.log_every_steps = 100
    c.eval_every_steps = 1000  # a pass over all 480k validation characters
    c.checkpoint_every_steps = 500
    c.best_metric = "loss"
    c.best_mode = "min"
    if "smoke" in variants:
        c.dataset.seq_len = c.model.block_size = 16
        c.model.num_layers, c.model.num_heads, c.model.d_model = 1, 2, 16
        c.schedule.name = "constant"
        c.schedule.warmup_steps = 0
        c.batch_size = 8
        c.eval_batch_size = 1024
        c.num_train_steps = 4
        c.dataset.random_windows = False
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    return finish_config(c)
