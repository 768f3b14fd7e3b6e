"""Sequence classification: one label per sequence (sentiment of a review, the digit of an
MNIST-1D signal), softmax cross entropy, accuracy and top-k accuracy.

The classification task's loss and eval functions (`make_classification_fns`: label
smoothing, masked eval, top-k) on a sequence input, with `SupervisedTask`. The model is a
sequence classifier of the registry (`model(x, train=...) -> logits [B, num_classes]`),
built with the dataset's `num_classes` and, for token inputs, its `vocab_size`.

The input feature: `config.task.input_key` when set, else 'inputs' (int32 tokens [T], PAD = 0
is padding, which the model must ignore) when the dataset has it, else 'x' (float32
vectors [T, D]). Mixup and cutmix mix images and are refused here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections

from jaxlab.config import ConfigError, check_choice
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import TaskSetup
from jaxlab.tasks.classification import make_classification_fns
from jaxlab.tasks.language_model import model_kwargs
from jaxlab.tasks.supervised import SupervisedTask

INPUT_KEYS = ("inputs", "x")


def sequence_input_key(task_config: ml_collections.ConfigDict, features: Mapping[str, Any]) -> str:
    """The batch feature the classifier reads (see the module docstring); ConfigError when
    `task.input_key` names none of the dataset's features, or it has neither default."""
    key = task_config.get("input_key", "") or ""
    if key:
        check_choice("task.input_key", key, list(features))
        return key
    for candidate in INPUT_KEYS:
        if candidate in features:
            return candidate
    raise ConfigError(
        f"task 'sequence_classification' needs an 'inputs' or 'x' feature (or task.input_key); "
        f"the dataset has {', '.join(features)}"
    )


def make_sequence_classification_task(setup: TaskSetup) -> SupervisedTask:
    """Builds the sequence-classification task of `setup.config` (see the module
    docstring). Raises ConfigError for a dataset without classes or a usable input, mixing,
    and the classification task's bad values (top_k, label_smoothing)."""
    config, info = setup.config, setup.info
    if not getattr(info, "num_classes", None):
        raise ConfigError(
            f"task 'sequence_classification' needs a dataset with classes; {info.name!r} has none"
        )
    for key in ("mixup_alpha", "cutmix_alpha"):
        if config.task.get(key, 0.0):
            raise ConfigError(
                f"task.{key} mixes images; task 'sequence_classification' needs it 0, "
                f"got {config.task[key]!r}"
            )
    input_key = sequence_input_key(config.task, info.features)
    num_classes = int(info.num_classes)
    context = {"num_classes": num_classes}
    if info.vocab_size:
        context["vocab_size"] = int(info.vocab_size)
    model = build_model(config.model.name, model_kwargs(config.model), **context)
    loss_fn, eval_fn, train_names, eval_names = make_classification_fns(
        config.task, num_classes, 0.0, input_key=input_key
    )
    return SupervisedTask(
        name="sequence_classification",
        model=model,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        optimizer=setup.optimizer(),
        input_key=input_key,
        train_metric_names=train_names,
        eval_metric_names=eval_names,
        ema_decay=ema_decay(config),
        norms_every=config.log_every_steps if config.get("log_norms") else None,
    )
