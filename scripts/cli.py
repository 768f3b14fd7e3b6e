"""Shared command-line plumbing: one-line errors with exit status 2, quiet start-up."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from typing import NoReturn

import ml_collections
from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags


def fail(message: str) -> NoReturn:
    """Prints `error: message` (one line) to stderr and exits with status 2."""
    line = " ".join(str(message).split())
    print(f"error: {line}", file=sys.stderr, flush=True)
    sys.exit(2)


def _config_argument(argv: list[str], name: str = "config") -> str | None:
    """The value of --config in argv (either `--config=X` or `--config X`), or None."""
    for i, arg in enumerate(argv):
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def _load_config_file(spec: str) -> ml_collections.ConfigDict:
    path, _, arg = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location("_jaxlab_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def check_config_file(spec: str | None) -> None:
    """Exits 2 unless `spec` (PATH[:ARG]) names an existing Python config file."""
    if spec is None:
        return
    path = spec.partition(":")[0]
    if not path.endswith(".py"):
        fail(f"config file must be a Python file with get_config() (configs/*.py), got {path!r}")
    if not os.path.isfile(path):
        fail(f"config file not found: {path!r}; the experiments are in configs/*.py")


def _unknown_override(argv: list[str]) -> str | None:
    """Names the first --config.KEY override whose KEY the config does not have."""
    try:
        config = _load_config_file(_config_argument(argv) or "")
    except Exception:  # noqa: BLE001 - the caller reports the original error instead
        return None
    for arg in argv:
        if not arg.startswith("--config."):
            continue
        path = arg[len("--config.") :].split("=", 1)[0]
        node, parts = config, path.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                parent = ".".join(parts[:i]) or "the config"
                valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
                return f"unknown config key {path!r} (no {part!r} in {parent}); valid keys: " + (
                    ", ".join(valid) or "none"
                )
            node = node[part]
    return None


def parse_flags_or_fail(argv: list[str]) -> list[str]:
    """Parses absl flags (config files and overrides included); bad input exits 2."""
    check_config_file(_config_argument(argv))
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(_unknown_override(argv) or _root_cause(e))
    except Exception as e:  # noqa: BLE001 - any failure to load the config is bad input
        fail(_unknown_override(argv) or f"bad config: {type(e).__name__}: {_first_line(e)}")
    return []  # unreachable


def complete_model_after_overrides(flag: flags.Flag) -> None:
    """After `--config.model.name=...`, replaces the model keys that the config file's
    get_config completed for its own model (`jaxlab.config.finish_config`) and that the
    command line did not set by the new model's; otherwise resnet20's completed depth 20
    would turn `--config.model.name=resnet56` into a ResNet-20. Raises ConfigError."""
    config = flag.value
    overrides = config_flags.get_override_values(flag)
    if "model.name" not in overrides or not isinstance(config, ml_collections.ConfigDict):
        return
    from jaxlab.models import complete_model_config

    previous = _load_config_file(config_flags.get_config_filename(flag)).model.name
    keep = [k.split(".", 1)[1] for k in overrides if k.startswith("model.")]
    complete_model_config(config.model, previous_name=previous, keep=keep)


def load_config_or_fail(holder: flags.FlagHolder) -> ml_collections.ConfigDict:
    """Returns the parsed config (`complete_model_after_overrides` applied), or exits 2 when
    --config was not given or the model section is bad."""
    if holder.value is None:
        fail("--config is required, e.g. --config configs/digits_cnn.py")
    from jaxlab.config import ConfigError

    try:
        complete_model_after_overrides(flags.FLAGS[holder.name])
    except ConfigError as e:
        fail(str(e))
    return holder.value


class _OwnInfoFilter(logging.Filter):
    """Lets through warnings from anywhere, and INFO only from jaxlab and clu's writers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            # TFDS warns about every empty version folder it probes for an unprepared dataset.
            return "has no dataset_info.json" not in record.getMessage()
        path = record.pathname.replace("\\", "/")
        return "/jaxlab/" in path or "/clu/metric_writers/" in path


def quiet_library_logs() -> None:
    """Hides the INFO chatter of orbax, TFDS and JAX; keeps jaxlab's and clu's metric lines.

    absl's `--verbosity` flag, when given, keeps its own meaning (no filtering).
    """
    if flags.FLAGS["verbosity"].present:
        return
    absl_logging.get_absl_handler().addFilter(_OwnInfoFilter())


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Sends file descriptor 2 to /dev/null (C++ libraries log there, below Python)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow without its native start-up banner (oneDNN notes, absl warnings).

    An import failure is re-raised after stderr is restored, so it is still reported.
    """
    if "tensorflow" in sys.modules:
        return
    with _native_stderr_silenced():
        try:
            import tensorflow  # noqa: F401
        except Exception:  # noqa: BLE001
            failed = True
        else:
            failed = False
    if failed:
        import tensorflow  # noqa: F401,F811 - re-import to show the error


def _root_cause(e: BaseException) -> str:
    """The first line of the innermost exception that `e` was raised from (config_flags
    wraps the error of a config's get_config in a generic 'Error whilst parsing'); a
    ConfigError's own message alone (it already names the problem and the valid choices)."""
    from jaxlab.config import ConfigError

    inner = e
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__
    if isinstance(inner, ConfigError):
        return _first_line(inner)
    if inner is e:
        return _first_line(e)
    return f"{_first_line(e).rstrip(':')}: {type(inner).__name__}: {_first_line(inner)}"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
