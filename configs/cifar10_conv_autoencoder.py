"""A convolutional autoencoder on CIFAR-10: strided convolutions down to a 256-number code,
transposed convolutions back up (mean squared error), through TFDS.

Run:    python -m scripts.train --config configs/cifar10_conv_autoencoder.py \
            --workdir runs/cifar10_conv_autoencoder
Recipe: conv_autoencoder with 4x4 stride-2 convs 32x32x3 -> 16x16x64 -> 8x8x128 ->
        4x4x256, a dense layer to the 256-number code and the mirror image back
        (nn.ConvTranspose), sigmoid outputs, per-image summed squared error against the
        [0, 1] pixels (`task.loss = 'mse'`); Adam lr 1e-3, batch 128, 30 epochs.
Target: test per-pixel MSE <= 0.006 (per-image loss <= 18.4 over 3072 values, PSNR about
        22 dB), the usual range of a 256-dimensional undercomplete conv autoencoder on
        CIFAR-10 (the code keeps 1/12 of the values); tens of minutes on an accelerator.
        Not measured here: no CIFAR-10 download on this machine; the smoke variant runs on
        TFDS mock data in the tests.
Variants (the argument):
  smoke   4 steps of a 4/8-feature autoencoder for tests (the eval pass only).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "cifar10"
    c.dataset.eval_split = "test"
    c.dataset.normalize = False  # images in [0, 1]
    c.task = ml_collections.ConfigDict({"name": "autoencoder", "loss": "mse"})
    c.model.name = "conv_autoencoder"
    c.model.sizes = (64, 128, 256)
    c.model.code_dim = 256
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.schedule.name = "constant"
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = 30
    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.checkpoint_every_steps = 1000
    c.best_metric, c.best_mode = "loss", "min"
    c.evaluators = ml_collections.ConfigDict(
        {
            "samples": {"num": 64, "every_steps": 2000},
            "reconstructions": {"num": 16, "every_steps": 2000},
            "interpolations": {"pairs": 4, "steps": 8},
            "latent_scatter": {"num": 2000},
        }
    )
    if "smoke" in variants:
        c.model.sizes, c.model.code_dim = (4, 8), 4
        c.batch_size, c.eval_batch_size = 8, 12
        c.num_epochs, c.num_train_steps = -1, 4
        c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 2, 4, 4
        c.evaluators = ml_collections.ConfigDict()  # the loop's eval only
    return finish_config(c)
