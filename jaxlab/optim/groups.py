"""Parameter groups by path pattern: frozen parameters, learning-rate multipliers and the
weight-decay mask.

A parameter's path is its '/'-joined key path in the params tree, e.g. 'conv0_0/kernel' or
'head/bias'. Patterns are Python regexes that must match the whole path (`re.fullmatch`).

Config (in `config.optimizer`):

- `frozen`: one regex (use `|` for several), "" for none. Frozen parameters get zero updates
  and no optimizer state (`optax.multi_transform` with `optax.set_to_zero`).
- `lr_multipliers`: comma-separated `regex=multiplier` pairs, e.g.
  `"backbone/.*=0.1,head/.*=1.0"`; unmatched parameters keep multiplier 1. The multiplier
  scales the parameter's final update (after the optimizer, its weight decay and the
  schedule), which is the same as running that group with a schedule scaled by the
  multiplier, while sharing one optimizer instance: clipping still sees the global norm, and
  Eve's loss feedback and ESGD's Hessian-vector products are computed once.
- `weight_decay_exclude`: "default" exempts 1-D parameters and those named `bias` or
  `scale` (norm layers); "" decays everything; otherwise a regex of exempt paths.

Every parameter falls in exactly one group (`param_groups`); a pattern that matches no
parameter, or a parameter that two patterns claim, is a ConfigError (`validate_param_groups`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import optax
from jax import numpy as jnp

from jaxlab.config import ConfigError

FROZEN = "frozen"
TRAINABLE = "trainable"


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def param_path(key_path: tuple) -> str:
    """Joins a jax key path into 'a/b/c'."""
    return "/".join(_key_name(k) for k in key_path)


def param_paths(params: Any) -> list[str]:
    """Returns the paths of all parameters (leaves) in tree order."""
    return [param_path(kp) for kp, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def compile_pattern(pattern: str, key: str) -> re.Pattern:
    """Compiles a group regex; raises ConfigError naming `optimizer.<key>` when invalid."""
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"optimizer.{key}: bad regex {pattern!r} ({e})") from None


def parse_lr_multipliers(spec: str) -> list[tuple[str, float]]:
    """Parses 'regex=mult,regex=mult' into [(regex, mult)]; raises ConfigError when malformed."""
    out = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        pattern, sep, value = item.rpartition("=")
        try:
            mult = float(value)
        except ValueError:
            mult = -1.0
        if not sep or not pattern or mult < 0:
            raise ConfigError(
                f"optimizer.lr_multipliers entry {item!r} must be 'regex=multiplier' with a "
                "multiplier >= 0, e.g. 'backbone/.*=0.1'"
            )
        compile_pattern(pattern, "lr_multipliers")
        out.append((pattern, mult))
    return out


def example_paths(paths: list[str], limit: int = 8) -> str:
    """'a, b, ... (N in all)': the first `limit` parameter paths, for error messages."""
    shown = ", ".join(paths[:limit])
    return shown + (f", ... ({len(paths)} in all)" if len(paths) > limit else "")


def param_groups(config: ml_collections.ConfigDict, params: Any) -> dict[str, str]:
    """Returns {path: group} with group 'frozen' or the multiplier as a string ('1.0' for
    the default group); raises ConfigError naming `optimizer.frozen` or
    `optimizer.lr_multipliers` for a pattern that matches no parameter (with example paths)
    or a path that two patterns claim."""
    o = config.optimizer
    patterns = [(o.frozen, FROZEN, "frozen")] if o.frozen else []
    patterns += [(p, repr(m), "lr_multipliers") for p, m in parse_lr_multipliers(o.lr_multipliers)]
    compiled = [(compile_pattern(p, key), p, g, key) for p, g, key in patterns]
    paths = param_paths(params)
    groups, used = {}, set()
    for path in paths:
        hits = [(p, g, key) for rx, p, g, key in compiled if rx.fullmatch(path)]
        if len(hits) > 1:
            raise ConfigError(
                f"parameter {path!r} matches several group patterns: "
                f"{', '.join(f'optimizer.{key} {p!r}' for p, _, key in hits)}; make them disjoint"
            )
        groups[path] = hits[0][1] if hits else repr(1.0)
        used.update((p, key) for p, _, key in hits)
    for _, p, _, key in compiled:
        if (p, key) not in used:
            raise ConfigError(
                f"optimizer.{key} pattern {p!r} matches no parameter (patterns must match the "
                f"whole '/'-joined path); parameters: {example_paths(paths)}"
            )
    return groups


def validate_param_groups(config: ml_collections.ConfigDict, params: Any) -> None:
    """Raises ConfigError when a frozen / lr-multiplier pattern matches no parameter (or two
    patterns claim one). Call it after `init`, before training."""
    param_groups(config, params)
    exclude = config.optimizer.weight_decay_exclude
    if exclude not in ("", "default"):
        compile_pattern(exclude, "weight_decay_exclude")


def _labels(config: ml_collections.ConfigDict, tree: Any, fn: Callable[[str], str]) -> Any:
    groups = param_groups(config, tree)
    return jax.tree_util.tree_map_with_path(lambda kp, _: fn(groups[param_path(kp)]), tree)


def frozen_labels(config: ml_collections.ConfigDict) -> Callable[[Any], Any]:
    """Returns params -> tree of 'frozen' / 'trainable' labels (for optax.multi_transform)."""
    return lambda tree: _labels(config, tree, lambda g: FROZEN if g == FROZEN else TRAINABLE)


def multiplier_labels(config: ml_collections.ConfigDict) -> Callable[[Any], Any]:
    """Returns params -> tree of multiplier labels ('0.1', '1.0'; frozen ones get '1.0')."""
    return lambda tree: _labels(config, tree, lambda g: repr(1.0) if g == FROZEN else g)


def with_lr_multipliers(
    tx: optax.GradientTransformation, config: ml_collections.ConfigDict
) -> optax.GradientTransformationExtraArgs:
    """Chains `tx` with a per-group `optax.scale(multiplier)` when `lr_multipliers` is set."""
    mults = {repr(m) for _, m in parse_lr_multipliers(config.optimizer.lr_multipliers)}
    if not mults:
        return optax.with_extra_args_support(tx)
    scales = {label: optax.scale(float(label)) for label in mults | {repr(1.0)}}
    return optax.chain(tx, optax.multi_transform(scales, multiplier_labels(config)))


def decay_mask(config: ml_collections.ConfigDict) -> Callable[[Any], Any]:
    """Returns params -> tree of bools, True where weight decay applies."""
    exclude = config.optimizer.weight_decay_exclude
    rx = None if exclude in ("", "default") else compile_pattern(exclude, "weight_decay_exclude")

    def decayed(kp, x) -> bool:
        path = param_path(kp)
        if exclude == "default":
            return len(x.shape) > 1 and path.split("/")[-1] not in ("bias", "scale")
        return not (rx is not None and rx.fullmatch(path))

    return lambda tree: jax.tree_util.tree_map_with_path(decayed, tree)


def _is_masked(x: Any) -> bool:
    return isinstance(x, optax.MaskedNode)


def with_frozen(
    tx: optax.GradientTransformation, config: ml_collections.ConfigDict
) -> optax.GradientTransformationExtraArgs:
    """Applies `tx` to the trainable parameters only (frozen ones: zero update, no state).

    Inside `optax.multi_transform` the trainable transformation sees trees in which the frozen
    leaves are `optax.MaskedNode`s; an `hvp_fn=` passed to `update` is adapted to them: the
    frozen entries of v are set to zero and those of H v dropped (the Hessian restricted to
    the trainable parameters).
    """
    inner = optax.multi_transform(
        {TRAINABLE: tx, FROZEN: optax.set_to_zero()}, frozen_labels(config)
    )

    def update_fn(updates, state, params=None, **extra_args):
        hvp_fn = extra_args.get("hvp_fn")
        if hvp_fn is not None and params is not None:
            extra_args["hvp_fn"] = _masked_hvp(hvp_fn, params)
        return inner.update(updates, state, params, **extra_args)

    return optax.GradientTransformationExtraArgs(inner.init, update_fn)


def _masked_hvp(hvp_fn: Callable[[Any], Any], params: Any) -> Callable[[Any], Any]:
    """Adapts v -> H v on full trees to trees with MaskedNode leaves."""

    def masked(v):
        leaves = jax.tree.leaves(v, is_leaf=_is_masked)
        p_leaves, p_def = jax.tree.flatten(params)
        full = [
            jnp.zeros_like(p) if _is_masked(x) else x for x, p in zip(leaves, p_leaves, strict=True)
        ]
        hv = jax.tree.leaves(hvp_fn(jax.tree.unflatten(p_def, full)))
        v_def = jax.tree.structure(v, is_leaf=_is_masked)
        return jax.tree.unflatten(
            v_def, [x if _is_masked(x) else h for x, h in zip(leaves, hv, strict=True)]
        )

    return masked
