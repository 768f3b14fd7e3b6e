"""DCGAN on MNIST (TFDS 'mnist', images in [0, 1]; needs the prepared data, see README: Data).

Run:    python -m scripts.train --config configs/mnist_dcgan.py --workdir runs/mnist_dcgan
Smoke:  --config configs/mnist_dcgan.py:smoke (the tests run it under tfds.testing.mock_data).
Recipe: the recipe of configs/cifar10_dcgan.py at 28x28x1: generator z (100) -> 7x7x256 ->
        14x14x128 -> 28x28x1, discriminator 28x28x1 -> 14x14x64 -> 7x7x128 -> logit; Adam
        lr 2e-4, b1 0.5; batch 128, 25 epochs (11,725 steps).
Target: Radford et al. (2016) show MNIST samples without a number; Lucic et al. (2018, "Are
        GANs Created Equal?") report FID 6.8 +- 0.5 for the non-saturating GAN on MNIST
        (Inception-network features, their InfoGAN-like architecture, best of a large
        hyperparameter search). Not measured here (no MNIST download on this machine).
Result: not measured.
Variants (the argument):
  smoke   2 steps of 4/8-wide networks on batches of 8, 4 samples (tests, under mock data).
"""

from __future__ import annotations

import ml_collections

from configs.cifar10_dcgan import VARIANTS as VARIANTS  # the same documented arguments
from configs.cifar10_dcgan import tfds_dcgan_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    return tfds_dcgan_config("mnist", (256, 128), (64, 128), 25, arg)
