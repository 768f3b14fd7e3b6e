"""Tools on models and trained runs: parameter tables (more to come: gradient checks,
interpretability, embedding export, sweeps, plots)."""

from jaxlab.analysis.params import (
    LayerRow,
    ParamTable,
    count_params,
    forward_flops,
    layer_formula,
    module_summary,
    parameter_rows,
    parameter_table,
)

__all__ = [
    "LayerRow",
    "ParamTable",
    "count_params",
    "forward_flops",
    "layer_formula",
    "module_summary",
    "parameter_rows",
    "parameter_table",
]
