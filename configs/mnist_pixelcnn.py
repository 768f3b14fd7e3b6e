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

from configs.cifar10_pixelcnn import VARIANTS as VARIANTS  # the same documented arguments
from configs.cifar10_pixelcnn import tfds_pixelcnn_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    return tfds_pixelcnn_config(
        arg,
        "mnist",
        binarize="dynamic",
        levels=2,
        features=64,
        num_layers=8,
        num_epochs=20,
        eval_every_steps=2000,
        smoke_features=4,
    )
