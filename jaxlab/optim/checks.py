"""Small config checks shared by the optimizer, schedule and group validators.

Each raises `jaxlab.config.ConfigError` with one line that names the key and what is valid.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxlab.config import ConfigError, check_positive


def require(section: ml_collections.ConfigDict, prefix: str, key: str) -> Any:
    """Returns `section[key]`, or raises ConfigError naming `prefix.key` when it is missing."""
    if key not in section:
        raise ConfigError(f"missing required hyperparameter {prefix}.{key}")
    return section[key]


def require_number(
    section: ml_collections.ConfigDict,
    prefix: str,
    key: str,
    *,
    allow_zero: bool = False,
    integer: bool = False,
    below: float | None = None,
) -> Any:
    """Returns a present, positive (or >= 0) number, optionally strictly below `below`."""
    value = require(section, prefix, key)
    check_positive(f"{prefix}.{key}", value, allow_zero=allow_zero, integer=integer)
    if below is not None and not value < below:
        raise ConfigError(f"{prefix}.{key} must be < {below}, got {value!r}")
    return value


def require_bool(section: ml_collections.ConfigDict, prefix: str, key: str) -> bool:
    """Returns a present boolean, or raises ConfigError."""
    value = require(section, prefix, key)
    if not isinstance(value, bool):
        raise ConfigError(f"{prefix}.{key} must be True or False, got {value!r}")
    return value
