"""Shared command-line plumbing: one-line errors with exit status 2."""

from __future__ import annotations

import sys
from typing import NoReturn

import logging

import ml_collections
from absl import flags
from absl import logging as absl_logging


def fail(message: str) -> NoReturn:
    """Prints `error: message` (one line) to stderr and exits with status 2."""
    line = " ".join(str(message).split())
    print(f"error: {line}", file=sys.stderr, flush=True)
    sys.exit(2)


def parse_flags_or_fail(argv: list[str]) -> list[str]:
    """Parses absl flags (config files and overrides included); bad input exits 2."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(_first_line(e))
    except (FileNotFoundError, IsADirectoryError) as e:
        fail(f"config file not found: {e.filename or e}")
    except (SyntaxError, ImportError, AttributeError, KeyError, TypeError, ValueError) as e:
        fail(f"bad config: {type(e).__name__}: {_first_line(e)}")
    return []  # unreachable


def load_config_or_fail(holder: flags.FlagHolder) -> ml_collections.ConfigDict:
    """Returns the parsed config, or exits 2 when --config was not given."""
    if holder.value is None:
        fail("--config is required, e.g. --config configs/digits_cnn.py")
    return holder.value


class _OwnInfoFilter(logging.Filter):
    """Lets through warnings from anywhere, and INFO only from jaxlab and clu's writers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        path = record.pathname.replace("\\", "/")
        return "/jaxlab/" in path or "/clu/metric_writers/" in path


def quiet_library_logs() -> None:
    """Hides the INFO chatter of orbax, TFDS and JAX; keeps jaxlab's and clu's metric lines.

    absl's `--verbosity` flag, when given, keeps its own meaning (no filtering).
    """
    if flags.FLAGS["verbosity"].present:
        return
    absl_logging.get_absl_handler().addFilter(_OwnInfoFilter())


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
