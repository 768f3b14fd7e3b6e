"""Parsing of `name[:argument]` specs used by the activation, norm and initializer lookups."""

from __future__ import annotations

from jaxlab.config import ConfigError


def split_spec(spec: str, kind: str) -> tuple[str, str | None]:
    """Splits `"group:8"` into `("group", "8")` and `"relu"` into `("relu", None)`."""
    if not isinstance(spec, str):
        raise ConfigError(f"{kind} must be a name (string) or a callable, got {spec!r}")
    name, sep, arg = spec.partition(":")
    return name.strip(), (arg.strip() if sep else None)


def parse_number(arg: str, kind: str, what: str, cast: type = float) -> float | int:
    """Parses a spec's argument (`"0.2"` in `"leaky_relu:0.2"`); ConfigError if not a number."""
    try:
        return cast(arg)
    except ValueError:
        raise ConfigError(f"{kind} argument {what} must be {cast.__name__}, got {arg!r}") from None
