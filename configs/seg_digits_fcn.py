"""An FCN-8s-style net on `seg_digits`, on the backbone of DeepLabv3+
(`configs/seg_digits_deeplabv3plus.py`, whose recipe, data and schedule it shares): the
CIFAR-layout ResNet-8 at width 16, so its skips come from strides 1, 2 and 4 (FCN-8s'
8, 16 and 32 scaled to 32x32 inputs: at stride 8 the glyphs' strokes are lost, see the
DeepLabv3+ docstring's oracle, mIoU 0.320 at stride 8).

Run:    python -m scripts.train --config configs/seg_digits_fcn.py --workdir runs/seg_digits_fcn
Recipe: 1x1 score convs on the last three stages, summed coarse to fine after bilinear
        upsampling (align_corners=False); Adam 2e-3, cosine
        decay, batch 32, pad_crop:4, 800 steps; eval at full resolution.
Target: test mIoU above the per-pixel classical baseline, 0.2812
        (`python -m scripts.seg_baseline`).
Result: test mIoU 0.6326 (per class 0.973 / 0.630 / 0.651 / 0.506 / 0.404), pixel
        accuracy 0.9560, fw IoU 0.9235 after 800 steps (step 200: 0.432, 400: 0.547, 600:
        0.623); 4 min 20 s wall on 2 CPU cores shared with 3 other jobs (load ~6),
        2026-12-03, seed 0, one run. Above the baseline, below DeepLabv3+ (0.7509) on
        the same backbone and schedule.
Variants (the argument):
  finetune  the learning rate / 10, every layer loaded (give --config.init_from).
  smoke     4 steps of a width-4 FCN, batch 4, for tests.
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
    width = 4 if "smoke" in arg else 16
    model = {"name": "fcn8s", "variant": "cifar", "depth": 8, "width": width}
    return finish_config(_shared().seg_digits_config(arg, model, steps=800, lr=2e-3))
