"""VGG-11 with batch norm on CIFAR-10 (Simonyan & Zisserman, 2014; the CIFAR head and recipe
of kuangliu/pytorch-cifar, the usual reference for VGG on CIFAR).

Run:    python -m scripts.train --config configs/cifar10_vgg11_bn.py --workdir runs/cifar10_vgg11_bn
Recipe: SGD momentum 0.9, lr 0.1 with cosine decay to 0 over 200 epochs, batch 128, weight
        decay 5e-4 (coupled L2; biases and batch-norm parameters exempt, pytorch-cifar decays
        them too), pad-4 crop and horizontal flip. The net: the eight 3x3 convs of VGG-11,
        each followed by batch norm, five 2x2 max pools (32 -> 1 pixel), then global average
        pooling and one dense layer (`classifier="gap"`, no dropout) instead of the
        4096-4096 ImageNet classifier: 9.2M parameters. pytorch-cifar lists about 92.6% for
        VGG-16 with this recipe; VGG-11 is expected a little below.
Result: not measured here (no CIFAR-10 offline; prepare it as in README: Data).
Variants (the argument):
  smoke   a few steps of batch 8 with 8-wide convs (tests, under tfds mock data).
  No digits variant: the five 2x2 max pools need inputs of at least 32x32, and the 8x8
  digits would vanish after the third (jaxlab has no upscaling op); the smoke run under
  tfds mock data is this config's offline check.
"""

from __future__ import annotations

import ml_collections

from configs.cifar10_resnet20 import CIFAR10_TRAIN_EXAMPLES
from jaxlab.config import default_config, finish_config, parse_variants

SMOKE_ARG = "smoke"
VARIANTS = ("", "smoke")  # the documented arguments
NO_DIGITS = "vgg11_bn needs 32x32 inputs (five 2x2 max pools); it has no digits variant"


def sgd_cosine_cifar10_config(model: str) -> ml_collections.ConfigDict:
    """The SGD + cosine CIFAR-10 recipe shared with cifar10_mobilenet_v2: momentum 0.9, lr
    0.1, L2 5e-4, 200 epochs of batch 128, pad-4 crop and flip."""
    c = default_config()
    c.dataset.name = "cifar10"
    c.dataset.augment = "flip_lr,pad_crop:4"
    c.model.name = model
    c.optimizer.name = "momentum"
    c.optimizer.momentum = 0.9
    c.optimizer.learning_rate = 0.1
    c.optimizer.weight_decay = 5e-4
    c.optimizer.weight_decay_type = "l2"
    c.schedule.name = "cosine"
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = 200
    c.log_every_steps = 100
    c.eval_every_steps = c.checkpoint_every_steps = CIFAR10_TRAIN_EXAMPLES // 128 * 5
    return c


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",), unavailable={"digits": NO_DIGITS})
    c = sgd_cosine_cifar10_config("vgg11_bn")
    c.model.classifier = "gap"
    c.model.dropout = 0.0
    if "smoke" in variants:
        c.model.width = 8
        c.batch_size, c.eval_batch_size = 8, 8
        c.num_epochs, c.num_train_steps = -1, 6
        c.log_every_steps = 2
        c.eval_every_steps = c.checkpoint_every_steps = 3
    return finish_config(c)
