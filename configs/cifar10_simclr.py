"""SimCLR on CIFAR-10 with a ResNet-18 encoder, scored by a linear probe (needs an
accelerator and the CIFAR-10 TFDS data; not measured here).

Run:    python -m scripts.train --config configs/cifar10_simclr.py --workdir runs/cifar10_simclr
Smoke:  --config configs/cifar10_simclr.py:smoke (the tests run it under tfds.testing.mock_data).
Recipe: two views per image: random_resized_crop (area 0.08-1, aspect 3/4-4/3), horizontal
        flip, colour jitter (brightness, contrast, saturation 0.4, hue 0.1); SimCLR's
        random grayscale and (for ImageNet) blur are not among jaxlab's augment ops.
        Encoder resnet18 (jaxlab's ImageNet ResNet-18: 7x7/2 stem and max pool; the paper's
        CIFAR runs replace them by one 3x3/1 conv, which jaxlab's ResNet has no option for),
        512-wide representation; projection head 512 -> 2048 -> BN/ReLU -> 128; NT-Xent at
        temperature 0.5 (the paper's CIFAR-10 choice); batch 512; 500 epochs; LAMB (a
        layer-wise adaptive optimizer like the paper's LARS, which jaxlab's optimizers do
        not have) at 2e-3 with 10 warmup epochs and cosine decay, weight decay 1e-6.
        Evaluators: `linear_probe` and `knn` (k=200, cosine) on the frozen 512-wide h.
Target (published linear-evaluation numbers):
        - Chen et al. (2020), SimCLR, Table 6: ResNet-50 on ImageNet, 69.3% top-1 (the
          issue's reference number).
        - CIFAR-10, ResNet-18, 1000 epochs: 90.74% top-1 linear accuracy (solo-learn's
          results table, github.com/vturrisi/solo-learn README, checked 2026-12-03; BYOL
          92.58%, MoCo V2+ 91.88%, DINO 89.52% in the same table).
Result: not measured (no accelerator, no CIFAR-10 offline).
Variants:
  smoke   2 steps of a 4/8-wide small_cnn standing in for ResNet-18 (whose compilation
          alone exceeds the smoke budget) on batches of 8, for tests (mock data).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

SMOKE_ARG = "smoke"
VARIANTS = ("", "smoke")
CIFAR10_TRAIN_EXAMPLES = 50_000
CIFAR_VIEWS = "random_resized_crop:0.08,flip_lr,color_jitter:0.4:0.4:0.4:0.1"


def cifar_ssl_config(
    task: ml_collections.ConfigDict, variants: set[str], batch_size: int = 512, epochs: int = 500
) -> ml_collections.ConfigDict:
    """The CIFAR-10 recipe shared by the two-view methods (views, ResNet-18, LAMB,
    evaluators); `task` is the method's `config.task` section."""
    c = default_config()
    c.dataset.name = "cifar10"
    c.dataset.num_views = 2
    c.dataset.augment = CIFAR_VIEWS
    c.task = task
    c.model.name = "resnet18"
    c.optimizer.name = "lamb"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.weight_decay = 1e-6
    c.schedule.name = "cosine"
    steps_per_epoch = CIFAR10_TRAIN_EXAMPLES // batch_size
    c.schedule.warmup_steps = 10 * steps_per_epoch
    c.batch_size = batch_size
    c.eval_batch_size = 1000
    c.num_epochs = epochs
    c.log_every_steps = 100
    c.eval_every_steps = c.checkpoint_every_steps = 50 * steps_per_epoch
    c.best_metric = ""
    c.evaluators = ml_collections.ConfigDict(
        {
            "linear_probe": {"every_steps": 100 * steps_per_epoch, "steps": 2000},
            "knn": {"every_steps": 25 * steps_per_epoch, "k": 200, "metric": "cosine"},
        }
    )
    if "smoke" in variants:
        # A 4/8-wide small_cnn stands in for ResNet-18, whose compilation alone exceeds
        # the smoke budget: the smoke checks the views, the task and the evaluators.
        c.model = ml_collections.ConfigDict({"name": "small_cnn", "widths": (4, 8)})
        c.batch_size, c.eval_batch_size = 8, 8
        c.num_epochs, c.num_train_steps = -1, 2
        c.schedule.warmup_steps = 0
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators.linear_probe.update({"every_steps": 0, "steps": 10})
        c.evaluators.knn.update({"every_steps": 0, "k": 3})
    return c


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    task = ml_collections.ConfigDict(
        {
            "name": "simclr",
            "temperature": 0.5,
            "feature_dim": 512,
            "proj_hidden_dim": 2048,
            "proj_dim": 128,
            "proj_depth": 1,
        }
    )
    if "smoke" in variants:
        task.feature_dim, task.proj_hidden_dim, task.proj_dim = 8, 8, 4
    return finish_config(cifar_ssl_config(task, variants))
