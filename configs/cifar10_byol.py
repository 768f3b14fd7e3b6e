"""BYOL on CIFAR-10 (TFDS 'cifar10'; needs the prepared data, see README: Data), evaluated
by a linear probe and kNN on the frozen ResNet-18 features.

Run:    python -m scripts.train --config configs/cifar10_byol.py --workdir runs/cifar10_byol
Smoke:  --config configs/cifar10_byol.py:smoke (the tests run it under tfds.testing.mock_data).
Recipe: BYOL's augmentations as jaxlab has them (random_resized_crop:0.08, flip_lr,
        color_jitter:0.4:0.4:0.2:0.1; no blur or solarization ops), ResNet-18 (512-d
        features), projector and predictor 4096 -> 256 with batch norm, target momentum
        0.99 rising to 1 on BYOL's cosine schedule, LARS-free AdamW 2e-3 with warmup and
        cosine decay, batch 512, 1000 epochs (an accelerator's job).
Target: published linear-probe accuracy on CIFAR-10 of about 92.6% (solo-learn's BYOL
        ResNet-18, 1000 epochs, CIFAR stem); BYOL's paper reports 91.3% for CIFAR-10
        linear evaluation of its ImageNet ResNet-50. jaxlab's resnet18 keeps the ImageNet
        stem (7x7 conv and max pool: 8x8 maps after the stem on 32x32 images), so expect
        a few points less.
Result: not measured here (this machine cannot download CIFAR-10).
Variants (the argument):
  smoke   3 steps of a tiny small_cnn, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")
AUGMENT = "random_resized_crop:0.08,flip_lr,color_jitter:0.4:0.4:0.2:0.1"


def cifar10_ssl_config(
    task: ml_collections.ConfigDict, variants: set[str] | frozenset[str], *, views: int = 2
) -> ml_collections.ConfigDict:
    """The CIFAR-10 self-supervised recipe (module docstring) around the `task` section,
    before `finish_config` (shared with cifar10_dino and cifar10_colorization)."""
    c = default_config()
    c.dataset.name = "cifar10"
    c.dataset.num_views = views
    c.dataset.augment = AUGMENT if views else ""
    c.task = task
    c.model.name = "resnet18"
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.weight_decay = 1e-6
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 1000
    c.batch_size = 512
    c.eval_batch_size = 500
    c.num_epochs = 1000
    c.log_every_steps = 100
    c.eval_every_steps = 10_000
    c.checkpoint_every_steps = 5000
    c.best_metric = ""
    c.evaluators = ml_collections.ConfigDict(
        {"linear_probe": {"every_steps": 20_000}, "knn": {"k": 200, "every_steps": 10_000}}
    )
    if "smoke" in variants:
        c.model = ml_collections.ConfigDict({"name": "small_cnn", "widths": (4,)})
        c.schedule.warmup_steps = 1
        c.batch_size, c.eval_batch_size = 8, 8
        c.num_epochs, c.num_train_steps = -1, 3
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 3
        c.evaluators = ml_collections.ConfigDict({"linear_probe": {"steps": 10}, "knn": {"k": 3}})
    return c


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    task = ml_collections.ConfigDict(
        {
            "name": "byol",
            "feature_dim": 512,
            "projection_dim": 256,
            "hidden_dim": 4096,
            "head_norm": "batch",
            "momentum": 0.99,
            "momentum_schedule": "cosine",
        }
    )
    c = cifar10_ssl_config(task, variants)
    if "smoke" in variants:
        c.task.feature_dim, c.task.projection_dim, c.task.hidden_dim = 8, 4, 8
    return finish_config(c)
