"""Sort 10 numbers with a pointer network (Vinyals et al. 2015) on `sort_numbers`.

Run:    python -m scripts.train --config configs/sort_pointer.py --workdir runs/sort_pointer
Recipe: `pointer_net` (LSTM 128, content-based attention over the 10 input positions as the
        output distribution), task `pointer`, teacher forcing; Adam 1e-3 clipped at norm 1,
        batch 128, 10,000 steps with cosine decay; greedy decoding at eval. Inputs are
        uniform in [0, 1) (100,000 train and 1,000 test sequences of 10).
Target: (issue 9) >= 90% exact sorted sequences on the test set.
Result: 87.1% exact sorted sequences (pointer accuracy 98.3%) after 10,000 steps: 55.0%,
        64.0%, 78.1%, 87.2% and 87.1% at steps 2,000 to 10,000, 1,060 s wall on 2 CPU cores
        shared with other jobs (2026-12-03, the Run command). Below the 90% target: the
        curve flattens as the cosine schedule ends; a longer or wider run is still to try.
Variants (the argument):
  smoke   a tiny model and 4 steps, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "sort_numbers"
    c.dataset.seq_len = 10
    c.model.name = "pointer_net"
    c.model.hidden = 128
    c.task = ml_collections.ConfigDict()
    c.task.name = "pointer"
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 200
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_train_steps = 10_000
    c.log_every_steps = 200
    c.eval_every_steps = 2000
    c.checkpoint_every_steps = 2000
    c.best_metric = "exact_match"
    c.best_mode = "max"
    if "smoke" in variants:
        c.dataset.seq_len = 5
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
