"""Colorization (L -> ab regression) on CIFAR-10 (TFDS 'cifar10'; needs the prepared data,
see README: Data), evaluated by a linear probe and kNN on the frozen backbone's features of
the L channel.

Run:    python -m scripts.train --config configs/cifar10_colorization.py --workdir runs/cifar10_colorization
Smoke:  --config configs/cifar10_colorization.py:smoke (the tests run it under tfds.testing.mock_data).
Recipe: images in [0, 1] (dataset.normalize=False) converted to CIE Lab in the step; the
        backbone (ResNet-18, 512-d features) sees L, a 1024-wide MLP decodes the 32x32 ab
        map (scaled by 1/110), mean squared error; flips and crops as augmentation;
        AdamW 2e-3, cosine, batch 512, 200 epochs.
Target: a linear probe well above a random encoder's. Zhang et al. (2016) report no
        CIFAR-10 number; their ImageNet conv features give a linear probe of about 35%
        top-1 on ImageNet (conv5), against 48% for rotation (Gidaris et al.).
Result: not measured here (this machine cannot download CIFAR-10).
Variants (the argument):
  smoke   3 steps of a tiny small_cnn, for tests.
"""

from __future__ import annotations

import ml_collections

from configs.cifar10_byol import cifar10_ssl_config
from jaxlab.config import finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    task = ml_collections.ConfigDict(
        {"name": "colorization", "feature_dim": 512, "hidden_dim": 1024}
    )
    c = cifar10_ssl_config(task, variants, views=0)
    c.dataset.normalize = False
    c.dataset.augment = "flip_lr,pad_crop"
    c.num_epochs = 200
    if "smoke" in variants:
        c.num_epochs = -1
        c.task.feature_dim, c.task.hidden_dim = 8, 8
    return finish_config(c)
