"""Weight initializers by name, LSUV (data-dependent) and Fixup (for residual nets without
normalization).

Names (`get_initializer`): `lecun_normal`, `lecun_uniform`; `xavier_uniform`,
`xavier_normal` (alias `glorot_*`); `kaiming_normal`, `kaiming_uniform` (alias `he_*`: fan_in,
ReLU gain), `kaiming_normal_fan_out`, `kaiming_uniform_fan_out` (PyTorch's ResNet/VGG conv
init); a `:slope` suffix switches the Kaiming gain to leaky ReLU's (`"kaiming_normal:0.2"`);
`orthogonal`; `lsuv` (orthogonal now, then `lsuv_init` rescales the layers on a batch); and
`fixup`, which only residual networks accept (`jaxlab.models.resnet` builds it from
`fixup_kernel_init`, zero-initialized last layers and `FixupBias`/`FixupScale`).
Distributions follow PyTorch's (`normal` is not truncated), so numbers port both ways.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from jaxlab.config import ConfigError
from jaxlab.nn._spec import parse_number, split_spec

Initializer = Callable[..., jax.Array]
VS = jax.nn.initializers.variance_scaling


def kaiming(
    mode: str = "fan_in", negative_slope: float = 0.0, distribution: str = "normal"
) -> Initializer:
    """He et al. (2015) initialization: variance gain^2 / fan with gain^2 = 2 / (1 + a^2)
    (a = 0 for ReLU, the leaky slope otherwise); `mode` is `fan_in` or `fan_out`."""
    return VS(2.0 / (1.0 + negative_slope**2), mode, distribution)


_PLAIN: dict[str, Callable[[], Initializer]] = {
    "lecun_normal": lambda: VS(1.0, "fan_in", "truncated_normal"),  # flax's default
    "lecun_uniform": lambda: VS(1.0, "fan_in", "uniform"),
    "xavier_uniform": lambda: VS(1.0, "fan_avg", "uniform"),
    "xavier_normal": lambda: VS(1.0, "fan_avg", "normal"),
    "glorot_uniform": lambda: VS(1.0, "fan_avg", "uniform"),
    "glorot_normal": lambda: VS(1.0, "fan_avg", "normal"),
    "orthogonal": jax.nn.initializers.orthogonal,
    "lsuv": jax.nn.initializers.orthogonal,  # the pre-initialization of LSUV
}
_KAIMING: dict[str, tuple[str, str]] = {
    "kaiming_normal": ("fan_in", "normal"),
    "kaiming_uniform": ("fan_in", "uniform"),
    "he_normal": ("fan_in", "normal"),
    "he_uniform": ("fan_in", "uniform"),
    "kaiming_normal_fan_out": ("fan_out", "normal"),
    "kaiming_uniform_fan_out": ("fan_out", "uniform"),
}
INITIALIZERS = (*_PLAIN, *_KAIMING, "fixup")


def get_initializer(
    spec: str | Initializer | None, *, default: str = "lecun_normal"
) -> Initializer:
    """Returns the kernel initializer named by `spec` (None: `default`), or `spec` itself when
    callable. `fixup` is refused here: only residual networks can build it (see
    `fixup_kernel_init`). Raises ConfigError naming the valid choices for an unknown name."""
    if spec is None:
        spec = default
    if callable(spec):
        return spec
    name, arg = split_spec(spec, "initializer")
    if name == "fixup":
        raise ConfigError(
            "initializer 'fixup' needs a residual network without normalization; use it with "
            "resnet*/preact_resnet*/cifar_resnet and norm='none'"
        )
    if name in _KAIMING:
        slope = 0.0 if arg is None else parse_number(arg, f"initializer {name!r}", "slope")
        mode, distribution = _KAIMING[name]
        return kaiming(mode, negative_slope=slope, distribution=distribution)
    if name not in _PLAIN:
        raise ConfigError(f"unknown initializer {spec!r}; valid choices: {', '.join(INITIALIZERS)}")
    if arg is not None:
        raise ConfigError(f"initializer {name!r} takes no argument, got {spec!r}")
    return _PLAIN[name]()


# --- Fixup (Zhang, Dauphin & Ma, 2019) ------------------------------------------------------


def fixup_scale(num_branches: int, branch_layers: int) -> float:
    """Fixup's rescaling of the He-initialized layers inside each residual branch:
    L ** (-1 / (2m - 2)) for L branches of m layers each."""
    if num_branches < 1 or branch_layers < 2:
        raise ConfigError(
            f"fixup needs >= 1 residual branch of >= 2 layers, "
            f"got {num_branches} of {branch_layers}"
        )
    return num_branches ** (-1.0 / (2 * branch_layers - 2))


def fixup_kernel_init(num_branches: int, branch_layers: int) -> Initializer:
    """He (fan_in, ReLU) normal initialization scaled by `fixup_scale`, for every layer of a
    residual branch but its last (which Fixup initializes to zero)."""
    s = fixup_scale(num_branches, branch_layers)
    return VS(2.0 * s * s, "fan_in", "normal")


class FixupBias(nn.Module):
    """A scalar bias, initialized to zero, that Fixup inserts before each conv, dense layer
    and activation in place of the normalization layers' shifts."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.param("bias", nn.initializers.zeros, (), jnp.float32).astype(x.dtype)


