"""`python -m tests.train.two_view_run DATA_DIR WORKDIR MODE`: the two-view protocol task
in a fresh process (the device count is fixed when JAX starts)."""

from __future__ import annotations

import sys

from jaxlab.train import train_and_evaluate
from tests.train import protocol_tasks  # noqa: F401  (registers the tasks)
from tests.train.test_protocol import contrastive_config

if __name__ == "__main__":
    data_dir, workdir, mode = sys.argv[1:4]
    config = contrastive_config(data_dir)
    config.parallel.mode = mode
    train_and_evaluate(config, workdir, async_checkpoints=False)
