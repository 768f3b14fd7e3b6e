"""A VAE on binarized MNIST, in the setting of the flax VAE example (examples/vae).

Run:    python -m scripts.train --config configs/mnist_vae.py --workdir runs/mnist_vae
Recipe: the flax example's model and training: MLP encoder 784-500-(20 mean, 20 log-variance)
        and decoder 20-500-784 (ReLU), Bernoulli decoder, 20 latents, Adam lr 1e-3, batch
        128, 10 epochs. Images are binarized by the task: `task.binarize = 'dynamic'` (a
        fresh Bernoulli sample of each image's intensities at every step, the closest to
        the sampled binarization of the example's `binarized_mnist`); evaluation on the
        test split (binarized by the eval step's fixed keys).
Target: test -ELBO about 104 nats per image after 10 epochs (the flax example's reported
        test loss; minutes on an accelerator). Not measured here: this machine has no
        MNIST download; the smoke variant runs on TFDS mock data in the tests.
Variants (the argument):
  smoke   4 steps of a 16-wide VAE for tests (TFDS mock data;
          the eval pass only).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "mnist"
    c.dataset.eval_split = "test"
    c.dataset.normalize = False  # images in [0, 1]
    c.task = ml_collections.ConfigDict(
        {"name": "vae", "likelihood": "bernoulli", "binarize": "dynamic"}
    )
    c.model.name = "vae"
    c.model.backbone = "mlp"
    c.model.sizes = (500,)
    c.model.latent_dim = 20
    c.model.activation = "relu"
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.schedule.name = "constant"
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = 10
    c.log_every_steps = 100
    c.eval_every_steps = 468
    c.checkpoint_every_steps = 468
    c.best_metric, c.best_mode = "loss", "min"
    c.evaluators = ml_collections.ConfigDict(
        {
            "samples": {"num": 64, "every_steps": 468},
            "reconstructions": {"num": 16},
            "interpolations": {"pairs": 4, "steps": 8},
            "latent_scatter": {"num": 2000},
            "iwae": {"k": (1, 100)},
        }
    )
    if "smoke" in variants:
        c.model.sizes, c.model.latent_dim = (16,), 2
        c.batch_size, c.eval_batch_size = 8, 12
        c.num_epochs, c.num_train_steps = -1, 4
        c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps = 2, 4, 4
        c.evaluators = ml_collections.ConfigDict()  # the loop's eval only
    return finish_config(c)
