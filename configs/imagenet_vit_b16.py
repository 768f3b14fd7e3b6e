"""ViT-B/16 on ImageNet (ILSVRC-2012) trained from scratch with the recipe of Dosovitskiy
et al. (2020, appendix B.1, table 3: ImageNet, 300 epochs).

Run:    python -m scripts.train --config configs/imagenet_vit_b16.py --workdir runs/imagenet_vit_b16
Needs:  TFDS 'imagenet2012' prepared in the data dir, as configs/imagenet_resnet50.py
        says; jaxlab.data decodes it to 224x224 (train: random resized crop; eval: resize
        256, center crop 224) with the ImageNet mean/std.
Recipe: AdamW (b1 0.9, b2 0.999), lr 3e-3 at batch 4096 (linear scaling rule against
        base_batch_size 4096: a smaller batch gets a proportionally smaller rate), 10k steps
        of linear warmup then cosine decay to 0, 300 epochs, decoupled weight decay 0.3
        (biases and LayerNorm scales exempt), gradient clipping at global norm 1, dropout
        0.1, horizontal flip on top of the dataset's random resized crop; vit_b16 (224x224,
        16x16 patches: 196 + class token, 86,567,656 parameters). The weight decay is
        multiplied by the rate (PyTorch's AdamW convention). Trained on ImageNet alone, the
        paper's ViT-B/16 is listed at 77.9% top-1 (DeiT, Touvron et al., 2021, table 1,
        evaluated at 384x384); DeiT's strong augmentation gives 81.8% at 224.
        Batch 4096 needs many accelerators; to keep it on fewer, accumulate:
        --config.batch_size=1024 --config.optimizer.accumulate_steps=4 (the rate scales
        with batch_size * accumulate_steps, the epochs count loop steps of batch_size, and
        the 10k warmup steps are loop steps: multiply them by the accumulation too).
Result: not measured here (no ImageNet offline).
Variants (the argument):
  smoke   a few steps of batch 8 at width 32, 2 blocks on imagenet2012 under tfds mock
          data (random JPEGs of varying sizes, decoded and cropped to 224x224).
  No digits variant: 16x16 patches need inputs of at least 16x16, and with 2x2 patches
  the 86M-parameter net does not fit a minute on 2 CPU cores; configs/cifar10_vit_tiny.py
  has the same architecture's digits run.
"""

from __future__ import annotations

import ml_collections

from configs.imagenet_resnet50 import IMAGENET
from jaxlab.config import default_config, finish_config, parse_variants

SMOKE_ARG = "smoke"
VARIANTS = ("", "smoke")  # the documented arguments
NO_DIGITS = "imagenet_vit_b16 needs inputs of at least 16x16; it has no digits variant"


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",), unavailable={"digits": NO_DIGITS})
    c = default_config()
    c.dataset.name = IMAGENET
    c.dataset.eval_split = "validation"
    c.dataset.cache = False  # ~150 GB of JPEGs: stream them
    c.dataset.train_host_sharding = "split"  # each host reads 1/N of the files
    c.dataset.augment = "flip_lr"
    c.model.name = "vit_b16"
    c.model.dropout = 0.1
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.b1, c.optimizer.b2 = 0.9, 0.999
    c.optimizer.weight_decay = 0.3
    c.optimizer.grad_clip_norm = 1.0
    c.schedule.name = "cosine"
    c.schedule.linear_scaling = True
    c.schedule.base_batch_size = 4096
    c.schedule.warmup_steps = 10_000
    c.batch_size = 4096
    c.eval_batch_size = 1000
    c.num_epochs = 300
    c.log_every_steps = 100
    c.eval_every_steps = c.checkpoint_every_steps = 2_000
    if "smoke" in variants:
        c.dataset.shuffle_buffer = 100
        c.model.hidden_size, c.model.depth, c.model.num_heads, c.model.mlp_dim = 32, 2, 2, 64
        c.batch_size, c.eval_batch_size = 8, 8
        c.schedule.warmup_steps = 2
        c.num_epochs, c.num_train_steps = -1, 6
        c.log_every_steps = 2
        c.eval_every_steps = c.checkpoint_every_steps = 3
    return finish_config(c)
