"""The small conv net on CIFAR-100 (TFDS 'cifar100'; needs the prepared data, see README: Data).

Run:    python -m scripts.train --config configs/cifar100_cnn.py --workdir runs/cifar100_cnn
Result: not measured here (this machine cannot download CIFAR-100).
Smoke:  --config configs/cifar100_cnn.py:smoke (the tests run it under tfds.testing.mock_data).
"""

from __future__ import annotations

import ml_collections

from configs.cifar10_cnn import VARIANTS as VARIANTS  # the same documented arguments
from configs.cifar10_cnn import small_cnn_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    return small_cnn_config("cifar100", "flip_lr,pad_crop", (64, 128, 256), 30, arg)
