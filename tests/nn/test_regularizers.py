"""Tests of jaxlab.nn.regularizers: inverted scaling at train, identity at eval."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.models import get_model
from jaxlab.nn.regularizers import (
    DropConnectDense,
    StochasticDepth,
    drop_connect,
    dropout,
    stochastic_depth_rates,
)
from tests.models.utils import abstract_variables, fast_key, numpy_variables, randn

X = jnp.ones((64, 32))


def test_dropout_is_inverted_and_identity_at_eval():
    assert dropout(X, 0.3, rng=None, deterministic=True) is X
    y = dropout(X, 0.3, rng=fast_key(0), deterministic=False)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert 0.25 < 1 - float(kept.mean()) < 0.35
    assert abs(float(y.mean()) - 1.0) < 0.05  # expectation preserved
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        dropout(X, 1.0, rng=fast_key(0), deterministic=False)


def test_flax_dropout_in_a_model_is_identity_at_eval_and_random_in_train():
    model = get_model("mlp", num_classes=3, width=16, dropout=0.5)
    x = randn(4, 8, seed=0)
    variables = numpy_variables(model, x.shape, train=False)
    e1 = model.apply(variables, x, train=False)
    e2 = model.apply(variables, x, train=False, rngs={"dropout": fast_key(5)})
    np.testing.assert_array_equal(e1, e2)
    t1 = model.apply(variables, x, train=True, rngs={"dropout": fast_key(2)})
    t2 = model.apply(variables, x, train=True, rngs={"dropout": fast_key(3)})
    assert not np.allclose(t1, t2) and not np.allclose(t1, e1)


def test_stochastic_depth_rates_increase_linearly_to_the_max():
    np.testing.assert_allclose(stochastic_depth_rates(4, 0.2), [0.05, 0.1, 0.15, 0.2])
    assert stochastic_depth_rates(3, 0.0) == [0.0, 0.0, 0.0]
    with pytest.raises(ConfigError):
        stochastic_depth_rates(3, 1.5)


def test_stochastic_depth_drops_whole_samples_and_is_identity_at_eval():
    layer = StochasticDepth(0.5)
    x = randn(200, 3, 3, 2, seed=0)
    np.testing.assert_array_equal(layer.apply({}, x, deterministic=True), x)
    y = layer.apply({}, x, deterministic=False, rngs={"dropout": fast_key(1)})
    dropped = jnp.all(y == 0, axis=(1, 2, 3))
    np.testing.assert_allclose(y[~dropped], 2 * x[~dropped], rtol=1e-6)
    assert 0.35 < float(dropped.mean()) < 0.65


def test_drop_connect_masks_weights():
    w = jnp.ones((50, 40))
    d = drop_connect(w, 0.5, rng=fast_key(0))
    assert set(np.unique(np.asarray(d)).tolist()) == {0.0, 2.0}


def test_drop_connect_dense_matches_dense_at_eval_and_drops_weights_in_train():
    x = randn(5, 6, seed=0)
    layer = DropConnectDense(4, rate=0.5)
    variables = numpy_variables(layer, x.shape)
    dense_vars = abstract_variables(nn.Dense(4), x.shape)
    assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, dense_vars)
    np.testing.assert_allclose(
        layer.apply(variables, x, deterministic=True), nn.Dense(4).apply(variables, x), rtol=1e-6
    )
    rng = fast_key(7)
    y = layer.apply(variables, x, deterministic=False, rngs={"dropout": rng})
    assert not np.allclose(y, nn.Dense(4).apply(variables, x))
    # the mask acts on weights, shared by the batch: changing one example's input leaves
    # the others' outputs as they were, and a zero input gives the bias alone
    x2 = x.at[0].set(0.0)
    y2 = layer.apply(variables, x2, deterministic=False, rngs={"dropout": rng})
    np.testing.assert_allclose(y2[1:], y[1:], rtol=1e-6)
    np.testing.assert_allclose(y2[0], variables["params"]["bias"], atol=1e-6)


def test_mlp_with_drop_connect_keeps_parameter_names_and_is_deterministic_at_eval():
    plain = get_model("mlp", num_classes=3, width=8)
    dc = get_model("mlp", num_classes=3, width=8, drop_connect=0.5)
    x = randn(4, 6, seed=0)
    variables = numpy_variables(plain, x.shape, train=False)
    dc_shapes = abstract_variables(dc, x.shape, train=False)
    assert jax.tree.map(jnp.shape, dc_shapes) == jax.tree.map(jnp.shape, variables)
    np.testing.assert_allclose(
        dc.apply(variables, x, train=False), plain.apply(variables, x, train=False), rtol=1e-6
    )
    t = dc.apply(variables, x, train=True, rngs={"dropout": fast_key(2)})
    assert not np.allclose(t, plain.apply(variables, x, train=False))
