"""Interpretability of a trained classifier:
`python -m scripts.interpret --workdir runs/digits_cnn [--method all|saliency,attacks,...]`.

Rebuilds the run's model from its config.json and its `--checkpoint` (latest or best),
reads its eval split (the first `--num_eval` examples; 0: all), runs the methods of
`jaxlab.analysis.interpret.METHODS` and writes each figure as `<workdir>/interpret/<name>.png`
and as a TensorBoard image in `<workdir>/interpret/`, the numbers to
`<workdir>/interpret/results.json`. Epsilons, noise levels and fill values are on the
[0, 1] pixel scale whatever the run's normalization. Every option of
`jaxlab.analysis.interpret.Options` is a flag of the same name. Bad input is one line on
stderr with exit status 2, before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from scripts.cli import fail, import_tensorflow_quietly  # noqa: E402


def define_flags(values: flags.FlagValues) -> flags.FlagValues:
    """The script's flags, on their own `FlagValues` (tests run `main` in-process)."""
    from jaxlab.analysis.interpret.methods import Options

    flags.DEFINE_string("workdir", None, "Workdir of a classification run.", flag_values=values)
    flags.DEFINE_string("method", "all", "'all' or comma-separated methods.", flag_values=values)
    flags.DEFINE_string("checkpoint", "latest", "latest or best.", flag_values=values)
    flags.DEFINE_integer("num_eval", 0, "Eval examples used (0: all).", flag_values=values)
    for field in dataclasses.fields(Options):
        default = field.default
        help_text = f"Options.{field.name}."
        if isinstance(default, tuple):
            flags.DEFINE_list(field.name, [str(v) for v in default], help_text, flag_values=values)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text, flag_values=values)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text, flag_values=values)
        else:
            flags.DEFINE_string(field.name, default, help_text, flag_values=values)
    return values


def options_from_flags(values: flags.FlagValues):  # noqa: ANN201 - an Options
    """The Options the flags give (validated; ConfigError for bad values)."""
    from jaxlab.analysis.interpret.methods import Options
    from jaxlab.config import ConfigError

    kwargs = {}
    for field in dataclasses.fields(Options):
        value = values[field.name].value
        if isinstance(field.default, tuple):
            try:
                value = tuple(float(v) for v in value)
            except ValueError:
                raise ConfigError(
                    f"--{field.name} must be a comma-separated list of numbers, got {value}"
                ) from None
        kwargs[field.name] = value
    options = Options(**kwargs)
    options.validate()
    return options


class _LazySink:
    """A FigureSink created at the first figure, so that input rejected by the methods'
    preflight leaves no `interpret/` folder behind."""

    def __init__(self, outdir: str) -> None:
        self.outdir = outdir
        self._sink = None
        self.paths: list[str] = []

    def __getattr__(self, name: str):  # noqa: ANN204 - forwards to the FigureSink

        from jaxlab.analysis.interpret.figures import FigureSink

        if self._sink is None:
            self._sink = FigureSink(self.outdir)
            self.paths = self._sink.paths
        return getattr(self._sink, name)

    def close(self) -> None:
        """Closes the sink if one was created."""
        if self._sink is not None:
            self._sink.close()


def main(argv: list[str]) -> dict:
    """Parses `argv` (argv[0] the program), runs the methods; bad input exits 2."""
    values = define_flags(flags.FlagValues())
    try:
        rest = values(argv)
    except flags.Error as e:
        fail(str(e))
    if len(rest) > 1:
        fail(f"unexpected arguments: {' '.join(rest[1:])}")
    if not values.workdir:
        fail("--workdir is required")
    if not os.path.isdir(values.workdir):
        fail(f"--workdir: directory not found: {values.workdir!r}")
    if values.num_eval < 0:
        fail(f"--num_eval must be >= 0, got {values.num_eval}")
    from jaxlab.analysis.interpret import parse_methods
    from jaxlab.config import ConfigError

    try:
        names = parse_methods(values.method)
        options = options_from_flags(values)
    except ConfigError as e:
        fail(str(e))
    import_tensorflow_quietly()
    from jaxlab.analysis.interpret import Context, run_methods
    from jaxlab.analysis.interpret.loading import load_run, split_arrays

    start = time.time()
    try:
        run = load_run(values.workdir, values.checkpoint)
        images, labels = split_arrays(run, "eval", values.num_eval)
    except ConfigError as e:
        fail(str(e))
    print(
        f"interpret: {run.config.model.name} on {run.config.dataset.name}, step {run.step}, "
        f"{len(images)} eval images; methods: {', '.join(names)}",
        flush=True,
    )
    outdir = os.path.join(values.workdir, "interpret")
    sink = _LazySink(outdir)
    ctx = Context(
        run.probe,
        images,
        labels,
        options,
        sink,
        train_split=lambda: split_arrays(run, "train"),
        log=lambda line: print(line, flush=True),
    )
    try:
        results = run_methods(ctx, names)
    except ConfigError as e:
        sink.close()
        fail(str(e))
    sink.close()
    path = os.path.join(outdir, "results.json")
    previous = json.load(open(path)) if os.path.exists(path) else {}
    with open(path, "w") as f:
        json.dump({**previous, **results}, f, indent=1, default=float)
    print(f"wrote {len(sink.paths)} figures to {outdir} in {time.time() - start:.1f} s", flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv)
