"""Parameter tables: every layer's parameters with the formula behind its count, the total,
the non-trainable state (batch statistics) and the FLOPs of one forward pass.

Shapes come from `jax.eval_shape(model.init, ...)`, so even a 138M-parameter model is
tabulated without allocating its weights. FLOPs come from XLA's cost analysis of the
compiled eval forward pass (a multiply-add counts as 2 FLOPs).

Why not only flax's `nn.tabulate`: its table lists every module call with its input and
output shapes and parameter counts, but not the formula behind a count (k_h*k_w*c_in*c_out
+ c_out, (in + 1)*out, ...), which is what the course's parameter-counting exercise asks
for. `module_summary` returns flax's table for the same model, and `scripts.inspect
--flax_summary` prints it below ours; the totals agree (tested).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

Shape = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One layer: its path ('stage1_block1/conv1'), kind (conv, dense, norm, param), the
    shapes of its parameters, their count and the formula that gives the count."""

    path: str
    kind: str
    shapes: dict[str, Shape]
    count: int
    formula: str


@dataclasses.dataclass(frozen=True)
class ParamTable:
    """The rows, the total parameter count, the non-trainable count (everything outside
    'params', e.g. batch-norm running statistics), the input shape and the forward FLOPs
    (None when not computed)."""

    rows: list[LayerRow]
    total: int
    non_trainable: int
    input_shape: Shape
    flops: float | None = None

    def format(self) -> str:
        """The table as aligned text, ending with the totals and the FLOPs."""
        header = ("layer", "kind", "shape", "formula", "params")
        body = [
            (
                r.path,
                r.kind,
                " ".join(f"{k}{list(v)}" for k, v in r.shapes.items()),
                r.formula,
                f"{r.count:,}",
            )
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(5)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths[:4]) + f"  {{:>{widths[4]}}}"
        lines = [fmt.format(*header), "-" * (sum(widths) + 8)]
        lines += [fmt.format(*row) for row in body]
        lines.append("-" * (sum(widths) + 8))
        lines.append(f"total parameters: {self.total:,}")
        lines.append(f"non-trainable state (batch statistics, ...): {self.non_trainable:,}")
        if self.flops is not None:
            lines.append(
                f"forward FLOPs for input {list(self.input_shape)} (XLA cost analysis): "
                f"{self.flops:,.0f} ({self.flops / 1e9:.3f} GFLOPs)"
            )
        return "\n".join(lines)


def count_params(tree: Any) -> int:
    """The number of scalars in a pytree of arrays or ShapeDtypeStructs."""
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def _product(shape: Shape) -> str:
    return "*".join(map(str, shape)) if shape else "1"


_NORMS = (nn.BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm, nn.RMSNorm)


def layer_formula(
    shapes: Mapping[str, Shape], module: nn.Module | None = None
) -> tuple[str, str] | None:
    """(kind, formula) for one module's parameter shapes (and the module, when known, for its
    type and groups), or None if it is not a recognized layer.

    conv: k_h*k_w*c_in*c_out + c_out (grouped: c_in written as total/groups); dense:
    (in + 1)*out; multi-dimensional dense kernels (attention): the kernel's dims multiplied
    + the bias's; norm: C + C (scale, bias).
    """
    names = set(shapes)
    kernel, bias = shapes.get("kernel"), shapes.get("bias")
    if kernel is not None and names <= {"kernel", "bias"}:
        is_conv = isinstance(module, nn.Conv) if module is not None else len(kernel) >= 4
        if is_conv:
            groups = getattr(module, "feature_group_count", 1)
            dims = [str(d) for d in kernel]
            if groups > 1:
                dims[-2] = f"({kernel[-2] * groups}/{groups})"
            return "conv", "*".join(dims) + (f" + {_product(bias)}" if bias else "")
        if len(kernel) == 2:
            return "dense", f"({kernel[0]} + 1)*{kernel[1]}" if bias else _product(kernel)
        return "dense", _product(kernel) + (f" + {_product(bias)}" if bias else "")
    is_norm = isinstance(module, _NORMS) if module is not None else True
    if (
        is_norm
        and names
        and names <= {"scale", "bias"}
        and all(len(v) == 1 for v in shapes.values())
    ):
        return "norm", " + ".join(str(shapes[k][0]) for k in ("scale", "bias") if k in shapes)
    return None


