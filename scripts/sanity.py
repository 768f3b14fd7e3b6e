"""The debugging recipe's first three steps on a config, with verdicts:
`python -m scripts.sanity --config configs/digits_mlp.py --workdir runs/sanity_mlp
[--batches 2 --max_steps 300 --lr_steps 100 --min_lr 1e-5 --max_lr 10]`.

1. initial loss vs ln(C) with weight decay off, and rising with weight decay on;
2. overfit `--batches` fixed train batches with regularization off (steps needed, or a
   diagnosis);
3. the learning-rate range test (`scripts/lr_find.py`'s, in `--workdir/lr_find`), naming the
   rate where the loss falls fastest (`--lr_steps 0` skips it).

First prints the activation and gradient statistics per layer at init (mean, std, dead
ReLUs; `jaxlab.analysis.init_stats`) and plots them to init_stats.png. Writes sanity.json
and sanity.png (the overfit curve and the range test) into --workdir.
Exit status 2 for bad input, 1 when a check fails.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from scripts.cli import (  # noqa: E402
    fail,
    import_tensorflow_quietly,
    load_config_or_fail,
    parse_flags_or_fail,
    quiet_library_logs,
)

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for the results (a fresh one).")
flags.DEFINE_integer("batches", 2, "Train batches to overfit.")
flags.DEFINE_integer("max_steps", 300, "Step budget of the overfit check.")
flags.DEFINE_integer("lr_steps", 100, "Steps of the range test (0 skips it).")
flags.DEFINE_float("min_lr", 1e-5, "Range test: first rate.")
flags.DEFINE_float("max_lr", 10.0, "Range test: last rate.")


def _plot(curve: dict, lr: dict | None, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if lr else 1, figsize=(9 if lr else 4.5, 3.2), squeeze=False)
    ax = axes[0][0]
    ax.plot(curve["step"], curve["loss"], label="loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss on the batches")
    ax2 = ax.twinx()
    ax2.plot(curve["step"], curve["accuracy"], "g--", label="accuracy")
    ax2.set_ylabel("accuracy")
    ax.set_title("overfit a few batches")
    if lr:
        ax = axes[0][1]
        ax.semilogx(lr["lrs"], lr["losses"], alpha=0.5)
        ax.axvline(lr["max_lr"], color="r", linestyle="--", label=f"steepest {lr['max_lr']:.3g}")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("train loss")
        ax.set_title("range test")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    if not f.workdir:
        fail("--workdir is required")
    for name in ("batches", "max_steps"):
        if getattr(f, name) < 1:
            fail(f"--{name} must be >= 1, got {getattr(f, name)}")
    config = load_config_or_fail(_CONFIG)
    quiet_library_logs()
    import_tensorflow_quietly()
    from jaxlab.analysis import sanity
    from jaxlab.config import ConfigError
    from jaxlab.train.setup import build_experiment

    try:
        build_experiment(config)  # bad config: exit 2 before anything is written
    except ConfigError as e:
        fail(str(e))
    os.makedirs(f.workdir, exist_ok=True)
    verdicts = []
    from jaxlab.analysis.init_stats import format_stats, plot_stats

    print("0. activation and gradient statistics per layer at init", flush=True)
    try:
        stats = sanity.init_statistics(config)
        print(format_stats(stats), flush=True)
        plot_stats(stats, os.path.join(f.workdir, "init_stats.png"), config.model.name)
    except ConfigError as e:
        print(f"  skipped: {e}")
    print("1. initial loss", flush=True)
    for v in sanity.initial_loss_check(config):
        print("  " + v.format(), flush=True)
        verdicts.append(v)
    print(f"2. overfit {f.batches} batch(es), regularization off", flush=True)
    try:
        v, curve = sanity.overfit_check(config, f.batches, f.max_steps)
    except ConfigError as e:
        fail(str(e))
    print("  " + v.format(), flush=True)
    verdicts.append(v)
    lr = None
    if f.lr_steps:
        from jaxlab.analysis.lr_find import run_range_test

        print(f"3. learning-rate range test ({f.lr_steps} steps)", flush=True)
        try:
            lr = run_range_test(
                config, os.path.join(f.workdir, "lr_find"), f.min_lr, f.max_lr, f.lr_steps
            )
            v = sanity.lr_verdict(lr, float(config.optimizer.learning_rate))
        except ConfigError as e:
            v = sanity.Verdict("learning rate", False, str(e))
        print("  " + v.format(), flush=True)
        verdicts.append(v)
    with open(os.path.join(f.workdir, "sanity.json"), "w") as out:
        json.dump({"verdicts": [vars(x) for x in verdicts], "overfit_curve": curve}, out, indent=1)
    _plot(curve, lr, os.path.join(f.workdir, "sanity.png"))
    print(f"wrote {os.path.join(f.workdir, 'sanity.json')} and sanity.png")
    sys.exit(0 if all(x.ok for x in verdicts) else 1)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
