"""The learning-rate range test run through the real training loop.

The rate grows exponentially from `min_lr` to `max_lr` over `num_steps` steps (config.schedule
becomes `exponential` with decay_rate = max_lr / min_lr > 1); every step's loss is logged;
the suggested rates come from `jaxlab.optim.lr_range.suggest_learning_rates`.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import ml_collections
import numpy as np

from jaxlab.config import ConfigError
from jaxlab.optim.lr_range import smooth_losses, suggest_learning_rates
from jaxlab.train import NonFiniteLossError, train_and_evaluate
from jaxlab.train.reporting import METRICS_FILE, read_metrics

RESULT_FILE = "lr_find.json"
PLOT_FILE = "lr_find.png"


def range_test_config(
    config: ml_collections.ConfigDict, min_lr: float, max_lr: float, num_steps: int
) -> ml_collections.ConfigDict:
    """The experiment config turned into a range test: exponential rate, a loss every step,
    no evaluation before the end and no checkpoints before the end."""
    if not 0 < min_lr < max_lr:
        raise ConfigError(f"the range test needs 0 < min_lr < max_lr, got {min_lr}, {max_lr}")
    if num_steps < 3:
        raise ConfigError(f"the range test needs at least 3 steps, got {num_steps}")
    c = copy.deepcopy(config)
    c.unlock()
    c.optimizer.learning_rate = float(min_lr)
    c.schedule.name = "exponential"
    c.schedule.warmup_steps = 0
    c.schedule.decay_rate = float(max_lr) / float(min_lr)
    c.schedule.decay_steps = int(num_steps) - 1
    c.num_train_steps, c.num_epochs = int(num_steps), -1
    c.log_every_steps = 1
    c.eval_every_steps = 0
    c.checkpoint_every_steps = 0
    c.early_stopping.patience = 0
    c.lock()
    return c


def run_range_test(
    config: ml_collections.ConfigDict,
    workdir: str,
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    num_steps: int = 100,
) -> dict[str, Any]:
    """Trains with the growing rate, writes `lr_find.json` and `lr_find.png` into `workdir`
    and returns the suggestions (`max_lr`, `base_lr`, ...) with the curve (`lrs`, `losses`)."""
    test_config = range_test_config(config, min_lr, max_lr, num_steps)
    try:
        train_and_evaluate(test_config, workdir)
    except NonFiniteLossError:
        pass  # divergence at high rates is the expected end of a range test
    rows = [r for r in read_metrics(os.path.join(workdir, METRICS_FILE)) if "train/loss" in r]
    lrs = np.array([r["train/learning_rate"] for r in rows])
    losses = np.array([r["train/loss"] for r in rows])
    finite = np.isfinite(losses)
    lrs, losses = lrs[finite], losses[finite]
    try:
        result: dict[str, Any] = suggest_learning_rates(lrs, losses)
    except ValueError as e:
        raise ConfigError(f"range test inconclusive: {e}") from None
    result.update(
        min_lr=min_lr,
        max_lr_tested=max_lr,
        num_steps=len(lrs),
        lrs=lrs.tolist(),
        losses=losses.tolist(),
    )
    with open(os.path.join(workdir, RESULT_FILE), "w") as f:
        json.dump(result, f, indent=2)
    plot_range_test(lrs, losses, result, os.path.join(workdir, PLOT_FILE))
    return result


def plot_range_test(lrs: np.ndarray, losses: np.ndarray, result: dict[str, Any], path: str) -> None:
    """Loss (raw and smoothed) against the rate on a log axis, with the suggested rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(lrs, losses, alpha=0.3, label="loss")
    ax.plot(lrs, smooth_losses(losses), label="smoothed loss")
    ax.axvline(result["max_lr"], color="r", ls="--", label=f"max lr {result['max_lr']:.3g}")
    ax.axvline(result["base_lr"], color="g", ls=":", label=f"base lr {result['base_lr']:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("train loss")
    top = np.percentile(losses, 95)
    ax.set_ylim(min(losses) * 0.9, top * 1.1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