def _count(shape: Shape) -> int:
    return math.prod(shape)


def parameter_rows(
    params: Any, modules: Mapping[tuple[str, ...], nn.Module] | None = None
) -> list[LayerRow]:
    """Rows of the table, one per recognized layer (else one per parameter), ordered as
    `modules` (module path -> module, in call order; `parameter_table` records it) lists
    them, else in the order of `params`."""
    modules = modules or {}
    flat = traverse_util.flatten_dict(params)
    grouped: dict[tuple[str, ...], dict[str, Shape]] = {}
    for path, leaf in flat.items():
        grouped.setdefault(path[:-1], {})[path[-1]] = tuple(leaf.shape)
    rank = {path: i for i, path in enumerate(modules)}
    rows = []
    for module in sorted(grouped, key=lambda m: rank.get(m, len(rank))):
        shapes = grouped[module]
        recognized = layer_formula(shapes, modules.get(module))
        if recognized is not None:
            kind, formula = recognized
            count = sum(_count(s) for s in shapes.values())
            rows.append(LayerRow("/".join(module) or "(model)", kind, shapes, count, formula))
            continue
        for name, shape in shapes.items():
            rows.append(
                LayerRow(
                    "/".join((*module, name)),
                    "param",
                    {name: shape},
                    _count(shape),
                    _product(shape),
                )
            )
    return rows


def forward_flops(
    model: nn.Module, variables: Any, input_shape: Sequence[int], dtype: jnp.dtype = jnp.float32
) -> float | None:
    """FLOPs of one eval forward pass on an input of `input_shape`, from XLA's cost analysis
    of the compiled computation (`variables` may be ShapeDtypeStructs). None if the backend
    reports no cost analysis."""
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    compiled = (
        jax.jit(lambda v, inp: model.apply(v, inp, train=False)).lower(variables, x).compile()
    )
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


def parameter_table(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    flops: bool = True,
    dtype: jnp.dtype = jnp.float32,
) -> ParamTable:
    """Builds the ParamTable of `model` for inputs of `input_shape` (NHWC, batch included),
    without allocating parameters; `flops=True` also compiles the forward pass for its cost.
    Rows follow the order in which the forward pass first calls each layer."""
    modules: dict[tuple[str, ...], nn.Module] = {}

    def record(next_fun, args, kwargs, context):
        if context.method_name == "__call__":
            modules.setdefault(tuple(context.module.path), context.module)
        return next_fun(*args, **kwargs)

    def init(inp: jax.Array) -> Any:
        with nn.intercept_methods(record):
            return model.init(jax.random.key(0), inp, train=False)

    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    variables = jax.eval_shape(init, x)
    params = variables.get("params", {})
    rows = parameter_rows(params, modules)
    total = count_params(params)
    other = count_params({k: v for k, v in variables.items() if k != "params"})
    cost = forward_flops(model, variables, input_shape, dtype) if flops else None
    return ParamTable(rows, total, other, tuple(input_shape), cost)


def module_summary(model: nn.Module, input_shape: Sequence[int], depth: int | None = 1) -> str:
    """flax's `nn.tabulate` of `model` on zeros of `input_shape` in eval mode: per module
    call, its inputs, outputs and parameters (modules below `depth` folded)."""
    table = nn.tabulate(
        model,
        jax.random.key(0),
        depth=depth,
        console_kwargs={"width": 120, "force_terminal": False},
    )
    return table(jnp.zeros(tuple(input_shape), jnp.float32), train=False)
