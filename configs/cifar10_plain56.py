"""Plain-56 on CIFAR-10: ResNet-56 without its shortcuts (He et al., 2016, sec. 4.2), trained
with the same recipe; the deep half of the degradation experiment (README: "Vision
experiments").

Run:    python -m scripts.train --config configs/cifar10_plain56.py --workdir runs/cifar10_plain56
Recipe: as configs/cifar10_resnet20.py (SGD momentum 0.9, lr 0.1 divided by 10 at 32k and
        48k of 64k iterations, batch 128, weight decay 1e-4, pad-4 crop and flip); 55 conv
        layers + classifier with batch norm, no shortcuts: 0.85M parameters. Expected (He et
        al., fig. 6, left): a HIGHER training error than plain-20 throughout training, and
        a higher test error, although it can represent everything plain-20 can. Batch norm
        keeps its gradients healthy: this is an optimization difficulty, not vanishing
        gradients or overfitting.
Result: not measured here (no CIFAR-10 offline; prepare it as in README: Data).
Variants (the argument, comma-separated), as configs/cifar10_resnet20.py:
  digits        the same net and recipe shape on the offline 8x8 digits (320 steps).
  digits,long   the digits variant three times longer (960 steps).
  smoke         a few steps of batch 8 with 8-wide stages at depth 8 (tests, under tfds
                mock data; the zoo's tests check this net's depth).
  digits,smoke  the digits variant for a few steps, at depth 8 too.
"""

from __future__ import annotations

import ml_collections

from configs.cifar10_resnet20 import VARIANTS as VARIANTS  # the same documented arguments
from configs.cifar10_resnet20 import cifar_resnet_config

SMOKE_ARG = "smoke"


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config for the variants in `arg` ("", "digits", "digits,long",
    "smoke", "digits,smoke")."""
    return cifar_resnet_config("plain56", arg)
