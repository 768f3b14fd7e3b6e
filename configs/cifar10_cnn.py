"""The small conv net on CIFAR-10 (TFDS 'cifar10'; needs the prepared data, see README: Data).

Run:    python -m scripts.train --config configs/cifar10_cnn.py --workdir runs/cifar10_cnn
Result: not measured here (this machine cannot download CIFAR-10).
Smoke:  --config configs/cifar10_cnn.py:smoke (the tests run it under tfds.testing.mock_data).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

# The documented arguments (of the mnist, fashion_mnist and cifar100 configs too).
VARIANTS = ("", "smoke")


def small_cnn_config(
    dataset: str, augment: str, widths: tuple[int, ...], num_epochs: int, arg: str = ""
) -> ml_collections.ConfigDict:
    """The small conv net recipe shared by the mnist, fashion_mnist, cifar10 and cifar100
    configs (AdamW, warmup + cosine, clipping); `arg == 'smoke'` gives a tiny run."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = dataset
    c.dataset.augment = augment
    c.model.name = "small_cnn"
    c.model.widths = widths
    c.model.dropout = 0.0
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.weight_decay = 5e-4
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 200
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = num_epochs
    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.checkpoint_every_steps = 1000
    if "smoke" in variants:
        c.model.widths = (8, 16)
        c.schedule.warmup_steps = 2
        c.batch_size, c.eval_batch_size = 8, 8
        c.num_epochs, c.num_train_steps = -1, 6
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 3
    return finish_config(c)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    return small_cnn_config("cifar10", "flip_lr,pad_crop", (64, 128, 256), 30, arg)
