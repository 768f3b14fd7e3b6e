"""The numeric gradient check: it passes on correct gradients, fails on a deliberately
wrong custom_vjp naming the layer after which the wrong gradient enters, fails on a layer
that computes in float32 inside a float64 model, keeps float64 inside, keeps a `TINY_ZOO`
entry (or a stated reason) for every model family of the registry, and passes on one model
per kind of layer (the whole zoo: `python -m scripts.gradcheck --models tiny`)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.analysis.gradcheck import (
    FULL_SIZE,
    KNOWN_FAILURES,
    NOT_IN_ZOO_CHECK,
    TINY_ZOO,
    check_gradients,
    check_model,
    check_zoo_model,
)
from jaxlab.models import get_model, list_models, model_fields


def make_relu(scale_of_backward: float):
    @jax.custom_vjp
    def relu(x):
        return jnp.maximum(x, 0.0)

    def fwd(x):
        return relu(x), x

    def bwd(x, g):
        return (scale_of_backward * g * (x > 0),)

    relu.defvjp(fwd, bwd)
    return relu


class ThreeLayers(nn.Module):
    backward_scale: float = 1.0

    @nn.compact
    def __call__(self, x, *, train: bool):
        relu = make_relu(self.backward_scale)
        x = jnp.tanh(nn.Dense(5)(x.reshape(x.shape[0], -1)))
        x = relu(nn.Dense(4)(x))  # the wrong rule, when there is one, acts here
        return nn.Dense(3)(x)


class Leaky(nn.Module):
    """A float64-capable model whose middle layer computes in `middle` whatever `dtype`;
    `cast_output`: logits cast to float32 (as the language models do)."""

    middle: Any = jnp.float32
    cast_output: bool = False
    dtype: Any = jnp.float64

    @nn.compact
    def __call__(self, x, *, train: bool):
        x = jnp.tanh(nn.Dense(5, dtype=self.dtype)(x))
        x = jnp.tanh(nn.Dense(4, dtype=self.middle, name="middle")(x))
        out = nn.Dense(3, dtype=self.dtype)(x)
        return out.astype(jnp.float32) if self.cast_output else out


X = (np.random.default_rng(0).normal(size=(4, 6)),)


def test_a_wrong_custom_vjp_fails_with_the_culprit_named():
    good = check_model(ThreeLayers(1.0), X)
    assert good.passed and good.max_error < 1e-8 and good.culprit is None
    bad = check_model(ThreeLayers(1.5), X)
    assert not bad.passed and bad.culprit == "Dense_1"
    failing = {r.path for r in bad.rows if not r.passed}
    assert failing == {"Dense_0/kernel", "Dense_0/bias", "Dense_1/kernel", "Dense_1/bias"}
    assert "right after layer Dense_1" in bad.format()
    assert jnp.zeros(1).dtype == jnp.float32  # float64 did not leak out of the check


def test_a_layer_computing_in_float32_fails_the_check():
    assert check_model(Leaky(middle=jnp.float64), X).passed  # the control
    # float32 in the middle of a float64 model: its rounding swamps the centered
    # differences (relative error far above 1e-6) ...
    leaky = check_model(Leaky(), X)
    assert not leaky.passed and leaky.max_error > 1e-4
    # ... and with float32 logits the check projects the layers' outputs and names the
    # float32 one
    named = check_model(Leaky(cast_output=True), X)
    assert not named.passed and named.leaks == ("middle",)
    # a model computing nothing in float64 cannot pass with a constant loss
    with pytest.raises(ValueError, match="no float64 output"):
        check_model(Leaky(dtype=jnp.float32, cast_output=True), X)


def test_relative_error_per_tensor_against_a_closed_form():
    # f(a, b) = sum(a^3) + 2 sum(b): grads 3a^2 and 2; a check with a gradient off by
    # 1% on `b` reports ~0.5% on b only.
    params = {"a": np.array([1.0, -2.0, 0.5]), "b": np.array([3.0, 4.0])}
    ok = check_gradients(lambda p: jnp.sum(p["a"] ** 3) + 2 * jnp.sum(p["b"]), params)
    assert ok.passed and [r.path for r in ok.rows] == ["a", "b"]

    @jax.custom_vjp
    def twice(b):
        return 2 * b

    twice.defvjp(lambda b: (twice(b), None), lambda _, g: (2.02 * g,))
    off = check_gradients(lambda p: jnp.sum(p["a"] ** 3) + jnp.sum(twice(p["b"])), params)
    errors = {r.path: r.rel_error for r in off.rows}
    assert errors["a"] < 1e-9 and errors["b"] == pytest.approx(0.01 / 2.01, rel=1e-3)


def test_every_family_of_the_registry_is_in_the_zoo_check():
    checked = {type(get_model(name, **kwargs)) for name, kwargs, _ in TINY_ZOO.values()}
    families = {
        name: type(
            get_model(name, **({"num_classes": 3} if "num_classes" in model_fields(name) else {}))
        )
        for name in list_models()
    }
    # Other test modules register their own tiny models (tests/tasks/lm_test_models.py).
    families = {k: v for k, v in families.items() if v.__module__.startswith("jaxlab.")}
    missing = sorted(
        name
        for name, cls in families.items()
        if cls not in checked and cls.__name__ not in NOT_IN_ZOO_CHECK
    )
    assert not missing, f"registry models of families without a TINY_ZOO entry: {missing}"
    assert set(FULL_SIZE) <= set(TINY_ZOO)


# One model per kind of layer (convolution with batch norm and shortcuts, attention, the
# relative attention of Transformer-XL, recurrence): each costs 5-35 s of compilation, so
# the whole zoo is checked by `python -m scripts.gradcheck --models tiny` (README), not here.
ZOO_TEST_SUBSET = ("resnet20", "transformer", "transformer_xl", "rnn_lm")


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_TEST_SUBSET)
def test_zoo_model_passes_in_float64(name):
    if name in KNOWN_FAILURES:
        pytest.skip(f"known failure: {KNOWN_FAILURES[name]}")
    result = check_zoo_model(name)
    assert result.passed, result.format()
