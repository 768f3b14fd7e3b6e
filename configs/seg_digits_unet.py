"""A segmentation U-Net (widths 16/32/64) on `seg_digits`: the baseline DeepLabv3+ is
compared with (`configs/seg_digits_deeplabv3plus.py`, whose recipe, data and schedule it
shares).

Run:    python -m scripts.train --config configs/seg_digits_unet.py --workdir runs/seg_digits_unet
Recipe: three levels of two 3x3 conv-BN-ReLU (16, 32, 64 channels), 2x2 max pools,
        bilinear upsampling (align_corners=False) and skip concatenation; Adam 2e-3, cosine
        decay, batch 32, pad_crop:4, 800 steps; eval at full resolution.
Target: test mIoU >= 0.5 and above the per-pixel classical baseline, 0.2812
        (`python -m scripts.seg_baseline`).
Result: test mIoU 0.6731 (per class 0.982 / 0.693 / 0.720 / 0.473 / 0.498), pixel
        accuracy 0.9633, fw IoU 0.9374 after 800 steps (step 200: 0.421, 400: 0.575);
        about 29 min wall in three resumed runs of <= 10 min on 2 CPU cores shared with
        8 other jobs (load ~25), 2026-12-03.
Variants (the argument):
  finetune  the learning rate / 10, every layer loaded (give --config.init_from).
  smoke     4 steps of a width-4 U-Net on batch 4, for tests.
"""

from __future__ import annotations

import importlib.util
import os

import ml_collections

from jaxlab.config import finish_config

VARIANTS = ("", "finetune", "smoke")


def _shared():  # configs/ is not a package: load the sibling file that holds the recipe
    path = os.path.join(os.path.dirname(__file__), "seg_digits_deeplabv3plus.py")
    spec = importlib.util.spec_from_file_location("seg_digits_deeplabv3plus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config (`smoke`: a tiny run for tests)."""
    features = (4, 8) if "smoke" in arg else (16, 32, 64)
    model = {"name": "seg_unet", "features": features}
    return finish_config(_shared().seg_digits_config(arg, model, steps=800, lr=2e-3))
