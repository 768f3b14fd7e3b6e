"""A linear classifier with the multiclass SVM loss (hinge, margin 1) on the offline
digits (pixels standardized), trained by the loop; compared with scikit-learn's LinearSVC() on the same split.

Run:    python -m scripts.train --config configs/digits_svm.py --workdir runs/digits_svm
Smoke:  --config configs/digits_svm.py:smoke
Result: 96.39% test accuracy (measured, 1100 steps, 2m44s wall on the shared 2-core
        machine under heavy load); scikit-learn's LinearSVC() on pixels / 16: 96.67%
        (the issue's target: at least that minus 1 point, 95.67%).
"""

from __future__ import annotations

import ml_collections

from jaxlab.config import default_config, finish_config, parse_variants

VARIANTS = ("", "smoke")  # the documented arguments


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config; `arg == 'smoke'` gives a tiny run for tests."""
    variants = parse_variants(arg, ("smoke",))
    c = default_config()
    c.dataset.name = "digits"
    c.model.name = "linear"
    c.task = ml_collections.ConfigDict({"name": "linear_svm"})
    c.optimizer.name = "sgd"
    c.optimizer.momentum = 0.9
    c.optimizer.learning_rate = 0.02
    c.optimizer.weight_decay = 1e-4  # the L2 penalty (biases exempt)
    c.schedule.name = "cosine"
    c.batch_size = 64
    c.eval_batch_size = 120
    c.num_epochs = 50
    c.log_every_steps = 22
    c.eval_every_steps = 220
    c.checkpoint_every_steps = 220
    if "smoke" in variants:
        c.num_epochs, c.num_train_steps = -1, 4
        c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    return finish_config(c)
