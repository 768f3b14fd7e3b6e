"""A triplet-loss embedding of MNIST (TFDS 'mnist'; needs the prepared data, see README: Data).

Run:    python -m scripts.train --config configs/mnist_triplet.py --workdir runs/mnist_triplet
        python -m scripts.embed --workdir runs/mnist_triplet --method tsne
Recipe: the small conv net (32-64-128 channels, BN, global pooling) with a 64-D head,
        triplet loss (margin 0.2) on L2-normalized embeddings with batch-hard mining in
        random batches of 128 (about 13 examples of each of the 10 classes, so every anchor
        has positives; `dataset.pk_classes` needs an in-memory source and TFDS 'mnist' is
        not one), Adam lr 1e-3 with a cosine decay, 5 epochs; evaluated by kNN (k 3, L2)
        from the train embeddings and Recall@k on the test set.
Target: kNN test accuracy >= 0.99 (the same net trained as a classifier reaches about
        0.993; embeddings of this size trained with the triplet loss are reported at about
        0.99 kNN accuracy on MNIST in the metric-learning literature).
Result: not measured here (this machine cannot download MNIST).
Variants (the argument):
  random  random triplets with augmented positives instead of batch-hard mining.
  smoke   a few steps of a tiny net, for tests (run under tfds.testing.mock_data).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "random", "smoke")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config for the variants of `arg` (see the module docstring)."""
    variants = parse_variants(arg, ("random", "smoke"))
    c = default_config()
    c.dataset.name = "mnist"
    c.task = ml_collections.ConfigDict(
        {
            "name": "metric_learning",
            "margin": 0.2,
            "sampling": "random" if "random" in variants else "batch_hard",
            "embedding_dim": 64,
            "projector_dims": (),
            "augment_positives": "random" in variants,
            "augment_shift": 2,
            "augment_jitter": 0.2,
        }
    )
    c.model.name = "small_cnn"
    c.model.widths = (32, 64, 128)
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.weight_decay = 0.0
    c.schedule.name = "cosine"
    c.best_metric, c.best_mode = "loss", "min"
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = 5
    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.checkpoint_every_steps = 1000
    c.evaluators = ml_collections.ConfigDict(
        {"knn": {"k": 3, "metric": "l2"}, "recall": {"ks": (1, 2, 4, 8)}}
    )
    if "smoke" in variants:
        c.model.widths = (4,)
        c.task.embedding_dim = 4
        c.batch_size, c.eval_batch_size = 8, 8
        c.num_epochs, c.num_train_steps = -1, 2
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
        c.evaluators = ml_collections.ConfigDict()  # digits_triplet:smoke runs knn, recall
    return finish_config(c)
