"""The generic training loop and its parts (state, steps, parallelism, checkpoints, logs,
evaluators)."""

from jaxlab.train.evaluation import (
    DatasetEvaluator,
    EvalContext,
    EvalResult,
    Evaluator,
    register_evaluator,
)
from jaxlab.train.loop import train_and_evaluate
from jaxlab.train.setup import Experiment, build_experiment
from jaxlab.train.trainer import NonFiniteLossError, Trainer
from jaxlab.train.workdir import WorkdirBusyError

__all__ = [
    "DatasetEvaluator",
    "EvalContext",
    "EvalResult",
    "Evaluator",
    "Experiment",
    "NonFiniteLossError",
    "Trainer",
    "WorkdirBusyError",
    "build_experiment",
    "register_evaluator",
    "train_and_evaluate",
]
