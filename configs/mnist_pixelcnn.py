"""A gated PixelCNN on binarized MNIST (TFDS 'mnist', [0, 1] images binarized by the task;
needs the prepared data, see README: Data).

Run:    python -m scripts.train --config configs/mnist_pixelcnn.py --workdir runs/mnist_pixelcnn
Smoke:  --config configs/mnist_pixelcnn.py:smoke (the tests run it under tfds.testing.mock_data)
Recipe: gated PixelCNN (jaxlab/models/pixelcnn.py) with 2 levels per pixel: a 7 x 7 first
        layer, 8 gated blocks of 3 x 3 vertical / 1 x 3 horizontal kernels, 64 features;
        dynamic binarization (a fresh Bernoulli(intensity) draw per step, also at eval);
        Adam lr 1e-3 with cosine decay, batch 64, 20 epochs.
Target: test NLL about 81.3 nats/image: PixelCNN on binarized MNIST in van den Oord et al.
        2016a, "Pixel Recurrent Neural Networks", Table 4 (81.30; Row LSTM 80.54, Diagonal
        BiLSTM 79.20). That number is for the fixed, stochastically binarized MNIST of
        Salakhutdinov & Murray (2008); this config binarizes TFDS mnist dynamically, so its
        number is close in scale but not the same benchmark.
Result: not measured here (this machine cannot download MNIST).
Variants (the argument):
  smoke   3 steps of a one-block 4-wide model on the mock data, no samples, for tests.
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
    c.dataset.normalize = False
    c.task = ml_collections.ConfigDict(
        {"name": "pixelcnn", "binarize": "dynamic", "sample_temperature": 1.0}
    )
    c.model.name = "pixelcnn"
    c.model.levels = 2
    c.model.features = 64
    c.model.num_layers = 8
    c.model.gated = True
    c.model.kernel_size = 3
    c.model.first_kernel_size = 7
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.schedule.name = "cosine"
    c.batch_size = 64
    c.eval_batch_size = 500
    c.num_epochs = 20
    c.log_every_steps = 100
    c.eval_every_steps = 2000
    c.checkpoint_every_steps = 2000
    c.best_metric = "loss"
    c.best_mode = "min"
    c.evaluators = ml_collections.ConfigDict({"samples": {"num": 16}})
    if "smoke" in variants:
        c.model.features, c.model.num_layers, c.model.first_kernel_size = 4, 1, 3
        c.batch_size, c.eval_batch_size = 8, 24
        c.num_epochs, c.num_train_steps = -1, 3
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 3
        c.evaluators = ml_collections.ConfigDict()
    return finish_config(c)
