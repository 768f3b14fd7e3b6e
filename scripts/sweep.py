"""Hyperparameter sweep: `python -m scripts.sweep --config configs/digits_mlp.py
--workdir runs/sweep --param optimizer.learning_rate=1e-4:1:log
--param optimizer.weight_decay=1e-6:1e-2:log --search random --trials 8 --steps 100
--refine_trials 3 --refine_factor 4 --parallel 2 --metric eval/accuracy --mode max`.

Stage 1 trains `--trials` points (grid: floor(trials^(1/d)) values per key; random:
log-uniform draws) for `--steps` steps each; stage 2 narrows every range to the best
`--top` stage-1 trials (`jaxlab.analysis.sweep.refine_params`) and trains
`--refine_trials` random points of it `--refine_factor` times longer. Trials run as
`python -m scripts.train` processes, `--parallel` at a time, in `--workdir/trial_*`.
Writes results.csv and results.md (best first) and sweep.png (the metric against each key).
Bad input exits 2 before anything is trained.
"""

from __future__ import annotations

import os

from absl import app, flags

from scripts.cli import check_config_file, fail, parse_flags_or_fail

flags.DEFINE_string("config", None, "Experiment config file (PATH[:ARG]).")
flags.DEFINE_string("workdir", None, "Directory of the sweep (a fresh one).")
flags.DEFINE_multi_string("param", [], "key=low:high[:log|lin|int] (repeat per key).")
flags.DEFINE_enum("search", "random", ["random", "grid"], "Search of stage 1.")
flags.DEFINE_integer("trials", 8, "Stage-1 budget (number of short runs).")
flags.DEFINE_integer("steps", 100, "Train steps of a stage-1 run.")
flags.DEFINE_integer("refine_trials", 0, "Stage-2 runs in the refined ranges (0: none).")
flags.DEFINE_integer("refine_factor", 4, "Stage-2 runs train this many times longer.")
flags.DEFINE_integer("top", 3, "Stage-1 trials that define the refined ranges.")
flags.DEFINE_integer("parallel", 1, "Trials run at once (processes).")
flags.DEFINE_string("metric", "eval/accuracy", "The metric of metrics.jsonl to optimize.")
flags.DEFINE_enum("mode", "max", ["max", "min"], "Whether the metric is maximized.")
flags.DEFINE_integer("seed", 0, "Seed of the random search.")
flags.DEFINE_multi_string("override", [], "Extra --config.KEY=VALUE for every trial.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    if not f.config or not f.workdir:
        fail("--config and --workdir are required")
    check_config_file(f.config)
    if not f.param:
        fail("give at least one --param key=low:high[:log|lin|int]")
    from jaxlab.analysis import sweep
    from jaxlab.config import ConfigError

    try:
        params = [sweep.Param.parse(s) for s in f.param]
        for name in ("trials", "steps", "refine_factor", "top", "parallel"):
            if getattr(f, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(f, name)}")
        _check_keys(f.config, [p.key for p in params])
    except ConfigError as e:
        fail(str(e))
    if os.path.exists(os.path.join(f.workdir, "results.csv")):
        fail(f"{f.workdir} already holds a sweep; give a fresh --workdir")
    os.makedirs(f.workdir, exist_ok=True)

    def objective(steps: int):
        return sweep.train_objective(
            f.config, f.workdir, params, f.metric, f.mode, steps, f.override, print
        )

    if f.search == "grid":
        points = sweep.grid_points(params, f.trials)
    else:
        points = sweep.random_points(params, f.trials, f.seed)
    print(f"stage 1: {len(points)} {f.search} trials of {f.steps} steps, {f.parallel} at a time")
    short = objective(f.steps)
    trials = sweep.run_search(short, points, parallel=f.parallel, stage="short", progress=print)
    _attach_workdirs(trials, short)
    if f.refine_trials:
        refined = sweep.refine_params(params, trials, f.mode, f.top)
        print(
            "stage 2 ranges: "
            + ", ".join(f"{p.key} in [{p.low:.4g}, {p.high:.4g}]" for p in refined)
        )
        long = objective(f.steps * f.refine_factor)
        more = sweep.run_search(
            long, sweep.random_points(refined, f.refine_trials, f.seed + 1),
            parallel=f.parallel, stage="long", progress=print,
        )  # fmt: skip
        _attach_workdirs(more, long)
        trials += more
    keys = [p.key for p in params]
    csv_path, md_path = sweep.write_results(trials, keys, f.metric, f.mode, f.workdir)
    plot = os.path.join(f.workdir, "sweep.png")
    sweep.plot_results(trials, params, f.metric, plot)
    print(open(md_path).read())
    print(f"wrote {csv_path}, {md_path} and {plot}")


def _attach_workdirs(trials, objective) -> None:
    import json

    for t in trials:
        t.workdir = objective.workdirs.get(json.dumps(t.point, sort_keys=True), "")


def _check_keys(config_spec: str, keys: list[str]) -> None:
    """ConfigError naming the first swept key that the config does not have."""
    import ml_collections

    from jaxlab.config import ConfigError
    from scripts.cli import _load_config_file

    config = _load_config_file(config_spec)
    for key in keys:
        node = config
        for part in key.split("."):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                raise ConfigError(f"unknown config key {key!r} in --param")
            node = node[part]


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
