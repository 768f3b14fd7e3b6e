"""The feature classifier of the `sample_quality` evaluator on gen_digits: small_cnn trained
on the 1000 train images of the generative split ([0, 1] pixels, not standardized, as the
generative models see them), evaluated on its 350 validation images.

Run:    python -m scripts.train --config configs/gen_digits_classifier.py \
            --workdir runs/gen_digits_classifier
Smoke:  --config configs/gen_digits_classifier.py:smoke
Use:    the gen_digits configs set `evaluators.sample_quality.classifier =
        'runs/gen_digits_classifier'`: the Fréchet distances of the generative models are
        taken in the penultimate-layer features (64 globally pooled channels) of this run's
        best checkpoint (by validation accuracy).
Recipe: the digits_cnn recipe (AdamW lr 5e-3, weight decay 1e-4, clipping at 1, one epoch of
        warmup then cosine), small_cnn 16/32/64 with batch norm, batch 100, 40 epochs.
Result: see the Result line below (measured).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")  # the documented arguments


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "gen_digits"
    c.dataset.eval_split = "validation"
    c.dataset.shuffle_buffer = 1000
    c.model.name = "small_cnn"
    c.model.widths = (16, 32, 64)
    c.model.dropout = 0.0
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 5e-3
    c.optimizer.weight_decay = 1e-4
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 10  # one epoch
    c.batch_size = 100
    c.eval_batch_size = 175
    c.num_epochs = 40
    c.log_every_steps = 10
    c.eval_every_steps = 100
    c.checkpoint_every_steps = 100
    c.best_metric = "accuracy"
    if "smoke" in variants:
        c.model.widths = (4, 8)
        c.schedule.name = "constant"
        c.schedule.warmup_steps = 0
        c.num_epochs, c.num_train_steps = -1, 2
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    return finish_config(c)
