"""Scores the samples of a finished generative run against real images:
`python -m scripts.sample_quality --workdir runs/gen_digits_vae
--classifier runs/gen_digits_classifier [--num 350] [--seed 0]`.

Reads the run's config.json and its latest checkpoint (the task state, restored into the
layout the run's task builds), draws `--num` samples (default: the eval split's size) with
the task's `sample_images` from key `--seed`, and prints the table of the `sample_quality`
evaluator (jaxlab.analysis.sample_quality): the Fréchet distance to the eval split's
features, the class-histogram entropy (nats) and the mean confidence, for the samples, for a
second real split and for the per-pixel baseline's samples. The features are those of the
classification run `--classifier` (for gen_digits: configs/gen_digits_classifier.py's run;
its best checkpoint). Bad input (a flag, a workdir without checkpoint, a run that is not
generative, a classifier workdir without checkpoint) is one line on stderr with exit status 2.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from scripts.cli import fail, import_tensorflow_quietly  # noqa: E402


def define_flags(values: flags.FlagValues) -> flags.FlagValues:
    """The script's flags, on their own `FlagValues` (tests run `main` in-process)."""
    flags.DEFINE_string("workdir", None, "Workdir of a generative run.", flag_values=values)
    flags.DEFINE_string(
        "classifier", None, "Workdir of the feature classifier's run.", flag_values=values
    )
    flags.DEFINE_integer(
        "num", 0, "Samples to draw (0: the eval split's size).", flag_values=values
    )
    flags.DEFINE_integer("seed", 0, "Seed of the samples' key.", flag_values=values)
    return values


def sample_quality_scores(
    workdir: str, classifier: str, num: int = 0, seed: int = 0
) -> dict[str, float]:
    """The nine `sample_quality` scalars of the latest checkpoint of the generative run in
    `workdir`. Raises ConfigError for bad input (see the module docstring)."""
    import jax
    import ml_collections

    from jaxlab.analysis.ensemble import load_config
    from jaxlab.analysis.sample_quality import SampleQualityEvaluator
    from jaxlab.config import ConfigError
    from jaxlab.tasks.generative import GenerativeTask
    from jaxlab.train.checkpoint import Checkpointer
    from jaxlab.train.setup import build_experiment
    from jaxlab.train.state import make_init_fn

    if num < 0:
        raise ConfigError(f"--num must be >= 0, got {num}")
    config = load_config(workdir)
    config.evaluators = {}
    exp = build_experiment(config)
    if not isinstance(exp.task, GenerativeTask):
        raise ConfigError(f"{workdir!r} is a {config.task.name!r} run, not a generative task")
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        raise ConfigError(f"no checkpoint in {workdir!r} (no checkpoints/ folder)")
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
        jax.eval_shape(make_init_fn(exp.task, exp.example_batch, config.seed)),
    )
    ckpt = Checkpointer(directory)
    try:
        step = ckpt.latest_step()
        if step is None:
            raise ConfigError(f"no complete checkpoint in {directory}")
        state, _ = ckpt.restore(step, abstract)
    finally:
        ckpt.close()
    options = ml_collections.ConfigDict({"classifier": classifier, "num": num, "seed": seed})
    evaluator = SampleQualityEvaluator(exp.task, exp.setup, options)
    return evaluator.evaluate(state.task)


def format_table(scores: dict[str, float]) -> str:
    """The scalars as a table: rows samples / real / baseline, columns fd, entropy,
    confidence."""
    lines = [f"{'':10s} {'fd':>10s} {'entropy':>9s} {'confidence':>11s}"]
    for row, suffix in (("samples", ""), ("real", "_real"), ("baseline", "_baseline")):
        lines.append(
            f"{row:10s} {scores['fd' + suffix]:10.3f} {scores['entropy' + suffix]:9.4f} "
            f"{scores['confidence' + suffix]:11.4f}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """Parses `argv` (argv[0] the program), scores and prints; bad input exits 2."""
    values = define_flags(flags.FlagValues())
    try:
        rest = values(argv)
    except flags.Error as e:
        fail(str(e))
    if len(rest) > 1:
        fail(f"unexpected arguments: {' '.join(rest[1:])}")
    for name in ("workdir", "classifier"):
        if not values[name].value:
            fail(f"--{name} is required")
        if not os.path.isdir(values[name].value):
            fail(f"--{name}: directory not found: {values[name].value!r}")
    import_tensorflow_quietly()  # jaxlab.train (checkpoints) imports it
    from jaxlab.config import ConfigError

    try:
        scores = sample_quality_scores(values.workdir, values.classifier, values.num, values.seed)
    except ConfigError as e:
        fail(str(e))
    print(format_table(scores), flush=True)


if __name__ == "__main__":
    main(sys.argv)
