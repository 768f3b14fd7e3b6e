"""Compare runs: `python -m scripts.compare runs/a runs/b ... [--out compare.png]`.

Prints one Markdown table (parameters, FLOPs per example, training wall time, steps, best
eval metric of each workdir; `jaxlab.analysis.compare`) and writes their curves overlaid in
one plot. Exit status 2 for a path that is not a run's workdir.
"""

from __future__ import annotations

from absl import app, flags

from scripts.cli import fail, parse_flags_or_fail

flags.DEFINE_string("out", "compare.png", "Path of the overlaid curves' plot.")
flags.DEFINE_bool("cost", True, "Rebuild each model for its parameter count and FLOPs.")


def run(workdirs: list[str], out: str, cost: bool = True) -> str:
    """The table of `workdirs` (ValueError for a bad one); writes the plot to `out`."""
    from jaxlab.analysis.compare import comparison_table, plot_runs, summarize_run

    runs = [summarize_run(w, with_cost=cost) for w in workdirs]
    plot_runs(workdirs, [r.name for r in runs], out)
    return comparison_table(runs) + f"\nwrote {out}"


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        fail("give one or more run workdirs: python -m scripts.compare runs/a runs/b")
    try:
        print(run(argv[1:], flags.FLAGS.out, flags.FLAGS.cost))
    except ValueError as e:
        fail(str(e))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
