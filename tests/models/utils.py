"""Test helpers: parameter counts from shapes alone, and fast variables for forward tests.

Random initializers compile slowly on a small CPU, so tests that do not test the
initialization itself fill the variables with numpy (He-scaled kernels, unit scales and
running variances, zero biases and means) from `jax.eval_shape` of the model's init.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def abstract_variables(module: Any, shape: tuple[int, ...], **kwargs: Any) -> Any:
    """The module's variables as ShapeDtypeStructs for an input of `shape` (no allocation);
    `kwargs` go to `init` (models need train=False)."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.eval_shape(lambda inp: module.init(jax.random.key(0), inp, **kwargs), x)


def abstract_forward(model: Any, shape: tuple[int, ...], train: bool = False) -> tuple[Any, Any]:
    """(logits, variables) of `model.init_with_output` as ShapeDtypeStructs (no compute)."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.eval_shape(
        lambda inp: model.init_with_output(
            {"params": jax.random.key(0), "dropout": jax.random.key(1)}, inp, train=train
        ),
        x,
    )


def param_count(model: Any, shape: tuple[int, ...]) -> int:
    """The number of parameters (the 'params' collection only) for inputs of `shape`."""
    variables = abstract_variables(model, shape, train=False)
    return sum(math.prod(v.shape) for v in jax.tree.leaves(variables["params"]))


def numpy_variables(module: Any, shape: tuple[int, ...], seed: int = 0, **kwargs: Any) -> Any:
    """Variables of the module's structure filled with numpy randoms (see the module doc)."""
    rng = np.random.default_rng(seed)

    def fill(path: tuple, s: jax.ShapeDtypeStruct) -> jax.Array:
        name = getattr(path[-1], "key", "")
        if name in ("scale", "var"):
            return jnp.ones(s.shape, s.dtype)
        if name in ("bias", "mean"):
            return jnp.zeros(s.shape, s.dtype)
        fan_in = math.prod(s.shape[:-1]) if len(s.shape) > 1 else 1
        std = math.sqrt(2.0 / fan_in) if name == "kernel" else 0.02
        return jnp.asarray(rng.normal(0.0, std, s.shape), s.dtype)

    return jax.tree_util.tree_map_with_path(fill, abstract_variables(module, shape, **kwargs))


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> jax.Array:
    """A standard normal array from numpy (no jax.random compile in tests)."""
    return jnp.asarray(np.random.default_rng(seed).normal(0.0, scale, shape), jnp.float32)


def fast_key(seed: int = 0) -> jax.Array:
    """A typed PRNG key whose random ops compile fast on CPU ('unsafe_rbg': XLA's
    RngBitGenerator; threefry's compile dominates small tests). Statistically fine for tests."""
    return jax.random.key(seed, impl="unsafe_rbg")
