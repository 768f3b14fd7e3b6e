"""The numeric gradient check: it passes on correct gradients, fails on a deliberately
wrong custom_vjp naming the layer after which the wrong gradient enters, keeps float64
inside, and passes on a representative subset of the zoo (the whole zoo: scripts/gradcheck.py)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.analysis.gradcheck import check_gradients, check_model, check_zoo_model


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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "small_cnn"])
def test_zoo_subset_passes(name):
    result = check_zoo_model(name)
    assert result.passed, result.format()
