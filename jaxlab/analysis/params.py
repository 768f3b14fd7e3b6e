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


def _formula_modules(modules: Mapping[tuple[str, ...], nn.Module]) -> list[tuple[str, ...]]:
    """Paths of the modules that give their own formula (`parameter_formula(shapes) ->
    (kind, formula)`, e.g. recurrent cells), outermost only."""
    found = [p for p, m in modules.items() if callable(getattr(m, "parameter_formula", None))]
    return [p for p in found if not any(q != p and p[: len(q)] == q for q in found)]


def parameter_rows(
    params: Any, modules: Mapping[tuple[str, ...], nn.Module] | None = None
) -> list[LayerRow]:
    """Rows of the table, one per recognized layer (else one per parameter), ordered as
    `modules` (module path -> module, in call order; `parameter_table` records it) lists
    them, else in the order of `params`. A module in `modules` with a method
    `parameter_formula(shapes) -> (kind, formula)` (shapes of its whole subtree, paths
    relative to it; the recurrent cells of jaxlab.nn.recurrent) gets one row for its
    subtree."""
    modules = modules or {}
    flat = traverse_util.flatten_dict(params)
    rank = {path: i for i, path in enumerate(modules)}
    ranked: list[tuple[int, LayerRow]] = []
    for prefix in _formula_modules(modules):
        inside = {
            p[len(prefix) :]: tuple(v.shape) for p, v in flat.items() if p[: len(prefix)] == prefix
        }
        if not inside:
            continue
        kind, formula = modules[prefix].parameter_formula(inside)
        count = sum(_count(s) for s in inside.values())
        shapes = {"/".join(p): s for p, s in inside.items()}
        ranked.append((rank[prefix], LayerRow("/".join(prefix), kind, shapes, count, formula)))
        flat = {p: v for p, v in flat.items() if p[: len(prefix)] != prefix}
    grouped: dict[tuple[str, ...], dict[str, Shape]] = {}
    for path, leaf in flat.items():
        grouped.setdefault(path[:-1], {})[path[-1]] = tuple(leaf.shape)
    for module, shapes in grouped.items():
        position = rank.get(module, len(rank))
        recognized = layer_formula(shapes, modules.get(module))
        if recognized is not None:
            kind, formula = recognized
            count = sum(_count(s) for s in shapes.values())
            row = LayerRow("/".join(module) or "(model)", kind, shapes, count, formula)
            ranked.append((position, row))
            continue
        for name, shape in shapes.items():
            row = LayerRow(
                "/".join((*module, name)), "param", {name: shape}, _count(shape), _product(shape)
            )
            ranked.append((position, row))
    rows = [row for _, row in sorted(ranked, key=lambda item: item[0])]
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
        module = context.module
        if context.method_name == "__call__" or hasattr(module, "parameter_formula"):
            modules.setdefault(tuple(module.path), module)
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


def module_summary(
    model: nn.Module,
    input_shape: Sequence[int],
    depth: int | None = 1,
    dtype: jnp.dtype = jnp.float32,
) -> str:
    """flax's `nn.tabulate` of `model` on zeros of `input_shape` (and `dtype`: int32 for
    token models) in eval mode: per module call, its inputs, outputs and parameters
    (modules below `depth` folded)."""
    table = nn.tabulate(
        model,
        jax.random.key(0),
        depth=depth,
        console_kwargs={"width": 120, "force_terminal": False},
    )
    return table(jnp.zeros(tuple(input_shape), dtype), train=False)
