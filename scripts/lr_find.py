"""The learning-rate range test: `python -m scripts.lr_find --config configs/digits_cnn.py
--workdir runs/lr_find [--min_lr 1e-6 --max_lr 10 --steps 100]`.

Prints the suggested maximum rate (steepest descent before the loss rises) and base rate
(a third to a quarter of it); writes lr_find.json and lr_find.png into the workdir.
"""

from __future__ import annotations

import os

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

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory of the range test (a fresh one).")
flags.DEFINE_float("min_lr", 1e-6, "Rate of the first step.")
flags.DEFINE_float("max_lr", 10.0, "Rate of the last step.")
flags.DEFINE_integer("steps", 100, "Number of steps.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS.workdir:
        fail("--workdir is required")
    config = load_config_or_fail(_CONFIG)
    quiet_library_logs()
    import_tensorflow_quietly()
    from jaxlab.analysis.lr_find import PLOT_FILE, RESULT_FILE, run_range_test
    from jaxlab.config import ConfigError
    from jaxlab.train import WorkdirBusyError

    f = flags.FLAGS
    if os.path.exists(os.path.join(f.workdir, "checkpoints")):
        fail(f"workdir {f.workdir} already holds a run; the range test needs a fresh one")
    try:
        result = run_range_test(config, f.workdir, f.min_lr, f.max_lr, f.steps)
    except (ConfigError, WorkdirBusyError) as e:
        fail(str(e))
    print(f"suggested max lr:  {result['max_lr']:.4g}  (steepest descent of the smoothed loss)")
    print(
        f"suggested base lr: {result['base_lr']:.4g} .. {result['base_lr_low']:.4g} "
        "(a third to a quarter of it)"
    )
    if result["diverged_lr"] is not None:
        print(f"loss diverged from lr {result['diverged_lr']:.4g}")
    print(f"wrote {os.path.join(f.workdir, RESULT_FILE)} and {os.path.join(f.workdir, PLOT_FILE)}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
