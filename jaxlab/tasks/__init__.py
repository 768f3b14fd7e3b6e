"""Task registry: `get_task(setup)` builds the objective named by `config.task.name`.

A task factory takes a `TaskSetup` (config, dataset info, duration, device axis, named
optimizers) and returns a `Task`. Register a new objective with `register_task(name,
factory)`; `list_tasks()` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxlab.config import check_choice
from jaxlab.tasks.base import Optimizer, StepContext, Task, TaskSetup
from jaxlab.tasks.classification import make_classification_task
from jaxlab.tasks.supervised import SupervisedState, SupervisedTask

TaskFactory = Callable[[TaskSetup], Task]
_REGISTRY: dict[str, TaskFactory] = {
    "classification": make_classification_task,
}

__all__ = [
    "Optimizer",
    "StepContext",
    "SupervisedState",
    "SupervisedTask",
    "Task",
    "TaskSetup",
    "get_task",
    "list_tasks",
    "register_task",
]


def list_tasks() -> list[str]:
    """Returns the registered task names."""
    return sorted(_REGISTRY)


def register_task(name: str, factory: TaskFactory) -> None:
    """Makes `config.task.name = name` build its task with `factory(setup)`."""
    _REGISTRY[name] = factory


def get_task(setup: TaskSetup) -> Task:
    """Builds the task named by `setup.config.task.name`; ConfigError lists the names."""
    check_choice("task", setup.config.task.name, list_tasks())
    return _REGISTRY[setup.config.task.name](setup)

from jaxlab.tasks.seq2seq import make_seq2seq_task  # noqa: E402

_REGISTRY["seq2seq"] = make_seq2seq_task
from jaxlab.tasks.pointer import make_pointer_task  # noqa: E402

_REGISTRY["pointer"] = make_pointer_task
