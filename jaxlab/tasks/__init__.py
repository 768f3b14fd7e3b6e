"""Task registry: `get_task(config, num_classes)` builds the objective named by
`config.task.name`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ml_collections

from jaxlab.config import check_choice
from jaxlab.tasks.base import Task
from jaxlab.tasks.classification import make_classification_task

_REGISTRY: dict[str, Callable[..., Task]] = {
    "classification": make_classification_task,
}

__all__ = ["Task", "get_task", "list_tasks"]


def list_tasks() -> list[str]:
    """Returns the registered task names."""
    return sorted(_REGISTRY)


def get_task(config: ml_collections.ConfigDict, num_classes: int, **kwargs: Any) -> Task:
    """Builds the task named by `config.task.name` (extra keyword arguments, such as the
    classification task's `aux_loss_weight`, go to its factory); ConfigError lists the names."""
    check_choice("task", config.task.name, list_tasks())
    return _REGISTRY[config.task.name](config, num_classes, **kwargs)
