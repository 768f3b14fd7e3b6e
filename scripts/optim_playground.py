"""Every optimizer on Rosenbrock, Beale and a saddle: trajectories and steps-to-target tables.

    python -m scripts.optim_playground --out runs/playground

Writes rosenbrock.png, beale.png, saddle.png (trajectories at each optimizer's best rate on
the contour plot), table.json and table.md into --out, and prints the tables. Each
optimizer runs at every rate of one log-spaced grid (--grid_min .. --grid_max); the table
gives the rate that settles within --tol of a minimum in the fewest steps, or says why
none did. The default run takes about a minute on one CPU core. The logic lives in
jaxlab/optim/playground.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from scripts.cli import fail, parse_flags_or_fail, quiet_library_logs  # noqa: E402

flags.DEFINE_string("out", None, "Output directory for the plots and tables.")
flags.DEFINE_list("optimizers", [], "Optimizers to run (default: all).")
flags.DEFINE_float("grid_min", 1e-5, "Smallest learning rate of the grid.")
flags.DEFINE_float("grid_max", 10.0, "Largest learning rate of the grid.")
flags.DEFINE_integer("grid_per_decade", 3, "Grid rates per decade.")
flags.DEFINE_integer("rosenbrock_steps", 20_000, "Step budget on Rosenbrock.")
flags.DEFINE_integer("beale_steps", 5_000, "Step budget on Beale.")
flags.DEFINE_integer("saddle_steps", 2_000, "Step budget on the saddle.")
flags.DEFINE_float("tol", 1e-3, "Distance to a minimum that counts as reached.")
flags.DEFINE_bool("plot", True, "Write the trajectory PNGs.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    if not f.out:
        fail("--out is required (the directory for plots and tables)")
    quiet_library_logs()
    from jaxlab.optim import list_optimizers
    from jaxlab.optim.playground import FUNCTIONS, markdown_table, run_playground

    unknown = sorted(set(f.optimizers) - set(list_optimizers()))
    if unknown:
        fail(f"unknown optimizer {unknown[0]!r}; valid choices: {', '.join(list_optimizers())}")
    if not 0 < f.grid_min < f.grid_max or f.grid_per_decade < 1 or f.tol <= 0:
        fail("need 0 < --grid_min < --grid_max, --grid_per_decade >= 1 and --tol > 0")
    budgets = {"rosenbrock": f.rosenbrock_steps, "beale": f.beale_steps, "saddle": f.saddle_steps}
    if min(budgets.values()) < 1:
        fail("step budgets must be >= 1")
    decades = np.log10(f.grid_max / f.grid_min)
    lrs = np.logspace(
        np.log10(f.grid_min), np.log10(f.grid_max), int(round(decades * f.grid_per_decade)) + 1
    ).tolist()
    tables = run_playground(
        f.out,
        optimizers=f.optimizers or list_optimizers(),
        lrs=lrs,
        budgets=budgets,
        tol=f.tol,
        plot=f.plot,
    )
    for name, rows in tables.items():
        print(markdown_table(FUNCTIONS[name], rows, budgets[name], f.tol), end="\n\n")
    print(f"wrote {', '.join(sorted(os.listdir(f.out)))} to {f.out}", flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
