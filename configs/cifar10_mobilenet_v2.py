"""MobileNetV2 on CIFAR-10 (Sandler et al., 2018: inverted residuals, linear bottlenecks),
with the 32x32 stem and the recipe of kuangliu/pytorch-cifar.

Run:    python -m scripts.train --config configs/cifar10_mobilenet_v2.py --workdir runs/cifar10_mobilenet_v2
Recipe: SGD momentum 0.9, lr 0.1 with cosine decay to 0 over 200 epochs, batch 128, weight
        decay 5e-4 (coupled L2; biases and batch-norm parameters exempt), pad-4 crop and
        horizontal flip. The net: width multiplier 1, `stem="cifar"` (stride 1 in the stem
        conv and in the first downsampling stage: total stride 8, so 32 -> 4 pixels before
        the 1x1 conv to 1280), ReLU6, dropout 0.2 before the classifier: 2.24M parameters.
        pytorch-cifar lists about 94% for this setup.
Result: not measured here (no CIFAR-10 offline; prepare it as in README: Data).
Variants (the argument, comma-separated):
  digits        the same net and recipe shape on the offline 8x8 digits (the CIFAR stem's
                total stride 8 takes 8x8 to 1x1 before global pooling): 120 steps of batch
                128 (11 epochs; its depthwise convs run at about 1 step/s on 2 CPU cores)
                with cosine decay, no augmentation.
  smoke         a few steps of batch 8 at width multiplier 0.25 (tests, under tfds mock data).
  digits,smoke  the digits variant for a few steps.
"""

from __future__ import annotations

import ml_collections

from configs.cifar10_vgg11_bn import sgd_cosine_cifar10_config
from jaxlab.config import finish_config, parse_variants

SMOKE_ARG = "smoke"
VARIANTS = ("", "digits", "smoke", "digits,smoke")  # the documented arguments
DIGITS_STEPS = 120


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config for the variants in `arg` ("", "digits", "smoke",
    "digits,smoke")."""
    variants = parse_variants(arg, ("digits", "smoke"))
    c = sgd_cosine_cifar10_config("mobilenet_v2")
    c.model.stem = "cifar"
    c.model.dropout = 0.2
    if "digits" in variants:
        c.dataset.name = "digits"
        c.dataset.augment = ""
        c.eval_batch_size = 120
        c.num_epochs, c.num_train_steps = -1, DIGITS_STEPS
        c.log_every_steps = 10
        c.eval_every_steps = c.checkpoint_every_steps = 40
    if "smoke" in variants:
        if "digits" not in variants:
            c.model.width_multiplier = 0.25
            c.batch_size, c.eval_batch_size = 8, 8
        c.num_epochs, c.num_train_steps = -1, 6
        c.log_every_steps = 2
        c.eval_every_steps = c.checkpoint_every_steps = 3
    return finish_config(c)
