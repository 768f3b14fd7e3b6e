"""Tests of jaxlab.nn.norms: each norm normalizes over the axes it claims."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.nn.norms import NORMS, GroupNorm, Identity, get_norm, local_response_norm
from tests.models.utils import fast_key, randn

# Deliberately unnormalized input: every channel and sample has its own offset and scale.
_R = np.random.default_rng(0)
X = jnp.asarray(
    _R.normal(size=(4, 5, 6, 8)) * _R.uniform(0.5, 3.0, (4, 1, 1, 8))
    + _R.normal(size=(4, 1, 1, 8)) * 5,
    jnp.float32,
)


def _apply(spec, x, train=True, **kw):
    norm = get_norm(spec, train=train, **kw)
    layer = norm(name="n")
    variables = layer.init(fast_key(1), x)
    out, state = layer.apply(variables, x, mutable=["batch_stats"])
    return out, variables, state


def _assert_standardized(y, axes):
    np.testing.assert_allclose(jnp.mean(y, axis=axes), 0.0, atol=1e-4)
    np.testing.assert_allclose(jnp.var(y, axis=axes), 1.0, atol=1e-3)


def test_batch_norm_normalizes_each_channel_over_n_h_w():
    y, variables, _ = _apply("batch", X)
    _assert_standardized(y, (0, 1, 2))
    assert jax.tree.map(jnp.shape, variables["params"]) == {"scale": (8,), "bias": (8,)}
    # not per sample: one sample's mean is not zero
    assert float(jnp.max(jnp.abs(jnp.mean(y, axis=(1, 2, 3))))) > 0.1


def test_layer_norm_normalizes_each_sample_over_h_w_c():
    y, variables, _ = _apply("layer", X)
    _assert_standardized(y, (1, 2, 3))
    assert float(jnp.max(jnp.abs(jnp.mean(y, axis=(0, 1, 2))))) > 0.1  # channels are not
    assert variables["params"]["scale"].shape == (8,)
    y2, _, _ = _apply("layer", X[:, 0, 0, :])  # also on [N, C]
    _assert_standardized(y2, (1,))


def test_instance_norm_normalizes_each_sample_and_channel_over_h_w():
    y, _, _ = _apply("instance", X)
    _assert_standardized(y, (1, 2))


def test_group_norm_normalizes_each_sample_and_group():
    y, _, _ = _apply("group:2", X)
    groups = y.reshape(4, 5, 6, 2, 4)
    _assert_standardized(groups, (1, 2, 4))
    # the channels inside a group are not standardized one by one
    assert float(jnp.max(jnp.abs(jnp.mean(y, axis=(1, 2))))) > 0.1


def test_group_norm_default_is_32_groups_and_bad_groups_fail():
    assert get_norm("group", train=True).keywords["num_groups"] == 32
    with pytest.raises(ConfigError, match=r"divisible.*1, 2, 4, 8"):
        GroupNorm(num_groups=3).init(fast_key(0), X)


def test_none_is_identity_without_parameters():
    y, variables, _ = _apply("none", X)
    np.testing.assert_array_equal(y, X)
    assert not variables
    assert get_norm("none", train=True) is Identity


def test_batch_norm_running_stats_update_only_in_train_and_are_used_in_eval():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            return get_norm("batch", train=train, momentum=0.5)(name="bn")(x)

    net = Net()
    variables = net.init(fast_key(0), X, train=False)
    np.testing.assert_array_equal(variables["batch_stats"]["bn"]["mean"], 0.0)
    _, state = net.apply(variables, X, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(
        state["batch_stats"]["bn"]["mean"], 0.5 * jnp.mean(X, axis=(0, 1, 2)), rtol=1e-5
    )
    _, same = net.apply(variables, X, train=False, mutable=["batch_stats"])
    np.testing.assert_array_equal(
        same["batch_stats"]["bn"]["mean"], variables["batch_stats"]["bn"]["mean"]
    )
    # eval uses the running statistics: with mean 0, var 1 stats the layer is the identity
    y = net.apply(variables, X, train=False)
    np.testing.assert_allclose(y, X / np.sqrt(1 + 1e-5), rtol=1e-5)


@pytest.mark.parametrize("spec", ["bogus", "batch:3", "group:x", "group:0"])
def test_bad_norm_specs_raise_one_line(spec):
    with pytest.raises(ConfigError) as e:
        get_norm(spec, train=True)
    assert "\n" not in str(e.value)
    if spec == "bogus":
        assert all(n in str(e.value) for n in NORMS)


def test_callable_spec_is_the_factory():
    factory = lambda **kw: nn.LayerNorm(**kw)
    assert get_norm(factory, train=True) is factory


def test_local_response_norm_matches_the_definition():
    x = randn(1, 2, 2, 7, seed=3)
    size, alpha, beta, k = 5, 1e-1, 0.75, 2.0
    xn = np.asarray(x)
    expected = np.empty_like(xn)
    for c in range(7):
        lo, hi = max(0, c - size // 2), min(7, c + (size - 1) // 2 + 1)
        s = np.sum(xn[..., lo:hi] ** 2, axis=-1)
        expected[..., c] = xn[..., c] / (k + alpha / size * s) ** beta
    np.testing.assert_allclose(local_response_norm(x, size, alpha, beta, k), expected, rtol=1e-5)
