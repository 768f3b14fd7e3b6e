"""The default experiment against scikit-learn's SVC() and KNeighborsClassifier(3), side by side.

    python -m scripts.compare_sklearn --workdir runs/digits_cnn   # a finished digits run
    python -m scripts.compare_sklearn                             # trains configs/digits_cnn.py

All three are scored on the same 360 test images (`jaxlab.data.load_digits_split()`, the
split the `digits` TFDS builder serves). scikit-learn fits the flattened raw 0..16 train
images with default settings. The jaxlab accuracy is the last 'eval/accuracy' of the
workdir's metrics.jsonl, or, without --workdir, the final evaluation of a fresh run of
--config (default configs/digits_cnn.py; overrides such as --config.num_epochs=5 apply) in
a temporary workdir. Expect (configs/digits_cnn.py): jaxlab >= 98.5%, above both baselines.
Exit status 2 with one line for bad input.
"""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from scripts.cli import fail, parse_flags_or_fail, quiet_library_logs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_ACCURACY = 0.985

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    os.path.join(ROOT, "configs", "digits_cnn.py"),
    "Experiment to train when --workdir is not given.",
    lock_config=True,
)
flags.DEFINE_string("workdir", None, "A finished digits run to read the accuracy from.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.workdir and FLAGS["config"].present:
        fail("give --workdir (a finished run) or --config (a run to train), not both")
    if FLAGS.workdir and not os.path.isdir(FLAGS.workdir):
        fail(f"--workdir {FLAGS.workdir} is not a directory")
    quiet_library_logs()

    from jaxlab.analysis.baselines import (
        RunMetricsError,
        format_scores,
        run_score,
        score_from_accuracy,
        sklearn_baselines,
    )

    baselines = sklearn_baselines()
    total = baselines[0].total
    if FLAGS.workdir:
        try:
            jaxlab = run_score(FLAGS.workdir, total)
        except RunMetricsError as e:
            fail(str(e))
        source = FLAGS.workdir
    else:
        config = _CONFIG.value
        jaxlab = score_from_accuracy(f"jaxlab {config.model.name}", _train(config), total)
        source = "a fresh run of --config"
    print(f"Test accuracy on the {total} test images of the digits split (jaxlab: {source})")
    print(format_scores([jaxlab, *baselines]))
    beats = all(jaxlab.correct > b.correct for b in baselines)
    print(
        f"jaxlab beats both baselines: {'yes' if beats else 'no'}; "
        f"reaches {100 * TARGET_ACCURACY:.1f}%: "
        f"{'yes' if jaxlab.accuracy >= TARGET_ACCURACY else 'no'}",
        flush=True,
    )


def _train(config: ml_collections.ConfigDict) -> float:
    """Trains `config` in a temporary workdir; returns its final eval accuracy."""
    from jaxlab.config import ConfigError
    from jaxlab.train import NonFiniteLossError, train_and_evaluate

    if config.dataset.name != "digits" or config.dataset.eval_split != "test":
        fail(
            "--config must evaluate on the digits test split (dataset.name 'digits', "
            "dataset.eval_split 'test') to be compared with the baselines"
        )
    with tempfile.TemporaryDirectory(prefix="jaxlab-compare-") as workdir:
        try:
            metrics = train_and_evaluate(config, workdir)
        except ConfigError as e:
            fail(str(e))
        except NonFiniteLossError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
    return float(metrics["accuracy"])


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
