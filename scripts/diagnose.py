"""Learning-curve diagnosis of a run: `python -m scripts.diagnose --workdir runs/x
[--eval_metric eval/loss]`.

Reads `metrics.jsonl`, prints each finding (overfitting, underfitting, still improving,
plateaued, learning rate too high / too low) with its evidence and the next step to try
(`jaxlab.analysis.diagnose`), and writes `diagnose.png` (the train and eval curves with the
findings in the title) into the workdir. Exit status 2 for a workdir without metrics.
"""

from __future__ import annotations

import os

from absl import app, flags

from scripts.cli import fail, parse_flags_or_fail

flags.DEFINE_string("workdir", None, "A run's workdir (holds metrics.jsonl).")
flags.DEFINE_string("eval_metric", "eval/loss", "The eval curve to watch (as in metrics.jsonl).")
PLOT_FILE = "diagnose.png"


def plot_diagnosis(rows: list, findings: list, path: str) -> None:
    """Train and eval loss (and accuracies, on a second axis) with the findings' names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxlab.analysis.diagnose import curves

    c = curves(rows)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key in ("train/loss", "eval/loss"):
        if key in c:
            ax.plot(*c[key], label=key, marker="." if key.startswith("eval") else None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    acc = [k for k in ("train/accuracy", "eval/accuracy") if k in c]
    if acc:
        ax2 = ax.twinx()
        for key in acc:
            ax2.plot(*c[key], linestyle="--", label=key)
        ax2.set_ylabel("accuracy")
        ax2.legend(loc="center right", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(", ".join(f.name for f in findings), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(workdir: str, eval_metric: str = "eval/loss") -> str:
    """Diagnoses `workdir`, writes its plot, returns the printed text (ValueError: bad input)."""
    from jaxlab.analysis.diagnose import diagnose, format_findings
    from jaxlab.train.reporting import METRICS_FILE, read_metrics

    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"no {METRICS_FILE} in {workdir!r} (a run's workdir holds one)")
    rows = read_metrics(path)
    findings = diagnose(rows, eval_metric=eval_metric)
    plot_diagnosis(rows, findings, os.path.join(workdir, PLOT_FILE))
    return format_findings(findings) + f"\nwrote {os.path.join(workdir, PLOT_FILE)}"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS.workdir:
        fail("--workdir is required")
    try:
        print(run(flags.FLAGS.workdir, flags.FLAGS.eval_metric))
    except ValueError as e:
        fail(str(e))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
