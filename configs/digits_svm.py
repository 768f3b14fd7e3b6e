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

from configs.digits_softmax import VARIANTS as VARIANTS  # the same documented arguments
from configs.digits_softmax import get_config as digits_softmax
from jaxlab.config import finish_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the experiment config: the softmax config's recipe with the hinge loss and a
    fifth of its rate; `arg == 'smoke'` gives a tiny run for tests."""
    c = digits_softmax(arg)
    c.task = ml_collections.ConfigDict({"name": "linear_svm"})
    c.optimizer.learning_rate = 0.02
    return finish_config(c)
