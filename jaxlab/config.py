"""The common experiment config: its defaults, and the checks run before anything starts.

Every experiment file in `configs/` reads its argument with `parse_variants`, starts from
`default_config()`, changes what it needs and ends with `finish_config` (which completes the
model section so that every model field can be overridden from the command line). The
checks here and in `jaxlab.optim`, `jaxlab.data` and `jaxlab.train.setup` raise `ConfigError`
(one line naming the problem and the valid choices) for anything wrong; the scripts turn it
into exit status 2 before writing a file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import ml_collections

PARALLEL_MODES = ("jit", "pmap")
BEST_MODES = ("max", "min")


class ConfigError(ValueError):
    """A config problem found before training starts (unknown name, bad value, missing data)."""


def default_config() -> ml_collections.ConfigDict:
    """Returns the common keys of every experiment with their defaults.

    Durations: exactly one of `num_train_steps` and `num_epochs` is positive (the other -1).
    Model keys other than `name` are passed to the model constructor; `num_classes` is
    filled in from the dataset when absent. `finish_config` adds the model's other fields.
    """
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.dataset = ml_collections.ConfigDict()
    c.dataset.name = "digits"
    c.dataset.data_dir = ""  # "" -> $TFDS_DATA_DIR or ~/tensorflow_datasets
    c.dataset.train_split = "train"
    c.dataset.eval_split = "test"
    c.dataset.shuffle_buffer = 10_000
    c.dataset.cache = True
    c.dataset.normalize = True  # images: standardize with the dataset's mean/std (False: [0, 1])
    c.dataset.augment = ""  # comma-separated train-only ops, e.g. "flip_lr,pad_crop"
    c.dataset.train_host_sharding = "interleave"  # or "split" (tfds.split_for_jax_process)
    c.dataset.prefetch = 2
    # >= 2: each train example carries 'views' [V, H, W, C] instead of 'image': V draws of
    # the augment ops on its image (two-view / contrastive methods); eval keeps 'image'.
    c.dataset.num_views = 0
    c.dataset.seq_len = 32  # token datasets: tokens per window (truncated BPTT), or padded length
    c.dataset.random_windows = False  # token streams: train windows at random offsets (GPT)
    c.dataset.tokenizer = "char"  # text datasets: 'char' or 'bpe'
    c.dataset.vocab_size = 0  # text datasets with tokenizer 'bpe': the subword vocabulary size

    c.model = ml_collections.ConfigDict()
    c.model.name = "small_cnn"

    c.task = ml_collections.ConfigDict()
    c.task.name = "classification"
    c.task.top_k = 5  # 0 disables the top-k accuracy metric (reported at eval only)
    c.task.label_smoothing = 0.0  # target 1 - eps*(K-1)/K on the label, eps/K elsewhere
    c.task.mixup_alpha = 0.0  # > 0: mixup with lambda ~ Beta(alpha, alpha) on train batches
    c.task.cutmix_alpha = 0.0  # > 0: cutmix (with mixup too, one of them per batch)

    # Imported here: jaxlab.optim imports this module (ConfigError).
    from jaxlab.optim.defaults import default_optimizer_config, default_schedule_config

    c.optimizer = default_optimizer_config()
    c.schedule = default_schedule_config()

    c.batch_size = 128
    c.eval_batch_size = 256
    c.num_train_steps = -1
    c.num_epochs = -1
    c.log_every_steps = 50
    # Also log the gradient, update and parameter global norms at the end of each log window.
    # Off by default: computing them under lax.cond on those steps costs about 15% of a small
    # MLP's step on XLA:CPU (scripts/bench.py), even on the steps that skip them.
    c.log_norms = False
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 500
    c.keep_checkpoints = 3
    c.best_metric = "accuracy"
    c.best_mode = "max"

    c.init_from = ""  # another workdir: load its parameters (transfer learning)
    c.init_head = "head"  # regex of the parameter paths re-created for the new task
    c.eval_tta = ""  # test-time augmentation at the final eval: "", "flip" or "flip,crops"

    c.early_stopping = ml_collections.ConfigDict()
    c.early_stopping.patience = 0  # evaluations without improvement before stopping; 0 = off
    c.early_stopping.min_delta = 0.0  # improvement needed over the best (on best_metric)

    c.parallel = ml_collections.ConfigDict()
    c.parallel.mode = "jit"

    c.distributed = ml_collections.ConfigDict()
    c.distributed.enabled = False  # also enabled by JAXLAB_COORDINATOR_ADDRESS
    c.distributed.coordinator_address = ""
    c.distributed.num_processes = 1
    c.distributed.process_id = 0
    return c


def check_choice(what: str, value: Any, choices: Iterable[str]) -> None:
    """Raises ConfigError unless `value` is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")


def check_positive(
    name: str, value: Any, *, allow_zero: bool = False, integer: bool = False
) -> None:
    """Raises ConfigError unless `value` is a (non-negative if allow_zero) number."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(
            f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}"
        )
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")


def check_finite(section: ml_collections.ConfigDict, prefix: str) -> None:
    """Raises ConfigError naming `prefix.key` for a NaN or infinite float anywhere in
    `section` (nested sections and tuples included): such a value passes every range check
    (all comparisons with NaN are false) and only shows later as a non-finite loss."""
    for key, value in section.items():
        name = f"{prefix}.{key}"
        if isinstance(value, ml_collections.ConfigDict):
            check_finite(value, name)
            continue
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")


def parse_variants(
    arg: str | None, valid: Iterable[str], unavailable: Mapping[str, str] | None = None
) -> set[str]:
    """Returns the set of comma-separated variant names in a config's argument
    (`configs/x.py:digits,smoke` -> {'digits', 'smoke'}; "" -> set()).

    Raises ConfigError naming the unknown variant(s) and the valid ones: without the check a
    misspelt variant would silently run the full experiment. `unavailable` maps variants
    that other configs have but this one cannot to the reason, given instead.
    """
    valid = list(valid)
    names = {a.strip() for a in (arg or "").split(",") if a.strip()}
    blocked = sorted(names & set(unavailable or {}))
    if blocked:
        raise ConfigError(unavailable[blocked[0]])
    unknown = sorted(names - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown config variant {', '.join(map(repr, unknown))}; valid choices: "
            f"{', '.join(valid) or 'none (this config takes no argument)'}"
            + (" (comma-separated)" if len(valid) > 1 else "")
        )
    return names


def finish_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The last call of every `configs/*.py` `get_config`: completes `config.model` with
    every config-representable constructor field of the model and its default
    (`jaxlab.models.complete_model_config`), so that `--config.model.KEY=...` reaches any of
    them while a misspelt key still fails. Returns `config`."""
    from jaxlab.models import complete_model_config  # jaxlab.models imports this module

    complete_model_config(config.model)
    return config
