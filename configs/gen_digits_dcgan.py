"""DCGAN on the offline 8x8 digits (gen_digits: 1000 train, 350 validation images).

Run:    python -m scripts.train --config configs/gen_digits_dcgan.py \
            --workdir runs/gen_digits_dcgan
        (for `sample_quality`, first train the classifier:
        python -m scripts.train --config configs/gen_digits_classifier.py \
            --workdir runs/gen_digits_classifier)
Smoke:  --config configs/gen_digits_dcgan.py:smoke
Recipe: DCGAN (Radford et al., 2016) shrunk to 8x8: generator z (32) -> 2x2x64 -> 4x4x32
        -> 8x8x1 (transposed 4x4 convolutions, batch norm, ReLU, tanh), discriminator
        8x8x1 -> 4x4x32 -> 2x2x64 (strided 4x4 convolutions, LeakyReLU 0.2, batch norm but
        on the first layer) -> logit; N(0, 0.02) init; non-saturating loss; one
        discriminator update per generator update; Adam lr 2e-4, b1 0.5 for both (DCGAN's);
        batch 64, 2000 steps (128 epochs of the 1000 train images).
        Evaluators: `samples` (64 images from one fixed noise batch every 500 steps, PNGs
        under workdir/images/) and `sample_quality` (Fréchet distance, class entropy and
        confidence in the features of the classifier of configs/gen_digits_classifier.py,
        its workdir runs/gen_digits_classifier (best checkpoint, 99.1% validation accuracy),
        350 samples against the 350 validation images, every 1000 steps).
Target: issue 10: samples whose Fréchet distance is below the per-pixel baseline's samples'
        and whose class entropy is close to that of real test images.
Result: at step 2000, sample_quality: fd 7.86 (per-pixel baseline's samples: fd_baseline
        47.39; real test images: fd_real 2.07), class entropy 2.281 nats (real test images
        2.301, baseline 2.017; ln 10 = 2.303), confidence 0.909 (real 0.983, baseline
        0.764); at step 1000: fd 11.00, entropy 2.282. 400 s wall for the Run command on 2
        CPU cores shared with other jobs (load 6-12; 2026-12-03), after training the
        classifier (123 s). A wider net (generator 128/64, discriminator 64/128, 3000-5000
        steps) drew similar digits (not scored by sample_quality) at 2.5x the time per step.
Variants (the argument, comma-separated):
  minimax the saturating minimax generator loss log(1 - D(G(z))) instead (the comparison of
          Goodfellow et al.: its gradient vanishes while D rejects the samples easily).
          Measured (same command with :minimax, 340 s): D wins from step ~300 to ~1750
          (d_fake 0.003-0.02, the generator barely moves: grey blobs at step 1000, fd 88.3,
          entropy 1.454, worse than the per-pixel baseline), then the generator escapes:
          fd 18.29, entropy 2.261, confidence 0.846 at step 2000 (non-saturating: 7.86).
  smoke   2 steps of 4/8-wide networks, 4 samples, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants
from jaxlab.optim.defaults import default_optimizer_config

VARIANTS = ("", "minimax", "smoke", "minimax,smoke")
CLASSIFIER_WORKDIR = "runs/gen_digits_classifier"


def dcgan_optimizers(learning_rate: float = 2e-4, b1: float = 0.5) -> ml_collections.ConfigDict:
    """`config.optimizers` of a DCGAN: Adam(learning_rate, b1) for both networks."""
    sections = ml_collections.ConfigDict()
    for name in ("generator", "discriminator"):
        o = default_optimizer_config()
        o.name, o.learning_rate, o.b1 = "adam", learning_rate, b1
        sections[name] = o
    return sections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("minimax", "smoke"))
    c = default_config()
    c.dataset.name = "gen_digits"
    c.dataset.eval_split = "validation"
    c.dataset.shuffle_buffer = 1000
    c.task = ml_collections.ConfigDict(
        {"name": "gan", "latent_dim": 32, "loss": "non_saturating", "d_steps": 1}
    )
    c.model.name = "dcgan"
    c.model.generator_widths = (64, 32)
    c.model.discriminator_widths = (32, 64)
    c.optimizers = dcgan_optimizers()
    c.batch_size = 64
    c.eval_batch_size = 350
    c.num_train_steps = 2000
    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.checkpoint_every_steps = 1000
    c.best_metric = ""  # a GAN's losses do not rank its samples: keep the latest checkpoints
    c.evaluators = ml_collections.ConfigDict(
        {
            "samples": {"num": 64, "seed": 0, "every_steps": 500},
            "sample_quality": {"classifier": CLASSIFIER_WORKDIR, "every_steps": 1000},
        }
    )
    if "minimax" in variants:
        c.task.loss = "minimax"
    if "smoke" in variants:
        c.task.latent_dim = 4
        c.model.generator_widths = (8, 4)
        c.model.discriminator_widths = (4, 8)
        c.batch_size = 8
        c.num_train_steps = 2
        c.log_every_steps, c.eval_every_steps = 1, 2
        c.checkpoint_every_steps = 2
        c.evaluators = ml_collections.ConfigDict({"samples": {"num": 4, "every_steps": 2}})
    return finish_config(c)
