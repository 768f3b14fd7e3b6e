"""Interpretability of any jaxlab classifier: filters, activation maps, maximally
activating patches, saliency (vanilla, SmoothGrad, integrated gradients), occlusion, class
visualization, adversarial accuracy, feature-space neighbours and maps, and the deletion and
model-randomization checks of the explanations (`scripts/interpret.py`).

Modules: `probe` (a model seen from outside), `attribution`, `visualize`, `checks` (the
pure pieces), `methods` / `measures` (one function per method, drawing its figure),
`figures` (PNG + TensorBoard), `loading` (a run from its workdir). The attacks are in
`jaxlab.analysis.attacks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from jaxlab.analysis.interpret import measures, methods
from jaxlab.analysis.interpret.methods import Context, Options
from jaxlab.analysis.interpret.probe import Probe
from jaxlab.config import ConfigError

METHODS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "filters": methods.filters,
    "activations": methods.activations,
    "patches": methods.patches,
    "saliency": methods.saliency,
    "smoothgrad": methods.smoothgrad,
    "integrated_gradients": methods.integrated_gradients,
    "occlusion": methods.occlusion,
    "class_vis": methods.class_vis,
    "attacks": measures.attacks,
    "neighbours": measures.neighbours,
    "embedding": measures.embedding,
    "deletion": measures.deletion,
    "sanity": measures.sanity,
}

__all__ = ["METHODS", "Context", "Options", "Probe", "parse_methods", "run_methods"]


def parse_methods(spec: str) -> list[str]:
    """'all' or a comma-separated list of METHODS names -> the names, in METHODS order.
    Raises ConfigError naming the valid choices."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if names == ["all"]:
        return list(METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise ConfigError(
            f"unknown method {', '.join(unknown) or repr(spec)}; valid choices: all, "
            + ", ".join(METHODS)
        )
    return [n for n in METHODS if n in names]


def run_methods(ctx: Context, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Runs the methods `names` in order, printing progress; returns their numbers.
    Raises ConfigError before the first figure where the model cannot serve a method."""
    methods.preflight(ctx, list(names))
    results = {}
    for i, name in enumerate(names):
        ctx.log(f"[{i + 1}/{len(names)}] {name}")
        results[name] = METHODS[name](ctx)
    return results
