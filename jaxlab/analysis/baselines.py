"""scikit-learn baselines on jaxlab's digits split, and a run's final test accuracy.

The default experiment (configs/digits_cnn.py) should beat `SVC()` and
`KNeighborsClassifier(3)` with default settings on the same split; `scripts/compare_sklearn.py`
prints the three side by side.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from jaxlab.data import load_digits_split
from jaxlab.train.reporting import METRICS_FILE, read_metrics

EVAL_ACCURACY = "eval/accuracy"


@dataclasses.dataclass(frozen=True)
class Score:
    """One model's test accuracy: `correct` of `total` test images."""

    model: str
    accuracy: float
    correct: int
    total: int


class RunMetricsError(ValueError):
    """A workdir has no usable final eval accuracy (one-line message)."""


def sklearn_baselines() -> list[Score]:
    """Fits `SVC()` and `KNeighborsClassifier(n_neighbors=3)`, default settings otherwise, on
    the flattened train images of `load_digits_split()` (raw 0..16 values, as scikit-learn's
    digits come) and scores them on its 360 test images."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    x_train, y_train, x_test, y_test = load_digits_split()
    x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    scores = []
    for name, clf in (("SVC()", SVC()), ("KNeighborsClassifier(3)", KNeighborsClassifier(3))):
        correct = int(np.sum(clf.fit(x_train, y_train).predict(x_test) == y_test))
        scores.append(Score(name, correct / len(y_test), correct, len(y_test)))
    return scores


def score_from_accuracy(model: str, accuracy: float, total: int) -> Score:
    """A Score from an exact accuracy over `total` examples (jaxlab's eval is exact, so
    accuracy * total is a whole number up to float rounding)."""
    return Score(model, accuracy, int(round(accuracy * total)), total)


def run_config(workdir: str) -> dict:
    """The resolved config a run recorded in workdir/config.json ({} when absent)."""
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            return dict(json.load(f).get("config") or {})
    except (OSError, json.JSONDecodeError, AttributeError) as e:
        raise RunMetricsError(f"unreadable {path}: {e}") from None


def final_eval_accuracy(workdir: str, dataset: str | None = "digits") -> float:
    """The final test accuracy of a run: 'eval/accuracy' of the last metrics.jsonl row that
    has it.

    When the workdir's config.json names a dataset other than `dataset` (None: any), the
    numbers are not comparable and RunMetricsError says so; so it does for a missing
    metrics file or one without eval rows.
    """
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.isfile(path):
        raise RunMetricsError(f"no {METRICS_FILE} in {workdir}: not a jaxlab run directory?")
    name = run_config(workdir).get("dataset", {}).get("name")
    if dataset is not None and name is not None and name != dataset:
        raise RunMetricsError(f"run in {workdir} trained on {name!r}, not {dataset!r}")
    rows = [r for r in read_metrics(path) if EVAL_ACCURACY in r]
    if not rows:
        raise RunMetricsError(f"{path} has no {EVAL_ACCURACY!r} row: has the run evaluated yet?")
    return float(rows[-1][EVAL_ACCURACY])


def run_score(workdir: str, total: int) -> Score:
    """The run's final eval accuracy as a Score named 'jaxlab <model name>'."""
    accuracy = final_eval_accuracy(workdir)
    model = run_config(workdir).get("model", {}).get("name")
    return score_from_accuracy(f"jaxlab {model}" if model else "jaxlab", accuracy, total)


def format_scores(scores: list[Score]) -> str:
    """The scores as an aligned table: model, test accuracy, correct / total."""
    header = ("model", "test accuracy", "correct")
    rows = [(s.model, f"{100 * s.accuracy:.2f}%", f"{s.correct} / {s.total}") for s in scores]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )
