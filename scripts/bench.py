"""Train steps/s of the jaxlab loop against a minimal hand-written jit step (issue 2), or
against the same models in PyTorch eager (issue 12, `--vs torch`).

    python -m scripts.bench [--models small_cnn,mlp] [--batch_size 128] [--steps 500]
                            [--repeats 5] [--feed host|pipeline] [--json out.json]
    python -m scripts.bench --vs torch [--models small_cnn,resnet20,mlp,lstm_lm,gpt]
                            [--batch_size N] [--steps N] [--repeats 3] [--warmup 3]
                            [--threads N] [--json out.json]

Runs configs/digits_cnn.py (the small conv net) and, for each other model name, the same
config with only `model.name` replaced (e.g. `mlp` with its default width), on the offline
digits data ($TFDS_DATA_DIR or ~/tensorflow_datasets). Prints model, batch, both medians,
their ratio and whether the loop reaches the target (>= 0.95 of the minimal step). What is
measured, and how: `jaxlab.analysis.bench`. Exit status 2 with one line for bad input.

With `--vs torch` (`jaxlab.analysis.torch_bench`): each model of its table (all five by
default) trains in jaxlab and in PyTorch eager on the same synthetic host batches, SGD with
momentum 0.9, alternating segments; prints both parameter counts, the per-segment rates and
a table of img/s or tokens/s with the ratio jaxlab/torch. Batch size and steps default to
each model's (--batch_size / --steps override them for every model); torch uses --threads
intra-op threads (default: the core count). On a CPU shared with other jobs torch's
spin-waiting OpenMP threads collapse (the MLP alone: 3.4 steps/s with 2 threads, 123 with 1,
109 with 2 and OMP_WAIT_POLICY=PASSIVE, at load 5 on 2 cores): measure on a quiet machine, or
set OMP_WAIT_POLICY=PASSIVE and say so. PyTorch is optional: without it the script prints
one line with the install command and exits with status 2, before building anything.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections  # noqa: E402
from absl import app, flags  # noqa: E402

from scripts.cli import fail, parse_flags_or_fail, quiet_library_logs  # noqa: E402

flags.DEFINE_list("models", ["small_cnn", "mlp"], "Comma-separated registered model names.")
flags.DEFINE_integer("batch_size", 128, "Global batch size.")
flags.DEFINE_integer("steps", 500, "Timed steps per segment.")
flags.DEFINE_integer("repeats", 5, "Timed segments per side (the median is reported).")
flags.DEFINE_integer(
    "warmup", None, "Untimed steps first (default: past the first log and epoch boundaries)."
)
flags.DEFINE_enum(
    "feed",
    "host",
    ["host", "pipeline"],
    "host: both sides cycle through one "
    "epoch of batches drawn before timing; pipeline: each pulls from a live "
    "tf.data iterator.",
)
flags.DEFINE_string("json", None, "Also write the results to this JSON file.")
flags.DEFINE_enum("vs", None, ["torch"], "Compare against another framework instead: torch.")
flags.DEFINE_integer("threads", None, "--vs torch: torch intra-op threads (default: cores).")
FLAGS = flags.FLAGS


def bench_config(model: str, batch_size: int) -> ml_collections.ConfigDict:
    """configs/digits_cnn.py with `batch_size`; another model gets only its name (defaults)."""
    from configs.digits_cnn import get_config

    config = get_config()
    config.batch_size = batch_size
    if model != config.model.name:
        config.model = ml_collections.ConfigDict({"name": model})
    return config


def torch_main() -> None:
    """`--vs torch`: validates the flags, checks for torch, runs
    `benchmark_vs_torch` per model and prints the table."""
    from jaxlab.analysis.torch_bench import MODELS, TorchMissing, check_models, require_torch
    from jaxlab.config import ConfigError

    try:
        models = check_models(FLAGS.models if FLAGS["models"].present else MODELS)
    except ConfigError as e:
        fail(str(e))
    if FLAGS.feed != "host":
        fail("--feed pipeline is not supported with --vs torch (both sides get host batches)")
    try:
        torch = require_torch()
    except TorchMissing as e:
        fail(str(e))
    quiet_library_logs()

    from jaxlab.analysis.torch_bench import benchmark_vs_torch, format_torch_table

    results = []
    for model in models:
        try:
            r = benchmark_vs_torch(
                model,
                batch_size=FLAGS.batch_size if FLAGS["batch_size"].present else None,
                steps=FLAGS.steps if FLAGS["steps"].present else None,
                repeats=FLAGS.repeats if FLAGS["repeats"].present else 3,
                warmup=3 if FLAGS.warmup is None else FLAGS.warmup,
                threads=FLAGS.threads,
            )
        except ConfigError as e:
            fail(str(e))
        runs = {
            side: ", ".join(f"{v:.2f}" for v in values)
            for side, values in (("jaxlab", r.jaxlab_runs), ("torch", r.torch_runs))
        }
        print(
            f"[bench] {model}: params jaxlab {r.jaxlab_params:,} = torch {r.torch_params:,}; "
            f"jaxlab ({r.jaxlab_side}) [{runs['jaxlab']}], torch [{runs['torch']}] steps/s; "
            f"torch {torch.__version__} with {r.torch_threads} threads",
            flush=True,
        )
        results.append(r)
    print(format_torch_table(results), flush=True)
    write_json([r.to_dict() for r in results])


def write_json(records: list[dict]) -> None:
    """Writes `records` to --json, if given (exit 2 with one line if it cannot)."""
    if FLAGS.json:
        try:
            with open(FLAGS.json, "w") as f:
                json.dump(records, f, indent=2)
        except OSError as e:
            fail(f"cannot write --json {FLAGS.json}: {e.strerror or e}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.vs == "torch":
        torch_main()
        return
    if not FLAGS.models:
        fail("--models is empty; give e.g. --models small_cnn,mlp")
    quiet_library_logs()

    from jaxlab.analysis.bench import benchmark, format_table
    from jaxlab.config import ConfigError

    results = []
    for model in FLAGS.models:
        try:
            result = benchmark(
                bench_config(model, FLAGS.batch_size),
                steps=FLAGS.steps,
                repeats=FLAGS.repeats,
                warmup=FLAGS.warmup,
                feed=FLAGS.feed,
            )
        except ConfigError as e:
            fail(str(e))
        runs = {
            side: ", ".join(f"{v:.1f}" for v in values)
            for side, values in (("loop", result.loop_runs), ("minimal", result.minimal_runs))
        }
        print(
            f"[bench] {model}: loop [{runs['loop']}], minimal [{runs['minimal']}] steps/s "
            f"on {result.device}",
            flush=True,
        )
        results.append(result)
    print(format_table(results), flush=True)
    write_json([r.to_dict() for r in results])


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
