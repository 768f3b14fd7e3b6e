"""The generic training loop and its parts (state, steps, parallelism, checkpoints, logs)."""

from jaxlab.train.loop import NonFiniteLossError, WorkdirBusyError, train_and_evaluate

__all__ = ["NonFiniteLossError", "WorkdirBusyError", "train_and_evaluate"]
