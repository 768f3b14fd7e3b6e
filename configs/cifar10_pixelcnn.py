"""A gated PixelCNN on CIFAR-10 (TFDS 'cifar10', 8-bit RGB, 256 levels per subpixel, R < G < B
within a pixel; needs the prepared data, see README: Data).

Run:    python -m scripts.train --config configs/cifar10_pixelcnn.py \
            --workdir runs/cifar10_pixelcnn
Smoke:  --config configs/cifar10_pixelcnn.py:smoke (the tests run it under
        tfds.testing.mock_data)
Recipe: gated PixelCNN (jaxlab/models/pixelcnn.py): a 7 x 7 first layer, 15 gated blocks of
        3 x 3 vertical / 1 x 3 horizontal kernels, 126 features (3 channel groups of 42),
        256-way softmax per subpixel; Adam lr 1e-3 with cosine decay, batch 64, 100 epochs.
        (van den Oord et al. 2016b used 20 layers of 384 features and many GPU-days.)
Target: test 3.03 bits/dim: gated PixelCNN (van den Oord et al. 2016b, "Conditional Image
        Generation with PixelCNN Decoders", Table 1); the plain PixelCNN reaches 3.14
        (van den Oord et al. 2016a, "Pixel Recurrent Neural Networks", Table 5).
Result: not measured here (this machine cannot download CIFAR-10; the full run needs an
        accelerator).
Variants (the argument):
  smoke   3 steps of a one-block 6-wide model on the mock data, no samples, for tests.
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")


def tfds_pixelcnn_config(
    arg: str,
    dataset: str,
    *,
    binarize: str,
    levels: int,
    features: int,
    num_layers: int,
    num_epochs: int,
    eval_every_steps: int,
    smoke_features: int,
) -> ml_collections.ConfigDict:
    """The gated PixelCNN recipe on a TFDS image set ([0, 1] images, test split for eval);
    `arg == 'smoke'` gives a one-block model and 3 steps, for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = dataset
    c.dataset.eval_split = "test"
    c.dataset.normalize = False
    c.task = ml_collections.ConfigDict(
        {"name": "pixelcnn", "binarize": binarize, "sample_temperature": 1.0}
    )
    c.model.name = "pixelcnn"
    c.model.levels = levels
    c.model.features = features
    c.model.num_layers = num_layers
    c.model.gated = True
    c.model.kernel_size = 3
    c.model.first_kernel_size = 7
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.schedule.name = "cosine"
    c.batch_size = 64
    c.eval_batch_size = 500
    c.num_epochs = num_epochs
    c.log_every_steps = 100
    c.eval_every_steps = c.checkpoint_every_steps = eval_every_steps
    c.best_metric = "loss"
    c.best_mode = "min"
    c.evaluators = ml_collections.ConfigDict({"samples": {"num": 16}})
    if "smoke" in variants:
        c.model.features, c.model.num_layers, c.model.first_kernel_size = smoke_features, 1, 3
        c.batch_size, c.eval_batch_size = 8, 24
        c.num_epochs, c.num_train_steps = -1, 3
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 3
        c.evaluators = ml_collections.ConfigDict()
    return finish_config(c)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    return tfds_pixelcnn_config(
        arg,
        "cifar10",
        binarize="",
        levels=256,
        features=126,
        num_layers=15,
        num_epochs=100,
        eval_every_steps=5000,
        smoke_features=6,
    )
