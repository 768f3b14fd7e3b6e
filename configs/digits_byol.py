"""BYOL on jaxlab's offline 8x8 digits (1437 train / 360 test), evaluated by a linear probe
and kNN on the frozen backbone's features.

Run:    nice -n 5 python -m scripts.train --config configs/digits_byol.py --workdir runs/digits_byol
Smoke:  --config configs/digits_byol.py:smoke
Recipe: small_cnn backbone (widths 32, 64, one conv each; 128-d features), BYOL projector and
        predictor (256 hidden, 64 out, batch norm), two views per example (pad_crop:1,
        random_resized_crop:0.5, color_jitter:0.4:0.4), target momentum 0.99, Adam lr 2e-3
        with a cosine decay and weight decay 1e-4, batch 256, 800 steps.
Target: linear probe >= 0.95 on the test split, clearly above the same probe on the
        randomly initialized encoder (`:random`); logistic regression on raw pixels: 0.967.
Result: linear probe 0.9722 on the 360 test digits (kNN k=20 cosine: 0.9556) after 800
        steps; at step 400: 0.9611 (kNN 0.9278). It beats logistic regression on raw
        pixels (0.967) by 0.5 points (2 of 360 digits), and the random encoder
        (`:random`: probe 0.9083, kNN 0.9083; 376 s wall) by 6.4 points. About 18 min wall for the Run
        command on 2 CPU cores shared with 8 other jobs (load 15-25; 7 min of it compiling
        before the first step), 2026-12-03.
Variants (the argument):
  random  the same evaluation of the encoder at initialization: 50 steps with the backbone
          frozen (`optimizer.frozen`: its parameters stay at init, its batch-norm
          statistics settle on the data; only the heads train).
  smoke   3 steps of a tiny network, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "random", "smoke")


def digits_two_view_config(
    task: ml_collections.ConfigDict, variants: set[str] | frozenset[str]
) -> ml_collections.ConfigDict:
    """The two-view digits recipe (module docstring) around the `task` section, before
    `finish_config` (shared with digits_dino)."""
    c = default_config()
    c.dataset.name = "digits"
    c.dataset.num_views = 2
    c.dataset.augment = "pad_crop:1,random_resized_crop:0.5,color_jitter:0.4:0.4"
    c.dataset.shuffle_buffer = 1437
    c.task = task
    c.model.name = "small_cnn"
    c.model.widths = (32, 64)
    c.model.convs_per_block = 1
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.name = "cosine"
    c.batch_size = 256
    c.eval_batch_size = 360
    c.num_train_steps = 800
    c.log_every_steps = 100
    c.eval_every_steps = 400
    c.checkpoint_every_steps = 800
    c.best_metric = ""
    c.evaluators = ml_collections.ConfigDict(
        {"linear_probe": {"every_steps": 400}, "knn": {"k": 20, "every_steps": 400}}
    )
    if "random" in variants:  # the encoder at init; its batch statistics see the data
        c.optimizer.frozen = "backbone/.*"
        c.num_train_steps = c.eval_every_steps = c.checkpoint_every_steps = 50
    if "smoke" in variants:
        c.model.widths = (4,)
        c.batch_size, c.eval_batch_size = 8, 120
        c.num_train_steps = 3
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 3
        c.evaluators = ml_collections.ConfigDict({"linear_probe": {"steps": 20}, "knn": {"k": 3}})
    return c


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config (see the module docstring for the variants)."""
    variants = parse_variants(arg, ("random", "smoke"))
    task = ml_collections.ConfigDict(
        {
            "name": "byol",
            "feature_dim": 128,
            "projection_dim": 64,
            "hidden_dim": 256,
            "head_norm": "batch",
            "momentum": 0.99,
            "momentum_schedule": "constant",
        }
    )
    c = digits_two_view_config(task, variants)
    if "smoke" in variants:
        c.task.feature_dim, c.task.projection_dim, c.task.hidden_dim = 8, 4, 8
    return finish_config(c)
