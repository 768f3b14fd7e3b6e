"""MoCo v2 on CIFAR-10 with a ResNet-18 encoder, scored by a linear probe (needs an
accelerator and the CIFAR-10 TFDS data; not measured here).

Run:    python -m scripts.train --config configs/cifar10_moco.py --workdir runs/cifar10_moco
Smoke:  --config configs/cifar10_moco.py:smoke (the tests run it under tfds.testing.mock_data).
Recipe: the views, encoder, optimizer schedule and evaluators of configs/cifar10_simclr.py
        (batch 256, 500 epochs); MoCo v2's MLP head 512 -> 2048 -> ReLU -> 128; InfoNCE at
        temperature 0.2 (MoCo v2's) against a queue of 4096 keys (MoCo's CIFAR demos use
        4096; ImageNet uses 65536); key encoder momentum 0.99; shuffled BN simulated with 8
        groups of 32 (jaxlab/tasks/moco.py).
Target (published linear-evaluation numbers):
        - Chen, Fan, Girshick and He (2020), MoCo v2, Table 2: ResNet-50 on ImageNet, 67.5%
          top-1 after 200 epochs, 71.1% after 800 epochs.
        - CIFAR-10, ResNet-18, 1000 epochs: 91.88% top-1 linear accuracy for MoCo V2+
          (solo-learn's results table, github.com/vturrisi/solo-learn README, checked
          2026-12-03; solo-learn's variant of MoCo v2, not the paper's CIFAR recipe).
Result: not measured (no accelerator, no CIFAR-10 offline).
Variants:
  smoke   2 steps of a 4/8-wide small_cnn standing in for ResNet-18 on batches of 8, a
          queue of 16, for tests (mock data).
"""

from __future__ import annotations

import ml_collections

from configs.cifar10_simclr import cifar_ssl_config
from jaxlab.config import finish_config, parse_variants

SMOKE_ARG = "smoke"
VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    task = ml_collections.ConfigDict(
        {
            "name": "moco",
            "temperature": 0.2,
            "momentum": 0.99,
            "queue_size": 4096,
            "bn_groups": 8,
            "feature_dim": 512,
            "proj_hidden_dim": 2048,
            "proj_dim": 128,
            "proj_depth": 1,
        }
    )
    if "smoke" in variants:
        task.feature_dim, task.proj_hidden_dim, task.proj_dim = 8, 8, 4
        task.queue_size, task.bn_groups = 16, 2
    return finish_config(cifar_ssl_config(task, variants, batch_size=256))
