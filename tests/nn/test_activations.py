"""Tests of jaxlab.nn.activations."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.nn.activations import (
    ACTIVATIONS,
    Maxout,
    get_activation,
    identity,
    list_activations,
    maxout,
)
from tests.models.utils import fast_key, numpy_variables

X = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])
erf = np.vectorize(math.erf)


def test_the_course_activations_are_all_there():
    for name in (
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "prelu",
        "elu",
        "selu",
        "gelu",
        "gelu_tanh",
        "swish",
        "silu",
        "maxout",
    ):
        assert name in list_activations()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("relu", np.maximum(X, 0)),
        ("relu6", np.clip(X, 0, 6)),
        ("sigmoid", 1 / (1 + np.exp(-X))),
        ("tanh", np.tanh(X)),
        ("leaky_relu", np.where(X > 0, X, 0.01 * X)),
        ("leaky_relu:0.2", np.where(X > 0, X, 0.2 * X)),
        ("elu", np.where(X > 0, X, np.expm1(X))),
        ("elu:0.5", np.where(X > 0, X, 0.5 * np.expm1(X))),
        ("selu", 1.0507009873554805 * np.where(X > 0, X, 1.6732632423543772 * np.expm1(X))),
        ("gelu", 0.5 * X * (1 + erf(np.asarray(X) / np.sqrt(2)))),
        ("gelu_tanh", 0.5 * X * (1 + np.tanh(np.sqrt(2 / np.pi) * (X + 0.044715 * X**3)))),
        ("swish", X / (1 + np.exp(-X))),
        ("silu", X / (1 + np.exp(-X))),
        ("identity", X),
    ],
)
def test_activation_values(name, expected):
    np.testing.assert_allclose(get_activation(name)(X), expected, rtol=1e-5, atol=1e-6)


def test_exact_and_tanh_gelu_differ():
    x = jnp.linspace(-3, 3, 13)
    assert (
        float(jnp.max(jnp.abs(get_activation("gelu")(x) - get_activation("gelu_tanh")(x)))) > 1e-5
    )


def test_callable_passes_through_and_identity():
    f = lambda x: 2 * x
    assert get_activation(f) is f
    assert identity(X) is X
    assert set(ACTIVATIONS) <= set(list_activations())


def test_prelu_learns_one_slope_per_call_site():
    prelu = get_activation("prelu")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return prelu(x) + prelu(2 * x)

    params = Net().init(fast_key(0), X)["params"]
    assert sorted(params) == ["PReLU_0", "PReLU_1"]
    np.testing.assert_allclose(params["PReLU_0"]["negative_slope"], 0.25)
    out = Net().apply({"params": params}, X)
    np.testing.assert_allclose(out, np.where(X > 0, 3 * X, 0.75 * X), rtol=1e-6)
    grads = jax.grad(lambda p: Net().apply({"params": p}, X).sum())(params)
    assert float(grads["PReLU_0"]["negative_slope"]) == pytest.approx(float(X[X < 0].sum()))


def test_prelu_initial_slope_from_spec():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return get_activation("prelu:0.1")(x)

    params = Net().init(fast_key(0), X)["params"]
    np.testing.assert_allclose(params["PReLU_0"]["negative_slope"], 0.1)


def test_maxout_takes_the_max_of_each_group():
    x = jnp.array([[1.0, 5.0, -1.0, -3.0, 2.0, 0.0]])
    np.testing.assert_array_equal(maxout(x, 2), [[5.0, -1.0, 2.0]])
    np.testing.assert_array_equal(maxout(x, 3), [[5.0, 2.0]])
    np.testing.assert_array_equal(get_activation("maxout:3")(x), [[5.0, 2.0]])
    with pytest.raises(ConfigError, match="divisible"):
        maxout(x, 4)


def test_maxout_layer_shape_and_params():
    layer = Maxout(features=4, pieces=3)
    variables = numpy_variables(layer, (2, 5))
    assert variables["params"]["dense"]["kernel"].shape == (5, 12)
    assert layer.apply(variables, jnp.ones((2, 5))).shape == (2, 4)


@pytest.mark.parametrize("spec", ["bogus", "relu:2", "leaky_relu:x", "maxout:2.5"])
def test_bad_specs_raise_one_line(spec):
    with pytest.raises(ConfigError) as e:
        get_activation(spec)
    assert "\n" not in str(e.value)
    if spec == "bogus":
        assert "valid choices" in str(e.value) and "prelu" in str(e.value)


def test_get_activation_still_importable_from_mlp():
    from jaxlab.models.mlp import ACTIVATIONS as A
    from jaxlab.models.mlp import get_activation as g

    assert g is get_activation and A is ACTIVATIONS
