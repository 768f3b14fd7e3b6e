"""ResNet-20 on CIFAR-10, the recipe of He et al. (2016, sec. 4.2); one of the four configs
of the degradation experiment (with cifar10_resnet56, cifar10_plain20, cifar10_plain56).

Run:    python -m scripts.train --config configs/cifar10_resnet20.py --workdir runs/cifar10_resnet20
Recipe: SGD with momentum 0.9, learning rate 0.1 divided by 10 at 32k and 48k iterations,
        64k iterations of batch 128, weight decay 1e-4 (coupled L2, biases and batch-norm
        scales exempt), 4-pixel pad + random 32x32 crop and horizontal flip; 3x3 stem, three
        stages of 16/32/64 filters, option-A (zero-padded, parameter-free) shortcuts, 0.27M
        parameters. He et al. report 8.75% test error (91.25% accuracy).
Result: not measured here (no CIFAR-10 offline; prepare it as in README: Data).
Variants (the argument, comma-separated):
  digits        the same net and recipe shape on the offline 8x8 digits (the net runs on 8x8
                inputs as is: 8 -> 4 -> 2 pixels, then global pooling); 320 steps of batch
                128 (29 epochs) with the rate divided by 10 at 160 and 240, no augmentation
                (a flip changes a digit, and a 4-pixel shift is half the image). About a
                minute on 2 CPU cores; what it reaches is in the README ("Vision
                experiments").
  digits,long   the digits variant three times longer: 960 steps, rate / 10 at 480 and 720
                (the 56-layer nets need it to converge; the README's degradation run on
                digits uses it for all four nets).
  smoke         a few steps of batch 8 with 8-wide stages (tests, under tfds mock data),
                one block per stage (depth 8) for all four nets: the smoke checks the
                recipe's plumbing, the zoo's tests check each depth (parameter counts).
  digits,smoke  the digits variant for a few steps, at depth 8 too.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import ConfigError, default_config, finish_config, parse_variants

SMOKE_ARG = "smoke"
# The documented arguments of this file and of the other three degradation configs.
VARIANTS = ("", "digits", "digits,long", "smoke", "digits,smoke")
CIFAR10_TRAIN_EXAMPLES = 50_000
DIGITS_STEPS = 320
DIGITS_LONG_STEPS = 960


def cifar_resnet_config(model_name: str, arg: str = "") -> ml_collections.ConfigDict:
    """He et al.'s CIFAR-10 recipe for the registered CIFAR net `model_name` (resnet20/56,
    plain20/56, ...) with the variants of this module's docstring."""
    variants = parse_variants(arg, ("digits", "long", "smoke"))
    if "long" in variants and "digits" not in variants:
        raise ConfigError("config variant 'long' lengthens the digits run: use 'digits,long'")
    c = default_config()
    c.dataset.name = "cifar10"
    c.dataset.augment = "flip_lr,pad_crop:4"
    c.model.name = model_name
    c.optimizer.name = "momentum"
    c.optimizer.momentum = 0.9
    c.optimizer.learning_rate = 0.1
    c.optimizer.weight_decay = 1e-4
    c.optimizer.weight_decay_type = "l2"
    c.schedule.name = "step"
    c.schedule.boundaries = (32_000, 48_000)
    c.schedule.factors = (0.1, 0.1)
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_train_steps = 64_000
    c.log_every_steps = 100
    c.eval_every_steps = 2_000
    c.checkpoint_every_steps = 2_000
    if "digits" in variants:
        c.dataset.name = "digits"
        c.dataset.augment = ""
        c.eval_batch_size = 120
        steps = DIGITS_LONG_STEPS if "long" in variants else DIGITS_STEPS
        c.num_train_steps = steps
        c.schedule.boundaries = (steps // 2, steps * 3 // 4)
        c.log_every_steps = 20
        c.eval_every_steps = c.checkpoint_every_steps = 80
    if "smoke" in variants:
        c.model.depth = 8  # the four nets' smokes then compile one program per shortcut
        if "digits" not in variants:
            c.model.width = 8
            c.batch_size, c.eval_batch_size = 8, 8
        c.num_train_steps = 6
        c.schedule.boundaries = (3, 5)
        c.log_every_steps = 2
        c.eval_every_steps = c.checkpoint_every_steps = 3
    return finish_config(c)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config for the variants in `arg` ("", "digits", "digits,long",
    "smoke", "digits,smoke")."""
    return cifar_resnet_config("resnet20", arg)
