"""Stage 1 of the three-stage segmentation recipe: the DeepLabv3+ backbone of
`configs/seg_digits_deeplabv3plus.py` (CIFAR-layout ResNet-8, width 16) trained as a
classifier on scikit-learn's 8x8 digits (offline, 10 classes).

Run:    python -m scripts.train --config configs/seg_digits_pretrain.py --workdir runs/seg_digits_pretrain
Recipe: AdamW 5e-3 (weight decay 1e-4), warmup 11 steps then cosine, batch 128, 440 steps
        (40 epochs). The classifier's parameters keep the segmentation model's names
        (`stem_conv`, `stage<i>_block<j>`; the classifier is `head`), so stage 2 loads them:
            python -m scripts.train --config configs/seg_digits_deeplabv3plus.py \
                --workdir runs/seg_digits_stage2 --config.init_from=runs/seg_digits_pretrain \
                --config.init_head='head|stem_conv'
        The stem conv is re-created with the head: the digits are grayscale (1 input
        channel), seg_digits is RGB (3), so its kernel cannot load. Stage 3 is the
        `finetune` variant of the segmentation config with `--config.init_from=<stage 2>`.
Result: digits test accuracy 98.61% (355/360) after 440 steps, 2 min 14 s wall (2026-12-03,
        seed 0); stage 2 loads its 34 backbone arrays. Stages 2 and 3: see
        `configs/seg_digits_deeplabv3plus.py` ("Three-stage recipe").
Variants (the argument):
  smoke   6 steps at a constant rate, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config (`smoke`: a tiny run for tests)."""
    variants = parse_variants(arg, ("smoke",))
    smoke = "smoke" in variants
    c = default_config()
    c.dataset.name = "digits"
    c.model.name = "resnet"
    c.model.variant = "cifar"
    c.model.depth = 8
    c.model.width = 16
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 5e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.name = "cosine"
    c.schedule.warmup_steps = 11
    c.batch_size = 128
    c.eval_batch_size = 120
    c.num_train_steps = 440
    c.log_every_steps = 44
    c.eval_every_steps = 220
    c.checkpoint_every_steps = 220
    if smoke:  # a constant rate, as digits_cnn's smoke: the test checks it learns in 6 steps
        c.schedule.name, c.schedule.warmup_steps = "constant", 0
        c.num_train_steps = 6
        c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 2, 6, 6
    return finish_config(c)
