"""Trains one experiment: `python -m scripts.train --config configs/digits_cnn.py --workdir runs/x`.

Overrides: `--config.optimizer.learning_rate=0.01 --config.num_train_steps=500`. Re-running
the same command resumes from the workdir's latest checkpoint. `--mock_data=N` runs the
config on N generated examples per split (TFDS mock data), e.g. an ImageNet config here.
Exit status 2 for bad input (config, variants, names, values, missing data, a busy workdir or
one that is a file), 1 for a diverged run.
"""

from __future__ import annotations

import os
import sys
import time

LAUNCH_TIME = time.time()  # before the heavy imports: the loop reports the time to step 1
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from scripts.cli import (  # noqa: E402
    fail,
    import_tensorflow_quietly,
    load_config_or_fail,
    parse_flags_or_fail,
    quiet_library_logs,
)

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (configs/*.py).", lock_config=True
)
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, logs, metrics, plots.")
flags.DEFINE_integer(
    "mock_data",
    0,
    "Run on generated data instead: N random examples per split from "
    "tfds.testing.mock_data (any dataset, nothing downloaded; a check of a config before a "
    "long run, not a result). 0: the real data.",
)


def check_workdir(workdir: str) -> None:
    """Exits 2 unless `workdir` is a directory or can be created as one (not an existing
    file, not below one)."""
    path = os.path.abspath(workdir)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent
    if not os.path.isdir(path):
        what = "is" if path == os.path.abspath(workdir) else f"is inside {path!r}, which is"
        fail(f"--workdir {workdir!r} {what} an existing file, not a directory")


def _source_or_none(get_source, config):
    """The dataset's source, or None for an unknown name (reported later, in one line)."""
    try:
        return get_source(config.dataset.name)
    except Exception:  # noqa: BLE001 - train_and_evaluate names the problem
        return None


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS.workdir:
        fail("--workdir is required (the run directory, e.g. runs/digits_cnn)")
    check_workdir(flags.FLAGS.workdir)
    config = load_config_or_fail(_CONFIG)
    quiet_library_logs()
    from jaxlab.data.registry import get_source
    from jaxlab.data.text_sources import TFDS_TEXT_SOURCES
    from jaxlab.data.tfds_source import TfdsSource

    source = _source_or_none(get_source, config)
    tfds_text = tuple({type(s) for s in TFDS_TEXT_SOURCES.values()})
    if flags.FLAGS.mock_data or isinstance(source, (TfdsSource, *tfds_text)):
        import_tensorflow_quietly()  # generated datasets never load TensorFlow

    from jaxlab.config import ConfigError
    from jaxlab.train import NonFiniteLossError, WorkdirBusyError, train_and_evaluate

    mock = flags.FLAGS.mock_data
    if mock < 0:
        fail(f"--mock_data must be >= 0 (examples per split; 0 = real data), got {mock}")
    try:
        if mock:
            import tensorflow_datasets as tfds

            with tfds.testing.mock_data(num_examples=mock):
                metrics = train_and_evaluate(
                    config, flags.FLAGS.workdir, async_checkpoints=False, launch_time=LAUNCH_TIME
                )
        else:
            metrics = train_and_evaluate(config, flags.FLAGS.workdir, launch_time=LAUNCH_TIME)
    except (ConfigError, WorkdirBusyError) as e:
        fail(str(e))
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print("final eval: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
