"""Early stopping on an eval metric with patience; its record travels in checkpoint metadata
(so a resumed run keeps counting) and is written to `workdir/early_stopping.json` when it
stops a run."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

RECORD_FILE = "early_stopping.json"


@dataclasses.dataclass
class EarlyStopping:
    """Tracks the best value of `metric` over evaluations.

    `patience` evaluations in a row without an improvement larger than `min_delta` stop the
    run; patience 0 disables stopping (the best is still tracked).
    """

    metric: str
    mode: str = "max"
    patience: int = 0
    min_delta: float = 0.0
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped_at: int | None = None

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Records one evaluation; returns True when the run should stop now."""
        value = float(metrics[self.metric])
        sign = 1.0 if self.mode == "max" else -1.0
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.best_step, self.bad_evals = value, step, 0
        else:
            self.bad_evals += 1
        if self.patience and self.bad_evals >= self.patience:
            self.stopped_at = step
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able record (stored in checkpoint metadata and the record file)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any] | None, **settings: Any) -> EarlyStopping:
        """Restores the counters of `record` under the (possibly changed) `settings`."""
        es = cls(**settings)
        for key in ("best", "best_step", "bad_evals", "stopped_at"):
            if record and key in record:
                setattr(es, key, record[key])
        return es

    def write(self, workdir: str) -> str:
        """Writes the record into the workdir; returns its path."""
        path = os.path.join(workdir, RECORD_FILE)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
        return path
