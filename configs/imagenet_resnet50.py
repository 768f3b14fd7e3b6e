"""ResNet-50 on ImageNet (ILSVRC-2012) with the recipe of Goyal et al. (2017), "Accurate,
Large Minibatch SGD: Training ImageNet in 1 Hour".

Run:    python -m scripts.train --config configs/imagenet_resnet50.py --workdir runs/imagenet_resnet50
Needs:  TFDS 'imagenet2012' prepared in the data dir: put ILSVRC2012_img_train.tar and
        ILSVRC2012_img_val.tar in DIR, then `tfds build imagenet2012 --manual_dir DIR`.
        jaxlab.data reads the JPEGs undecoded and decodes only what it keeps (train:
        random resized crop to 224, area 8-100%, aspect 3/4-4/3; eval: the shorter side
        resized to 256, center crop 224), normalized with the ImageNet mean/std. Each
        process reads its own part of the train split (train_host_sharding 'split'), so
        the batches depend on the process count; a run resumes exactly for a fixed count.
Recipe: SGD momentum 0.9, lr 0.1 per 256 examples (linear scaling rule: 0.4 at this
        file's batch of 1024, e.g. 8 devices x 128), 5 epochs of linear warmup, then the rate
        divided by 10 at epochs 30, 60 and 80 of 90; weight decay 1e-4 (coupled L2, not on
        biases or batch-norm parameters, as Goyal et al.), horizontal flip on top of the
        dataset's random resized crop; resnet50 (torchvision layout, "v1.5", 25,557,032
        parameters), batch-norm momentum 0.9. Goyal et al. report 23.6% top-1 error
        (76.4% accuracy) at any batch up to 8k. Differences: our warmup starts at 0 rather
        than at 0.1, and the last batch norm of each block starts at 1, not 0 (the model
        has no zero-init option). Label smoothing 0.1 (Szegedy et al.) usually adds about
        half a point: --config.task.label_smoothing=0.1.
        The warmup and step boundaries below are counted in steps of BATCH_SIZE: to train
        with another batch, change BATCH_SIZE in this file (the rate follows through
        schedule.linear_scaling), not --config.batch_size.
Result: not measured here (no ImageNet offline).
Variants (the argument):
  smoke   a few steps of batch 8 at width 8 (tests, under tfds mock data): on imagenet2012
          once jaxlab.data knows it, on cifar10 (32x32, enough for the ImageNet stem) until
          then.
  No digits variant: the ImageNet stem and four stages downsample by 32 (8x8 digits would
  be gone after the stem and max pool); the smoke run is this config's offline check.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

SMOKE_ARG = "smoke"
VARIANTS = ("", "smoke")  # the documented arguments
IMAGENET = "imagenet2012"
IMAGENET_TRAIN_EXAMPLES = 1_281_167
BATCH_SIZE = 1024
EPOCHS, WARMUP_EPOCHS, DECAY_EPOCHS = 90, 5, (30, 60, 80)
NO_DIGITS = "imagenet_resnet50 needs inputs of at least 32x32; it has no digits variant"


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",), unavailable={"digits": NO_DIGITS})
    steps_per_epoch = IMAGENET_TRAIN_EXAMPLES // BATCH_SIZE
    c = default_config()
    c.dataset.name = IMAGENET
    c.dataset.eval_split = "validation"
    c.dataset.cache = False  # ~150 GB of JPEGs: stream them
    c.dataset.train_host_sharding = "split"  # each host reads 1/N of the files
    c.dataset.augment = "flip_lr"
    c.model.name = "resnet50"
    c.optimizer.name = "momentum"
    c.optimizer.momentum = 0.9
    c.optimizer.learning_rate = 0.1
    c.optimizer.weight_decay = 1e-4
    c.optimizer.weight_decay_type = "l2"
    c.schedule.name = "step"
    c.schedule.linear_scaling = True
    c.schedule.base_batch_size = 256
    c.schedule.warmup_steps = WARMUP_EPOCHS * steps_per_epoch
    # Boundaries count from the end of warmup.
    c.schedule.boundaries = tuple((e - WARMUP_EPOCHS) * steps_per_epoch for e in DECAY_EPOCHS)
    c.schedule.factors = (0.1, 0.1, 0.1)
    c.batch_size = BATCH_SIZE
    c.eval_batch_size = 1000
    c.num_epochs = EPOCHS
    c.log_every_steps = 100
    c.eval_every_steps = c.checkpoint_every_steps = steps_per_epoch
    if "smoke" in variants:
        c.dataset.shuffle_buffer = 100
        c.model.width = 8
        c.batch_size, c.eval_batch_size = 8, 8
        c.schedule.warmup_steps = 2
        c.schedule.boundaries = (2, 3, 4)
        c.num_epochs, c.num_train_steps = -1, 6
        c.log_every_steps = 2
        c.eval_every_steps = c.checkpoint_every_steps = 3
    return finish_config(c)
