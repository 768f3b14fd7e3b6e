"""Optimizers on 2-D test functions: trajectories and steps-to-target tables.

Every optimizer of `jaxlab.optim` runs with its default hyperparameters (from
`jaxlab.optim.defaults`) and a constant rate taken from one fixed log-spaced grid. For each
rate the whole run is one `lax.scan` over steps, and the rates run together under `vmap`,
so a function/optimizer pair costs one compilation.

Test functions: Rosenbrock (minimum (1, 1), start (-1.5, 2)), Beale (minimum (3, 0.5),
start (1, 1.5)) and a saddle, x^2 - y^2 + y^4 / 2, whose saddle point at the origin sits
between two minima (0, +-1); it starts at (-1, 1e-3), close to the saddle's attracting
direction. An optimizer reaches the target at the first step after which it stays within
`tol` of a minimum until the end of the step budget (passing through the ball does not
count). Eve's L* is each function's minimum value; ESGD gets exact Hessian-vector products.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence

import jax
import numpy as np
import optax
from jax import numpy as jnp

from jaxlab.optim.defaults import default_optimizer_config
from jaxlab.optim.optimizers import OPTIMIZERS, build_chain

DEFAULT_GRID = tuple(float(x) for x in np.logspace(-5, 1, 19))  # 10^-5 ... 10, 3 per decade


DEFAULT_BUDGETS = {"rosenbrock": 20_000, "beale": 5_000, "saddle": 2_000}


def rosenbrock(p: jax.Array) -> jax.Array:
    """(1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1)."""
    x, y = p[..., 0], p[..., 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(p: jax.Array) -> jax.Array:
    """Beale's function, minimum 0 at (3, 0.5)."""
    x, y = p[..., 0], p[..., 1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def saddle(p: jax.Array) -> jax.Array:
    """x^2 - y^2 + y^4 / 2: a saddle point at the origin, minima -1/2 at (0, +-1)."""
    y = p[..., 1]
    return p[..., 0] ** 2 - y**2 + 0.5 * y**4


@dataclasses.dataclass(frozen=True)
class TestFunction:
    """A 2-D objective, its start, its minima and minimum value, and the plotting window."""

    name: str
    fn: Callable[[jax.Array], jax.Array]
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    min_value: float
    window: tuple[float, float, float, float]  # xmin, xmax, ymin, ymax


FUNCTIONS = {
    "rosenbrock": TestFunction(
        "rosenbrock", rosenbrock, (-1.5, 2.0), ((1.0, 1.0),), 0.0, (-2.0, 2.0, -1.0, 3.0)
    ),
    "beale": TestFunction("beale", beale, (1.0, 1.5), ((3.0, 0.5),), 0.0, (-0.5, 4.5, -1.5, 2.0)),
    "saddle": TestFunction(
        "saddle", saddle, (-1.0, 1e-3), ((0.0, 1.0), (0.0, -1.0)), -0.5, (-1.5, 1.5, -1.5, 1.5)
    ),
}

# Why an optimizer misses a target, where the numbers alone do not say it (checked by
# tests/optim/test_playground.py and the default run).
NOTES = {
    ("rosenbrock", "lamb"): (
        "LAMB's step has length lr * ||p|| (trust ratio) whatever the gradient, so at a "
        "constant rate it circles the minimum at a distance set by lr"
    ),
    ("rosenbrock", "esgd"): (
        "ESGD's preconditioner is diagonal and the valley is not axis-aligned (Hessian "
        "[[802, -400], [-400, 200]] at the minimum), so stable rates crawl along it like SGD; "
        "larger ones blow up in the first steps, while D rests on a single random probe"
    ),
}


def distance_to_minimum(fn: TestFunction, traj: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest minimum (inf where not finite)."""
    d = np.min([np.linalg.norm(traj - np.asarray(m), axis=-1) for m in fn.minima], axis=0)
    return np.where(np.isfinite(d), d, np.inf)


def run_optimizer(
    fn: Callable[[jax.Array], jax.Array],
    name: str,
    start: Sequence[float],
    lrs: Sequence[float],
    num_steps: int,
    loss_min: float = 0.0,
) -> np.ndarray:
    """Runs optimizer `name` (default hyperparameters, Eve's L* = `loss_min`) from `start`
    for every rate; returns the trajectories, shape (len(lrs), num_steps + 1, 2)
    (NaN/inf once a run diverges)."""
    o = default_optimizer_config()
    o.name = name
    o.eve_loss_min = loss_min

    def single(lr):
        tx = build_chain(o, lr)
        p0 = jnp.asarray(start, jnp.float32)

        def step(carry, _):
            p, state = carry
            value, grad = jax.value_and_grad(fn)(p)
            hvp = lambda v: jax.jvp(jax.grad(fn), (p,), (v,))[1]
            updates, state = tx.update(grad, state, p, value=value, hvp_fn=hvp)
            p = optax.apply_updates(p, updates)
            return (p, state), p

        _, path = jax.lax.scan(step, (p0, tx.init(p0)), None, length=num_steps)
        return jnp.concatenate([p0[None], path])

    return np.asarray(jax.jit(jax.vmap(single))(jnp.asarray(lrs, jnp.float32)))


def settling_steps(inside: np.ndarray) -> np.ndarray:
    """For each row of booleans over steps, the first step from which all are True, or -1
    when the last one is False."""
    outside_later = np.flip(np.cumsum(np.flip(~inside, axis=-1), axis=-1), axis=-1)
    settled = outside_later == 0
    return np.where(settled.any(axis=-1), settled.argmax(axis=-1), -1)


def _why_not(
    fn: TestFunction, trajs: np.ndarray, lrs: Sequence[float], num_steps: int, tol: float, name: str
) -> tuple[int, str]:
    """Picks the closest run and says why no rate reached the target."""
    finite = np.all(np.isfinite(trajs), axis=(1, 2))
    diverged = [lr for lr, ok in zip(lrs, finite, strict=True) if not ok]
    div = (
        f"{len(diverged)}/{len(lrs)} rates diverged (lr >= {min(diverged):.2g})"
        if diverged
        else "no rate diverged"
    )
    if not finite.any():
        return 0, f"every rate diverged within {num_steps} steps"
    dist = np.where(finite[:, None], distance_to_minimum(fn, trajs), np.inf)
    i = int(np.argmin(dist.min(axis=1)))
    closest, final = dist[i].min(), dist[i, -1]
    if closest <= tol:
        how = f"passes within tol at step {int(np.argmax(dist[i] <= tol))} but does not stay"
    elif final <= closest * 1.01:
        how = f"gets to {closest:.2g}, still approaching: too slow"
    else:
        how = f"comes within {closest:.2g}, then stalls or oscillates"
    note = NOTES.get((fn.name, name))
    return i, (
        f"not within tol {tol:g} at the end of {num_steps} steps at any rate; at "
        f"lr={lrs[i]:.2g} it {how}; {div}" + (f". {note}" if note else "")
    )


def steps_table(
    fn: TestFunction,
    optimizers: Sequence[str] = OPTIMIZERS,
    lrs: Sequence[float] = DEFAULT_GRID,
    num_steps: int = 20_000,
    tol: float = 1e-3,
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """For each optimizer, the grid rate that brings it within `tol` of a minimum (to stay)
    in the fewest steps. Returns the table rows (optimizer, best_lr, steps or None, final distance,
    reason when not reached) and each optimizer's trajectory at that rate (up to the step it
    reached the target)."""
    rows, paths = [], {}
    for name in optimizers:
        trajs = run_optimizer(fn.fn, name, fn.start, lrs, num_steps, fn.min_value)
        first = settling_steps(distance_to_minimum(fn, trajs) <= tol)
        hit = first >= 0
        first = np.where(hit, first, np.iinfo(np.int32).max)
        if hit.any():
            i, reason = int(np.argmin(first)), ""
        else:
            i, reason = _why_not(fn, trajs, lrs, num_steps, tol, name)
        rows.append(
            {
                "optimizer": name,
                "best_lr": float(lrs[i]),
                "steps": int(first[i]) if hit.any() else None,
                "final_distance": float(distance_to_minimum(fn, trajs[i, -1])),
                "reason": reason,
            }
        )
        paths[name] = trajs[i, : (int(first[i]) + 1 if hit.any() else None)]
    return rows, paths


def markdown_table(fn: TestFunction, rows: list[dict], num_steps: int, tol: float) -> str:
    """Formats a `steps_table` as markdown."""
    lines = [
        f"### {fn.name} from {fn.start}: steps until within {tol:g} of a minimum to stay "
        f"(budget {num_steps} steps)",
        "",
        "| optimizer | best lr | steps | final distance | why not reached |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        steps = str(r["steps"]) if r["steps"] is not None else "-"
        lines.append(
            f"| {r['optimizer']} | {r['best_lr']:.3g} | {steps} | "
            f"{r['final_distance']:.2g} | {r['reason']} |"
        )
    return "\n".join(lines)


def plot_trajectories(
    fn: TestFunction, paths: dict[str, np.ndarray], path: str, rows: list[dict] | None = None
) -> None:
    """Draws each optimizer's trajectory on the function's contour plot (one panel each);
    with the table `rows`, panels of optimizers that missed the target say so."""
    missed = {r["optimizer"] for r in rows or [] if r["steps"] is None}
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    x0, x1, y0, y1 = fn.window
    xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    zs = np.asarray(fn.fn(jnp.stack([xs, ys], axis=-1)))
    levels = fn.min_value + np.logspace(-2, np.log10(zs.max() - fn.min_value), 30)
    cols = 4
    rows = -(-len(paths) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    for ax, (name, traj) in zip(axes.flat, paths.items(), strict=False):
        ax.contour(xs, ys, zs, levels=levels, cmap="viridis", linewidths=0.6)
        keep = traj[:: max(1, len(traj) // 3000)]
        ax.plot(keep[:, 0], keep[:, 1], "r-", lw=1.0)
        ax.plot(*fn.start, "ko", ms=4)
        for m in fn.minima:
            ax.plot(*m, "k*", ms=9)
        status = "not reached in " if name in missed else ""
        ax.set(xlim=(x0, x1), ylim=(y0, y1), title=f"{name} ({status}{len(traj) - 1} steps)")
    for ax in list(axes.flat)[len(paths) :]:
        ax.axis("off")
    fig.suptitle(f"{fn.name}: trajectories at each optimizer's best grid rate")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_playground(
    out_dir: str,
    *,
    optimizers: Sequence[str] = OPTIMIZERS,
    lrs: Sequence[float] = DEFAULT_GRID,
    budgets: dict[str, int] | None = None,
    tol: float = 1e-3,
    plot: bool = True,
) -> dict[str, list[dict]]:
    """Runs every function's table and plot; writes `<fn>.png`, `table.json` and `table.md`
    into `out_dir` and returns the rows per function."""
    budgets = budgets or dict(DEFAULT_BUDGETS)
    os.makedirs(out_dir, exist_ok=True)
    tables, md = {}, []
    for fname, steps in budgets.items():
        fn = FUNCTIONS[fname]
        rows, paths = steps_table(fn, optimizers, lrs, steps, tol)
        tables[fname] = rows
        md.append(markdown_table(fn, rows, steps, tol))
        if plot:
            plot_trajectories(fn, paths, os.path.join(out_dir, f"{fname}.png"), rows)
    meta = {"grid": list(lrs), "tol": tol, "budgets": budgets}
    with open(os.path.join(out_dir, "table.json"), "w") as f:
        json.dump({"settings": meta, "tables": tables}, f, indent=1)
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write("\n\n".join(md) + "\n")
    return tables
