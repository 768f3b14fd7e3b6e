"""Samples text from a trained language model:
`python -m scripts.sample --workdir runs/shakespeare_char_lstm [--prompt "ROMEO:"]
[--num_tokens 500] [--temperature 0.8] [--top_k 40] [--seed 0]`.

Reads the run's config.json and its latest checkpoint (the parameter EMA when the run kept
one), encodes the prompt with the dataset's tokenizer (`jaxlab.data.text.tokenizer_for`),
generates with the model's cache (`jaxlab.tasks.language_model.generate_long`) and prints
the prompt followed by the sampled text. An empty prompt starts from token 0. Temperature 0
is greedy; --top_k 0 samples from the whole vocabulary. Bad input (a flag, no checkpoint,
a prompt character outside the vocabulary, a run that is not a language model) is one line
on stderr with exit status 2.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from scripts.cli import fail, import_tensorflow_quietly  # noqa: E402


def define_flags(values: flags.FlagValues) -> flags.FlagValues:
    """The script's flags, on their own `FlagValues` (so tests can run `main` in-process
    beside other scripts' global flags)."""
    flags.DEFINE_string("workdir", None, "Workdir of a language-model run.", flag_values=values)
    flags.DEFINE_string(
        "prompt", "", "Text the sample continues ('' starts from token 0).", flag_values=values
    )
    flags.DEFINE_integer("num_tokens", 500, "Tokens to generate (>= 1).", flag_values=values)
    flags.DEFINE_float(
        "temperature", 0.8, "Softmax temperature (>= 0; 0 is greedy).", flag_values=values
    )
    flags.DEFINE_integer(
        "top_k", 0, "Sample among the k most likely tokens (0: all).", flag_values=values
    )
    flags.DEFINE_integer("seed", 0, "Seed of the sampling key.", flag_values=values)
    return values


def sample_text(
    workdir: str,
    prompt: str = "",
    num_tokens: int = 500,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """The prompt followed by `num_tokens` sampled tokens, decoded, from the latest
    checkpoint of `workdir`. Raises ConfigError for bad input (see the module docstring)."""
    import jax
    import numpy as np

    from jaxlab.analysis.ensemble import load_config
    from jaxlab.config import ConfigError
    from jaxlab.data import get_dataset_info
    from jaxlab.data.text import tokenizer_for
    from jaxlab.tasks.language_model import build_language_model, generate_long
    from jaxlab.train.checkpoint import Checkpointer, variables_of

    if num_tokens < 1:
        raise ConfigError(f"--num_tokens must be >= 1, got {num_tokens}")
    if temperature < 0:
        raise ConfigError(f"--temperature must be >= 0, got {temperature}")
    config = load_config(workdir)
    if config.task.name != "language_model":
        raise ConfigError(
            f"{workdir!r} is a {config.task.name!r} run; sampling needs a 'language_model' run"
        )
    tokenizer = tokenizer_for(config)
    ids = tokenizer.encode(prompt) if prompt else np.zeros((1,), np.int32)
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        raise ConfigError(f"no checkpoint in {workdir!r} (no checkpoints/ folder)")
    ckpt = Checkpointer(directory)
    try:
        step = ckpt.latest_step()
        if step is None:
            raise ConfigError(f"no checkpoint in {workdir!r}")
        raw = ckpt.restore_raw(step)
    finally:
        ckpt.close()
    params = raw["task"].get("ema_params") or variables_of(raw)["params"]
    model = build_language_model(config, int(get_dataset_info(config).vocab_size))
    if top_k is not None and not 1 <= top_k <= model.vocab_size:
        raise ConfigError(f"--top_k must be in [0, {model.vocab_size}], got {top_k}")
    tokens = generate_long(
        model, params, ids[None], num_tokens, jax.random.key(seed), temperature, top_k
    )
    return tokenizer.decode(ids) + tokenizer.decode(tokens[0])


def main(argv: list[str]) -> None:
    """Parses `argv` (argv[0] the program), samples and prints; bad input exits 2."""
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
        fail(f"workdir not found: {values.workdir!r}")
    import_tensorflow_quietly()  # jaxlab.train (checkpoints) imports it
    from jaxlab.config import ConfigError

    try:
        text = sample_text(
            values.workdir,
            values.prompt,
            values.num_tokens,
            values.temperature,
            values.top_k or None,
            values.seed,
        )
    except ConfigError as e:
        fail(str(e))
    print(text, flush=True)


if __name__ == "__main__":
    main(sys.argv)
