"""Tests of jaxlab.nn.initializers: named initializers, Fixup pieces and LSUV."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxlab.config import ConfigError
from jaxlab.nn.initializers import (
    INITIALIZERS,
    FixupBias,
    FixupScale,
    fixup_kernel_init,
    fixup_scale,
    get_initializer,
    kaiming,
    lsuv_init,
)
from tests.models.utils import fast_key, numpy_variables, randn

SHAPE = (3, 3, 64, 128)  # conv kernel: fan_in = 576, fan_out = 1152
FAN_IN, FAN_OUT = 3 * 3 * 64, 3 * 3 * 128


def _var(init, shape=SHAPE):
    return float(jnp.var(init(fast_key(0), shape, jnp.float32)))


@pytest.mark.parametrize(
    "name, variance",
    [
        ("kaiming_normal", 2 / FAN_IN),
        ("he_uniform", 2 / FAN_IN),
        ("kaiming_normal_fan_out", 2 / FAN_OUT),
        ("kaiming_uniform_fan_out", 2 / FAN_OUT),
        ("kaiming_normal:0.5", 2 / (1 + 0.25) / FAN_IN),
        ("xavier_uniform", 2 / (FAN_IN + FAN_OUT)),
        ("glorot_normal", 2 / (FAN_IN + FAN_OUT)),
        ("lecun_normal", 1 / FAN_IN),
        ("lecun_uniform", 1 / FAN_IN),
    ],
)
def test_initializer_variances(name, variance):
    assert _var(get_initializer(name)) == pytest.approx(variance, rel=0.03)


def test_uniform_bounds_and_orthogonality():
    w = get_initializer("xavier_uniform")(fast_key(0), (100, 200), jnp.float32)
    bound = np.sqrt(6 / 300)
    assert float(jnp.max(jnp.abs(w))) <= bound and float(jnp.max(jnp.abs(w))) > 0.95 * bound
    q = get_initializer("orthogonal")(fast_key(0), (64, 32), jnp.float32)
    np.testing.assert_allclose(q.T @ q, np.eye(32), atol=1e-5)
    assert _var(kaiming("fan_out", negative_slope=0.0)) == pytest.approx(2 / FAN_OUT, rel=0.03)


def test_no_initializer_name_gives_the_default_lecun_normal():
    """None (a model's `kernel_init` left unset) is LeCun normal, or the `default` named."""
    w = get_initializer(None)(fast_key(0), SHAPE, jnp.float32)
    assert w.shape == SHAPE and w.dtype == jnp.float32
    assert float(jnp.mean(w)) == pytest.approx(0.0, abs=3 * (1 / FAN_IN) ** 0.5 / w.size**0.5)
    assert float(jnp.var(w)) == pytest.approx(1 / FAN_IN, rel=0.03)
    np.testing.assert_array_equal(w, get_initializer("lecun_normal")(fast_key(0), SHAPE))
    assert _var(get_initializer(None, default="xavier_uniform")) == pytest.approx(
        2 / (FAN_IN + FAN_OUT), rel=0.03
    )


@pytest.mark.parametrize("spec", ["bogus", "orthogonal:2", "fixup"])
def test_bad_initializer_specs_raise_one_line(spec):
    with pytest.raises(ConfigError) as e:
        get_initializer(spec)
    assert "\n" not in str(e.value)
    if spec == "bogus":
        assert "kaiming_normal" in str(e.value) and "xavier_uniform" in str(e.value)
    assert {"xavier_uniform", "kaiming_normal", "lsuv", "fixup"} <= set(INITIALIZERS)


def test_fixup_scale_and_kernel_init():
    assert fixup_scale(16, 2) == pytest.approx(16**-0.5)
    assert fixup_scale(27, 3) == pytest.approx(27**-0.25)
    assert _var(fixup_kernel_init(9, 2)) == pytest.approx(2 / FAN_IN / 9, rel=0.03)
    with pytest.raises(ConfigError):
        fixup_scale(4, 1)


def test_fixup_bias_and_scale_are_scalars_starting_neutral():
    x = jnp.arange(6.0).reshape(2, 3)
    for layer, name, value in ((FixupBias(), "bias", 0.0), (FixupScale(), "scale", 1.0)):
        variables = layer.init(fast_key(0), x)
        assert variables["params"][name].shape == () and float(variables["params"][name]) == value
        np.testing.assert_array_equal(layer.apply(variables, x), x)
        moved = {"params": {name: jnp.asarray(2.0)}}
        expected = x + 2.0 if name == "bias" else 2.0 * x
        np.testing.assert_array_equal(layer.apply(moved, x), expected)


class _PlainNet(nn.Module):
    """Three convs and two dense layers without normalization (LSUV's use case)."""

    @nn.compact
    def __call__(self, x, train=False):
        for i, f in enumerate((8, 16, 16)):
            x = nn.relu(nn.Conv(f, (3, 3), name=f"conv{i}")(x))
        x = x.reshape(x.shape[0], -1)
        x = jnp.tanh(nn.Dense(32, name="fc")(x))
        return nn.Dense(10, name="head")(x)


def test_lsuv_gives_unit_output_variance_per_layer():
    net = _PlainNet()
    x = randn(16, 8, 8, 3, seed=0) * 3.0
    variables = numpy_variables(net, x.shape)  # LSUV replaces the kernels anyway
    new_vars, report = lsuv_init(net, variables, x, rng=fast_key(2), tol=0.01)
    assert list(report) == ["conv0", "conv1", "conv2", "fc", "head"]
    _, state = net.apply(new_vars, x, capture_intermediates=True, mutable=["intermediates"])
    inter = state["intermediates"]
    for layer in report:
        assert float(jnp.var(inter[layer]["__call__"][0])) == pytest.approx(1.0, abs=0.015), layer
    # orthogonal pre-initialization, then a pure rescaling: columns stay orthogonal
    k = new_vars["params"]["fc"]["kernel"]
    gram = k.T @ k
    np.testing.assert_allclose(gram / gram[0, 0], np.eye(32), atol=1e-4)
    flat_old = traverse_util.flatten_dict(variables["params"])
    flat_new = traverse_util.flatten_dict(new_vars["params"])
    np.testing.assert_array_equal(flat_new[("fc", "bias")], flat_old[("fc", "bias")])


def test_lsuv_without_params_fails():
    class Empty(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            return x

    with pytest.raises(ConfigError, match="no kernel"):
        lsuv_init(Empty(), {"params": {}}, jnp.ones((1, 2)))
