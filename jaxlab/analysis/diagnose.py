"""Learning-curve diagnosis (the course's "babysitting the learning process"): reads a run's
`metrics.jsonl` and says what the curves show, each finding with its evidence and the next
step to try.

Findings (several may hold at once; `diagnose` returns them most urgent first):

- `diverged`: the train loss became non-finite, or ended above `explode_factor` times its
  minimum and above its start. Learning rate far too high.
- `oscillating`: the smoothed-out train loss goes up and down: more than half of the
  successive differences change sign, with a mean step `|diff|` above `oscillation_level`
  times the loss level, over the last half. Rate too high (or batch too small).
- `lr_too_low`: the train loss falls on a straight line (R^2 of a linear fit above
  `linear_r2` and the total drop below half of the start): no fast initial drop, a rate
  too low for the curvature.
- `overfitting`: the eval loss is above its minimum by `overfit_rise` (relative) at the end
  while the train loss kept falling since that minimum, i.e. the train/eval gap grows.
- `underfitting`: train and eval agree (gap below `gap_tol` relative) but the train
  accuracy is below `good_accuracy` (when it is logged) at a plateau.
- `still_improving`: the monitored curve improved by more than `plateau_tol` (relative)
  over the last quarter of the steps.
- `plateaued`: less than that: the curve is flat.

These are heuristics on a few numbers; their thresholds are arguments so a caller can
tighten them. The tests check each on synthetic curves of the shape it names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

NEXT_STEPS = {
    "diverged": "lower the learning rate 10x (scripts/lr_find.py names a safe one), add "
    "warmup or gradient clipping (optimizer.grad_clip_norm)",
    "oscillating": "lower the learning rate 3x, or raise the batch size",
    "lr_too_low": "raise the learning rate 3-10x (run scripts/lr_find.py)",
    "overfitting": "add regularization (optimizer.weight_decay, model.dropout, "
    "dataset.augment) or more data; keep the checkpoint of the best eval",
    "underfitting": "a bigger model, less regularization, or train longer",
    "still_improving": "train longer (double num_epochs / num_train_steps)",
    "plateaued": "decay the learning rate (schedule.name=cosine or step) or stop here",
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One diagnosis: its name, the numbers behind it, and what to try next."""

    name: str
    evidence: str
    next_step: str

    def format(self) -> str:
        """'name: evidence -> next step'."""
        return f"{self.name}: {self.evidence}\n  next: {self.next_step}"


def curves(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{metric: (steps, values)} of the rows of metrics.jsonl, each metric in step order."""
    out: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)):
                out.setdefault(key, []).append((int(row["step"]), float(value)))
    return {
        k: (np.array([s for s, _ in v]), np.array([x for _, x in v]))
        for k, v in ((k, sorted(v)) for k, v in out.items())
    }


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(y) == 0:
        return 0.0
    fit = np.polyval(np.polyfit(x, y, 1), x)
    return float(1 - np.sum((y - fit) ** 2) / np.sum((y - y.mean()) ** 2))


def diagnose(
    rows: Sequence[Mapping[str, Any]],
    *,
    eval_metric: str = "eval/loss",
    explode_factor: float = 2.0,
    oscillation_level: float = 0.05,
    linear_r2: float = 0.98,
    overfit_rise: float = 0.05,
    gap_tol: float = 0.1,
    good_accuracy: float = 0.95,
    plateau_tol: float = 0.01,
) -> list[Finding]:
    """The findings of a run's metric rows (see the module docstring); raises ValueError
    when there is no `train/loss` curve of at least 4 points."""
    c = curves(rows)
    if "train/loss" not in c or len(c["train/loss"][0]) < 4:
        raise ValueError("need a train/loss curve of at least 4 logged steps")
    steps, loss = c["train/loss"]
    findings: list[Finding] = []

    def add(name: str, evidence: str) -> None:
        findings.append(Finding(name, evidence, NEXT_STEPS[name]))

    finite = np.isfinite(loss)
    if not finite.all():
        add("diverged", f"train loss non-finite from step {int(steps[~finite][0])}")
        return findings
    low = float(loss.min())
    if loss[-1] > explode_factor * max(low, 1e-12) and loss[-1] > loss[0]:
        add(
            "diverged",
            f"train loss {loss[-1]:.4g} at the end, {loss[-1] / max(low, 1e-12):.1f}x its "
            f"minimum {low:.4g} (step {int(steps[np.argmin(loss)])})",
        )
        return findings
    half = loss[len(loss) // 2 :]
    diffs = np.diff(half)
    if len(diffs) >= 3:
        flips = np.mean(np.sign(diffs[1:]) != np.sign(diffs[:-1]))
        level = np.mean(np.abs(diffs)) / max(np.mean(np.abs(half)), 1e-12)
        if flips > 0.5 and level > oscillation_level:
            add(
                "oscillating",
                f"over the last half the train loss changes direction at {flips:.0%} of the "
                f"logs, by {level:.1%} of its level per log",
            )
    r2 = _r2(steps.astype(float), loss)
    drop = (loss[0] - loss[-1]) / max(abs(loss[0]), 1e-12)
    if r2 > linear_r2 and 0 < drop < 0.5:
        add(
            "lr_too_low",
            f"train loss falls on a line (R^2 {r2:.3f}), only {drop:.0%} below its start",
        )

    monitored = c.get(eval_metric, c["train/loss"])
    m_steps, m_values = monitored
    lower_better = "loss" in eval_metric or eval_metric not in c
    if eval_metric in c and "loss" in eval_metric and len(m_values) >= 3:
        best = int(np.argmin(m_values))
        rise = (m_values[-1] - m_values[best]) / max(abs(m_values[best]), 1e-12)
        train_then = np.interp(m_steps[best], steps, loss)
        if best < len(m_values) - 1 and rise > overfit_rise and loss[-1] < train_then:
            add(
                "overfitting",
                f"{eval_metric} {m_values[-1]:.4g} is {rise:.0%} above its minimum "
                f"{m_values[best]:.4g} (step {int(m_steps[best])}) while the train loss "
                f"fell from {train_then:.4g} to {loss[-1]:.4g}",
            )
    # Trend of the monitored curve over the last quarter of the steps.
    quarter = m_steps >= m_steps[0] + 0.75 * (m_steps[-1] - m_steps[0])
    start = float(m_values[quarter][0]) if quarter.sum() >= 2 else float(m_values[0])
    change = (start - m_values[-1]) / max(abs(start), 1e-12)
    improvement = change if lower_better else -change
    name = eval_metric if eval_metric in c else "train/loss"
    if not any(f.name in ("overfitting", "oscillating") for f in findings):
        if improvement > plateau_tol:
            add("still_improving", f"{name} improved {improvement:.1%} over the last quarter")
        else:
            add("plateaued", f"{name} changed {improvement:+.1%} over the last quarter")
    if "train/accuracy" in c and "eval/loss" in c and findings[-1].name == "plateaued":
        acc = float(c["train/accuracy"][1][-1])
        gap = abs(c["eval/loss"][1][-1] - loss[-1]) / max(abs(loss[-1]), 1e-12)
        if acc < good_accuracy and gap < gap_tol:
            add(
                "underfitting",
                f"train accuracy {acc:.1%} < {good_accuracy:.0%} with train and eval loss "
                f"within {gap:.0%} of each other",
            )
    return findings


def format_findings(findings: Sequence[Finding]) -> str:
    """The findings, one block each."""
    return "\n".join(f.format() for f in findings)
