"""Ensemble evaluation:
`python -m scripts.ensemble_eval --workdirs runs/a,runs/b [--checkpoints latest|best|all]`.

Averages the predicted probabilities of the chosen checkpoints of the given workdirs (same
model and dataset) and prints every member's test accuracy beside the ensemble's.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from scripts.cli import fail, import_tensorflow_quietly, parse_flags_or_fail, quiet_library_logs  # noqa: E402

flags.DEFINE_list("workdirs", [], "Workdirs of finished runs.")
flags.DEFINE_enum("checkpoints", "latest", ["latest", "best", "all"], "Checkpoints per workdir.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    if not f.workdirs:
        fail("--workdirs is required (comma-separated run directories)")
    for w in f.workdirs:
        if not os.path.isdir(w):
            fail(f"workdir not found: {w!r}")
    quiet_library_logs()
    import_tensorflow_quietly()
    from jaxlab.analysis.ensemble import ensemble_from_workdirs
    from jaxlab.config import ConfigError

    try:
        result = ensemble_from_workdirs(f.workdirs, f.checkpoints)
    except ConfigError as e:
        fail(str(e))
    for m in result["members"]:
        print(f"{m['workdir']} step {m['step']}: accuracy {m['accuracy']:.4f}")
    print(
        f"ensemble of {len(result['members'])}: accuracy {result['ensemble_accuracy']:.4f} "
        f"({result['num_examples']} examples)"
    )


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
