"""ViT-Tiny with 4x4 patches on CIFAR-10 (Dosovitskiy et al., 2020, trained from scratch
with a DeiT-style recipe, Touvron et al., 2021, as small-dataset ViT papers do).

Run:    python -m scripts.train --config configs/cifar10_vit_tiny.py --workdir runs/cifar10_vit_tiny
Recipe: AdamW (b1 0.9, b2 0.999), lr 1e-3 at batch 128, 5 epochs of linear warmup then
        cosine decay to 0 over 200 epochs, decoupled weight decay 0.05 (biases, LayerNorm
        scales exempt), gradient clipping at global norm 1, label smoothing 0.1, mixup 0.8 and
        cutmix 1.0 (one of them per batch, so the train accuracy is on mixed labels),
        stochastic depth 0.1, pad-4 crop and horizontal flip. The net: vit_tiny (width
        192, 12 blocks, 3 heads, MLP 768) on 4x4 patches: 8x8 = 64 patches plus the class
        token, 5.36M parameters. Expect roughly 90% (small-data ViTs without
        pre-training land around there with this kind of recipe); the ResNets beat it.
Result: not measured here (no CIFAR-10 offline; prepare it as in README: Data).
Variants (the argument, comma-separated):
  digits        the same net, 4x4 patches included, on the offline 8x8 digits (2x2 = 4
                patches + class token; 2x2 patches were 3x slower and overfit, 80% test):
                320 steps of batch 64, AdamW at 1e-3 with 32 warmup steps and cosine
                decay, label smoothing 0.1; no augmentation, mixup/cutmix or stochastic
                depth (a flip or 4-pixel shift changes a digit; the run is short).
  smoke         a few steps of batch 8 at width 32, 2 blocks (tests, under tfds mock data).
  digits,smoke  the digits variant for a few steps.
"""

from __future__ import annotations

import ml_collections

from configs.cifar10_resnet20 import CIFAR10_TRAIN_EXAMPLES
from jaxlab.config import default_config, finish_config, parse_variants

SMOKE_ARG = "smoke"
VARIANTS = ("", "digits", "smoke", "digits,smoke")  # the documented arguments
DIGITS_STEPS = 320


def transformer_cifar_config(
    variants: set[str], digits_steps: int = DIGITS_STEPS
) -> ml_collections.ConfigDict:
    """The DeiT-style CIFAR-10 recipe shared with configs/cifar10_mixer.py (model left to
    the caller), with its digits and smoke variants."""
    c = default_config()
    c.dataset.name = "cifar10"
    c.dataset.augment = "flip_lr,pad_crop:4"
    c.task.label_smoothing = 0.1
    c.task.mixup_alpha = 0.8
    c.task.cutmix_alpha = 1.0
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.b1, c.optimizer.b2 = 0.9, 0.999
    c.optimizer.weight_decay = 0.05
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 5 * (CIFAR10_TRAIN_EXAMPLES // 128)
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = 200
    c.log_every_steps = 100
    c.eval_every_steps = c.checkpoint_every_steps = CIFAR10_TRAIN_EXAMPLES // 128 * 5
    if "digits" in variants:
        c.dataset.name = "digits"
        c.dataset.augment = ""
        c.task.mixup_alpha = c.task.cutmix_alpha = 0.0
        c.schedule.warmup_steps = digits_steps // 10
        c.batch_size, c.eval_batch_size = 64, 120
        c.num_epochs, c.num_train_steps = -1, digits_steps
        c.log_every_steps = 20
        c.eval_every_steps = c.checkpoint_every_steps = 80
    if "smoke" in variants:
        if "digits" not in variants:
            c.batch_size, c.eval_batch_size = 8, 8
        c.schedule.warmup_steps = 2
        c.num_epochs, c.num_train_steps = -1, 6
        c.log_every_steps = 2
        c.eval_every_steps = c.checkpoint_every_steps = 3
    return c


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config for the variants in `arg` ("", "digits", "smoke",
    "digits,smoke")."""
    variants = parse_variants(arg, ("digits", "smoke"))
    c = transformer_cifar_config(variants)
    c.model.name = "vit_tiny"
    c.model.patch_size = 4
    c.model.stochastic_depth = 0.0 if "digits" in variants else 0.1
    if "smoke" in variants and "digits" not in variants:
        c.model.hidden_size, c.model.depth, c.model.num_heads, c.model.mlp_dim = 32, 2, 2, 64
    return finish_config(c)
