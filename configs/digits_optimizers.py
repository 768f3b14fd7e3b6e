"""The optimizer comparison: the default digits conv net trained with each optimizer.

Run one:  python -m scripts.train --config configs/digits_optimizers.py:eve --workdir runs/optim/eve
Run all and compare the curves in TensorBoard (README: "Comparing optimizers"):
    for o in sgd momentum nesterov adagrad rmsprop rprop adam adamw lamb eve esgd; do
      python -m scripts.train --config configs/digits_optimizers.py:$o --workdir runs/optim/$o
    done
    tensorboard --logdir runs/optim
The argument is the optimizer name, optionally followed by ",smoke" for a few steps.
Rates below were picked per optimizer for this problem; the README lists what each reached.
"""

from __future__ import annotations

import ml_collections

from configs.digits_cnn import get_config as digits_cnn_config
from jaxlab.config import ConfigError, finish_config, parse_variants
from jaxlab.optim.defaults import default_optimizer_config, default_schedule_config

SMOKE_ARG = "adam,smoke"  # what the config tests pass to get_config

# (learning rate, extra optimizer settings) per optimizer for the digits conv net.
RECIPES: dict[str, tuple[float, dict]] = {
    "sgd": (0.1, {}),
    "momentum": (0.02, {"momentum": 0.9}),
    "nesterov": (0.02, {"momentum": 0.9}),
    "adagrad": (0.05, {}),
    "rmsprop": (1e-3, {}),
    "rprop": (1e-3, {}),  # sign-based: meant for full batches (see below)
    "adam": (3e-3, {}),
    "adamw": (3e-3, {"weight_decay": 1e-4}),
    "lamb": (1e-2, {}),
    "eve": (3e-3, {}),
    "esgd": (0.05, {}),
}


# The documented arguments: an optimizer name, optionally with ",smoke".
VARIANTS = (*RECIPES, *(f"{name},smoke" for name in RECIPES))


def get_config(arg: str = "adam") -> ml_collections.ConfigDict:
    """Returns digits_cnn with the optimizer named by `arg` ("NAME" or "NAME,smoke"; "smoke"
    alone means "adam,smoke").

    Only the optimizer differs between the runs: each starts from the optimizer and schedule
    defaults (a constant rate, no warmup, clipping or weight decay), not from digits_cnn's
    own AdamW chain, and gets the rate (and settings) of `RECIPES`.
    """
    variants = parse_variants(arg, (*RECIPES, "smoke"))
    names = sorted(variants - {"smoke"}) or ["adam"]
    if len(names) > 1:
        raise ConfigError(
            f"configs/digits_optimizers.py runs one optimizer, got {', '.join(names)}; "
            "the argument is NAME or NAME,smoke"
        )
    name, mode = names[0], "smoke" if "smoke" in variants else ""
    c = digits_cnn_config(mode)
    c.optimizer = default_optimizer_config()
    c.schedule = default_schedule_config()
    lr, extra = RECIPES[name]
    c.optimizer.name = name
    c.optimizer.learning_rate = lr
    for key, value in extra.items():
        c.optimizer[key] = value
    if name == "rprop":
        # Rprop adapts step sizes from gradient signs: it needs the full-batch gradient.
        c.batch_size = 1437  # the whole digits train split: one step per epoch
        if mode != "smoke":
            c.num_epochs = 150
            c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 10
    return finish_config(c)