class FixupScale(nn.Module):
    """A scalar multiplier, initialized to one, at the end of each Fixup residual branch."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return x * self.param("scale", nn.initializers.ones, (), jnp.float32).astype(x.dtype)


# --- LSUV (Mishkin & Matas, 2016) -----------------------------------------------------------


def _kernel_paths(params: Any) -> list[tuple[str, ...]]:
    flat = traverse_util.flatten_dict(params)
    return [p for p, v in flat.items() if p[-1] == "kernel" and v.ndim >= 2]


def lsuv_init(
    model: nn.Module,
    variables: Any,
    x: jax.Array,
    *,
    rng: jax.Array | None = None,
    tol: float = 0.02,
    max_iters: int = 10,
    apply_kwargs: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, float]]:
    """Layer-sequential unit-variance initialization, on the batch `x`.

    Every kernel (conv, dense) is first replaced by an orthogonal one (drawn from `rng`; pass
    rng=None to keep the current kernels), then, layer by layer in creation order, scaled by
    1/sqrt(var) of its layer's output on `x` until |var - 1| < tol (at most `max_iters`
    rescalings). Layers are the modules that own a `kernel` (their `__call__` output is
    measured). Meant for networks without batch norm (batch norm already normalizes).

    Returns the new variables and the final output variance of each layer, keyed by the
    kernel's module path ("block1/conv2").
    """
    kwargs = {"train": False, **(apply_kwargs or {})}
    params = traverse_util.flatten_dict(variables["params"])
    paths = _kernel_paths(variables["params"])
    if not paths:
        raise ConfigError("lsuv_init found no kernel to initialize in the model's params")
    if rng is not None:
        ortho = jax.nn.initializers.orthogonal()

        @jax.jit
        def orthogonal_kernels(key: jax.Array) -> dict[tuple[str, ...], jax.Array]:
            return {
                p: ortho(jax.random.fold_in(key, i), params[p].shape, params[p].dtype)
                for i, p in enumerate(paths)
            }

        params.update(orthogonal_kernels(rng))
    modules = {p[:-1] for p in paths}

    def capture(mdl: nn.Module, method: str) -> bool:
        return method == "__call__" and tuple(mdl.path) in modules

    @jax.jit
    def variances(flat_params: dict) -> dict[tuple[str, ...], jax.Array]:
        new_vars = {**variables, "params": traverse_util.unflatten_dict(flat_params)}
        _, state = model.apply(
            new_vars, x, capture_intermediates=capture, mutable=["intermediates"], **kwargs
        )
        inter = traverse_util.flatten_dict(state["intermediates"])
        return {p: jnp.var(inter[(*p[:-1], "__call__")][0]) for p in paths}

    report: dict[str, float] = {}
    for p in paths:
        for it in range(max_iters + 1):
            var = float(variances(params)[p])
            if abs(var - 1.0) < tol or it == max_iters or var == 0.0:
                break
            params[p] = params[p] / math.sqrt(var)
        report["/".join(p[:-1])] = var
    return {**variables, "params": traverse_util.unflatten_dict(params)}, report
