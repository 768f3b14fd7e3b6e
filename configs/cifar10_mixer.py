"""MLP-Mixer with 4x4 patches on CIFAR-10 (Tolstikhin et al., 2021), at half the width of
Mixer-S, trained from scratch with the DeiT-style recipe of configs/cifar10_vit_tiny.py.

Run:    python -m scripts.train --config configs/cifar10_mixer.py --workdir runs/cifar10_mixer
Recipe: AdamW (b1 0.9, b2 0.999), lr 1e-3 at batch 128, 5 epochs of linear warmup then
        cosine decay to 0 over 200 epochs, decoupled weight decay 0.05, gradient clipping
        at global norm 1, label smoothing 0.1, mixup 0.8 and cutmix 1.0 (one per batch),
        stochastic depth 0.1, pad-4 crop and horizontal flip. The net: `mlp_mixer` with
        4x4 patches (64 tokens), 8 blocks of width 256, token-mixing MLP 128 and
        channel-mixing MLP 1024 (Mixer-S/16's 512/256/2048 halved, as usual for 32x32):
        4.36M parameters. Mixers need more data than convnets: expect it below the
        ResNets on CIFAR-10 (the small-data Mixer reports are in the high 80s to low 90s).
Result: not measured here (no CIFAR-10 offline; prepare it as in README: Data).
Variants (the argument, comma-separated):
  digits        the same net, 4x4 patches included, on the offline 8x8 digits (4 tokens):
                160 steps of batch 64, AdamW at 1e-3 with 16 warmup steps and cosine
                decay, label smoothing 0.1; no augmentation, mixup/cutmix or stochastic
                depth.
  smoke         a few steps of batch 8 at width 32, 2 blocks (tests, under tfds mock data).
  digits,smoke  the digits variant for a few steps.
"""

from __future__ import annotations

import ml_collections

from configs.cifar10_vit_tiny import VARIANTS as VARIANTS  # the same documented arguments
from configs.cifar10_vit_tiny import transformer_cifar_config
from jaxlab.config import finish_config, parse_variants

SMOKE_ARG = "smoke"
DIGITS_STEPS = 160


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config for the variants in `arg` ("", "digits", "smoke",
    "digits,smoke")."""
    variants = parse_variants(arg, ("digits", "smoke"))
    c = transformer_cifar_config(variants, DIGITS_STEPS)
    c.model.name = "mlp_mixer"
    c.model.patch_size = 4
    c.model.hidden_size = 256
    c.model.depth = 8
    c.model.tokens_mlp_dim = 128
    c.model.channels_mlp_dim = 1024
    c.model.stochastic_depth = 0.0 if "digits" in variants else 0.1
    if "smoke" in variants and "digits" not in variants:
        c.model.hidden_size, c.model.depth = 32, 2
        c.model.tokens_mlp_dim, c.model.channels_mlp_dim = 16, 64
    return finish_config(c)
