"""DINO on CIFAR-10 (TFDS 'cifar10'; needs the prepared data, see README: Data), evaluated
by a linear probe and kNN on the frozen ResNet-18 features.

Run:    python -m scripts.train --config configs/cifar10_dino.py --workdir runs/cifar10_dino
Smoke:  --config configs/cifar10_dino.py:smoke (the tests run it under tfds.testing.mock_data).
Recipe: cifar10_byol.py's data, backbone and optimizer with DINO's head (2048 hidden,
        256-d bottleneck, 4096 prototypes), teacher temperature 0.04, student 0.1, center
        momentum 0.9, teacher momentum 0.99 on the cosine schedule to 1, six 16x16 local
        crops (area 0.05-0.4) per example beside the two 32x32 global views.
Target: published linear-probe accuracy on CIFAR-10 of about 89.5% (solo-learn's DINO
        ResNet-18, 1000 epochs, CIFAR stem; see cifar10_byol.py on jaxlab's stem).
Result: not measured here (this machine cannot download CIFAR-10).
Variants (the argument):
  smoke   3 steps of a tiny small_cnn with one local crop, for tests.
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
        {
            "name": "dino",
            "feature_dim": 512,
            "hidden_dim": 2048,
            "bottleneck_dim": 256,
            "out_dim": 4096,
            "head_norm": "none",
            "teacher_temperature": 0.04,
            "student_temperature": 0.1,
            "center_momentum": 0.9,
            "momentum": 0.99,
            "momentum_schedule": "cosine",
            "local_crops": 6,
            "local_crop_size": 16,
            "local_crop_scale": (0.05, 0.4),
        }
    )
    c = cifar10_ssl_config(task, variants)
    if "smoke" in variants:
        c.task.feature_dim, c.task.hidden_dim, c.task.bottleneck_dim = 8, 8, 4
        c.task.out_dim, c.task.local_crops, c.task.local_crop_size = 8, 1, 8
    return finish_config(c)
