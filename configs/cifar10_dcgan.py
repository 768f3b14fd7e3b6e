"""DCGAN on CIFAR-10 (TFDS 'cifar10', images in [0, 1]; needs the prepared data, see README:
Data).

Run:    python -m scripts.train --config configs/cifar10_dcgan.py --workdir runs/cifar10_dcgan
Smoke:  --config configs/cifar10_dcgan.py:smoke (the tests run it under tfds.testing.mock_data).
Recipe: DCGAN (Radford, Metz & Chintala, 2016) at 32x32: generator z (100, N(0, I)) ->
        4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3 (4x4 transposed convolutions with
        stride 2, batch norm, ReLU, tanh), discriminator 32x32x3 -> 16x16x64 -> 8x8x128 ->
        4x4x256 (4x4 convolutions with stride 2, LeakyReLU 0.2, batch norm but on the first
        layer) -> logit; the widths of DCGAN's PyTorch reference (ngf = ndf = 64) without
        its 64x64 layer; N(0, 0.02) init; non-saturating loss, one discriminator update per
        generator update; Adam lr 2e-4, b1 0.5 for both; batch 128, 50 epochs (19,550
        steps). Sample grids from one fixed noise batch every 2,000 steps.
Target: published DCGAN numbers on CIFAR-10 (Inception-network features, 50,000 samples;
        not comparable with this repository's `sample_quality`, which uses a jaxlab
        classifier): FID 37.7 (Heusel et al., 2017, the TTUR paper; 36.9 with two time-scale
        updates); Inception score about 6.2-6.6 as tabulated by later papers (e.g. 6.64 for
        the standard CNN of Miyato et al., 2018). Not measured here (no CIFAR-10 download
        and no accelerator on this machine).
Result: not measured.
Variants (the argument):
  smoke   2 steps of 4/8-wide networks on batches of 8, 4 samples (tests, under mock data).
"""

from __future__ import annotations

import ml_collections

from configs.gen_digits_dcgan import dcgan_optimizers
from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def tfds_dcgan_config(
    dataset: str,
    generator_widths: tuple[int, ...],
    discriminator_widths: tuple[int, ...],
    num_epochs: int,
    arg: str = "",
) -> ml_collections.ConfigDict:
    """A DCGAN on the TFDS image dataset `dataset` (images in [0, 1]) with this module's
    recipe; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = dataset
    c.dataset.normalize = False  # the task models pixels in [0, 1]
    c.task = ml_collections.ConfigDict(
        {"name": "gan", "latent_dim": 100, "loss": "non_saturating", "d_steps": 1}
    )
    c.model.name = "dcgan"
    c.model.generator_widths = generator_widths
    c.model.discriminator_widths = discriminator_widths
    c.optimizers = dcgan_optimizers()
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = num_epochs
    c.log_every_steps = 100
    c.eval_every_steps = 2000
    c.checkpoint_every_steps = 2000
    c.best_metric = ""  # a GAN's losses do not rank its samples: keep the latest checkpoints
    c.evaluators = ml_collections.ConfigDict({"samples": {"num": 64, "every_steps": 2000}})
    if "smoke" in variants:
        c.task.latent_dim = 4
        c.model.generator_widths = tuple(max(4, 8 >> i) for i in range(len(generator_widths)))
        c.model.discriminator_widths = c.model.generator_widths[::-1]
        c.batch_size = c.eval_batch_size = 8
        c.num_epochs, c.num_train_steps = -1, 2
        c.log_every_steps, c.eval_every_steps = 1, 2
        c.checkpoint_every_steps = 2
        c.evaluators = ml_collections.ConfigDict({"samples": {"num": 4, "every_steps": 2}})
    return finish_config(c)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    return tfds_dcgan_config("cifar10", (256, 128, 64), (64, 128, 256), 50, arg)
