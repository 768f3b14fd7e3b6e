"""DeepLabv3+ (ResNet-18 backbone at width 16, output stride 8) on `seg_digits` (digit
glyphs 0..3 pasted in random colours on crops of scikit-learn's sample photographs, 32x32,
5 classes, 1000 train / 200 test).

Run:    python -m scripts.train --config configs/seg_digits_deeplabv3plus.py --workdir runs/seg_digits_deeplabv3plus
Recipe: ImageNet-layout ResNet-18 with widths 16..128; output stride 8 (stages 3 and 4
        dilated: a 4x4 map at 32x32); ASPP of 64 channels at rates (1, 2, 3) (the paper's
        (12, 24, 36) at OS 8 are for 65x65 maps of 513 crops; on a 4x4 map they would only
        see padding, so the rates are scaled to the map); decoder with the stage-1
        features (stride 4) reduced to 16 channels and two depthwise-separable 3x3 convs of
        64 channels. Adam 2e-3, cosine decay over 800 steps, batch 32, joint pad_crop:4 augmentation
        (image and mask shifted together, the mask padded with 255). Eval at full
        resolution (logits upsampled bilinearly, align_corners=False, as in training).
Three-stage recipe: (1) a classifier with the same backbone (`model.name=resnet18`...)
        trained on a classification set, (2) this config with `--config.init_from=<its
        workdir>` (backbone by path, `head_*` re-created), (3) the `finetune` variant with
        `--config.init_from=<stage 2 workdir>` at a tenth of the rate.
Target: test mIoU above the per-pixel classical baseline, 0.2812 (`python -m
        scripts.seg_baseline`: k-NN of each pixel's 3x3 colour neighbourhood), and >= 0.5.
Result: NOT reached in the time this was written in: with `--config.num_train_steps=400`
        (a 400-step cosine) test mIoU 0.2859, pixel accuracy 0.8957, fw IoU 0.8239 (about
        10 min wall on 2 CPU cores shared with 8 other jobs, load ~25; 2026-12-03): level
        with the baseline. The 800-step Run command was not measured (no CPU time left);
        the U-Net (configs/seg_digits_unet.py) learns the glyphs much faster per step.
Variants (the argument):
  finetune  stage 3: the learning rate / 10 (give --config.init_from).
  smoke     4 steps of a width-4 CIFAR-layout ResNet-8 DeepLabv3+ on batch 4, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "finetune", "smoke")


def seg_digits_config(arg: str, model: dict, steps: int, lr: float) -> ml_collections.ConfigDict:
    """The seg_digits segmentation config shared by the DeepLabv3+, FCN and U-Net files."""
    variants = parse_variants(arg, ("finetune", "smoke"))
    c = default_config()
    c.dataset.name = "seg_digits"
    c.dataset.normalize = False
    c.dataset.augment = "pad_crop:4"
    c.dataset.shuffle_buffer = 1000
    c.task = ml_collections.ConfigDict(
        {"name": "segmentation", "class_weights": "", "eval_mode": "full"}
    )
    c.model = ml_collections.ConfigDict(model)
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = lr / 10 if "finetune" in variants else lr
    c.schedule.name = "cosine"
    c.batch_size = 32
    c.eval_batch_size = 200
    c.num_train_steps = steps
    c.log_every_steps = 100
    c.eval_every_steps = steps // 4
    c.checkpoint_every_steps = steps // 4
    c.best_metric, c.best_mode = "iou/mean_iou", "max"
    c.evaluators = ml_collections.ConfigDict({"overlay": {"num": 8}})
    if "smoke" in variants:
        c.batch_size, c.eval_batch_size = 4, 8
        c.num_train_steps = 4
        c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 2, 4, 4
        c.evaluators = ml_collections.ConfigDict({"overlay": {"num": 2}})
    return c


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config (`finetune`: stage 3; `smoke`: a tiny run for tests)."""
    smoke = "smoke" in arg
    model = {
        "name": "deeplabv3plus",
        # smoke: the 3-block CIFAR-layout ResNet-8 (compiles in a fraction of ResNet-18's
        # time), its last stage dilated (output stride 2 of its natural 4).
        "variant": "cifar" if smoke else "imagenet",
        "depth": 8 if smoke else 18,
        "width": 4 if smoke else 16,
        "output_stride": 2 if smoke else 8,
        "atrous_rates": (1, 2, 3),
        "aspp_features": 8 if smoke else 64,
        "aspp_dropout": 0.1,
        "low_level_features": 4 if smoke else 16,
        "decoder_features": 8 if smoke else 64,
    }
    return finish_config(seg_digits_config(arg, model, steps=800, lr=2e-3))
