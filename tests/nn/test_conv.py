"""Tests of jaxlab.nn.conv: padding modes, receptive fields, grouped and separable convs,
pooling and heads."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.nn.conv import (
    GlobalAvgPoolHead,
    SeparableConv,
    adaptive_avg_pool,
    check_input_size,
    conv,
    conv_output_size,
    conv_padding,
    global_avg_pool,
)
from tests.models.utils import fast_key, numpy_variables, randn


class _Wrap(nn.Module):
    """Applies `conv(**kwargs)` inside a compact method."""

    kwargs: dict

    @nn.compact
    def __call__(self, x):
        return conv(**self.kwargs)(x)


def _out_shape(x_shape, **kwargs):
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    out, variables = jax.eval_shape(lambda inp: _Wrap(kwargs).init_with_output(fast_key(0), inp), x)
    return out.shape, variables["params"]


@pytest.mark.parametrize("padding", ["valid", "same", "full", 1])
@pytest.mark.parametrize("kernel, stride, dilation", [(3, 1, 1), (5, 2, 1), (3, 1, 2), (4, 3, 1)])
def test_padding_modes_give_the_documented_sizes(padding, kernel, stride, dilation):
    size = 11
    shape, _ = _out_shape(
        (1, size, size, 2),
        features=3,
        kernel_size=kernel,
        strides=stride,
        padding=padding,
        dilation=dilation,
    )
    expected = conv_output_size(size, kernel, stride, padding, dilation)
    assert shape == (1, expected, expected, 3)
    eff = (kernel - 1) * dilation + 1
    formula = {
        "valid": (size - eff) // stride + 1,
        "same": -(-size // stride),
        "full": (size + eff - 2) // stride + 1,  # stride 1: size + eff - 1
        1: (size + 2 - eff) // stride + 1,
    }[padding]
    assert expected == formula


def test_conv_padding_translations_and_errors():
    assert conv_padding("valid", 3) == "VALID" and conv_padding("same", 3) == "SAME"
    assert conv_padding("full", 3, dilation=2) == [(4, 4), (4, 4)]
    assert conv_padding(2, (3, 3)) == [(2, 2), (2, 2)]
    assert conv_padding([(0, 1), (1, 0)], 2) == [(0, 1), (1, 0)]
    with pytest.raises(ConfigError, match="valid, same, full"):
        conv_padding("reflect", 3)
    with pytest.raises(ConfigError, match="valid, same, full"):
        conv_output_size(5, 3, padding="reflect")


def test_three_stacked_3x3_convs_see_a_7x7_window():
    class Stack(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i in range(3):
                x = conv(2, 3, padding="same", name=f"c{i}")(x)
            return x

    x = randn(1, 15, 15, 1, seed=0)
    variables = numpy_variables(Stack(), x.shape)
    grad = jax.grad(lambda inp: Stack().apply(variables, inp)[0, 7, 7, 0])(x)[0, :, :, 0]
    nonzero = np.asarray(jnp.abs(grad) > 0)
    rows, cols = np.nonzero(nonzero)
    assert nonzero.sum() == 49
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (4, 10, 4, 10)


def test_dilated_3x3_conv_sees_a_5x5_window():
    x = randn(1, 9, 9, 1, seed=0)
    layer = _Wrap({"features": 1, "kernel_size": 3, "dilation": 2})
    variables = numpy_variables(layer, x.shape)
    grad = jax.grad(lambda inp: layer.apply(variables, inp)[0, 4, 4, 0])(x)[0, :, :, 0]
    rows, cols = np.nonzero(np.asarray(grad))
    assert sorted(set(rows)) == [2, 4, 6] and sorted(set(cols)) == [2, 4, 6]


def test_1x1_conv_is_a_per_pixel_dense_layer():
    x = randn(2, 3, 3, 4, seed=0)
    layer = _Wrap({"features": 5, "kernel_size": 1})
    variables = numpy_variables(layer, x.shape)
    p = variables["params"]["Conv_0"]
    assert p["kernel"].size + p["bias"].size == 4 * 5 + 5
    expected = x @ p["kernel"][0, 0] + p["bias"]
    np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-5, atol=1e-6)


def test_grouped_conv_params_and_independence_of_groups():
    _, params = _out_shape((1, 8, 8, 8), features=16, kernel_size=3, groups=4)
    assert params["Conv_0"]["kernel"].shape == (3, 3, 2, 16)  # c_in / groups
    x = randn(1, 5, 5, 8, seed=0)
    layer = _Wrap({"features": 16, "kernel_size": 3, "groups": 4})
    variables = numpy_variables(layer, x.shape)
    grad = jax.grad(lambda inp: layer.apply(variables, inp)[..., :4].sum())(x)  # group 0's outputs
    assert float(jnp.abs(grad[..., :2]).sum()) > 0 and float(jnp.abs(grad[..., 2:]).sum()) == 0
    with pytest.raises(ConfigError, match="groups"):
        _out_shape((1, 8, 8, 8), features=10, kernel_size=3, groups=4)


def test_separable_conv_parameter_count_and_shape():
    x = jax.ShapeDtypeStruct((2, 9, 9, 8), jnp.float32)
    layer = SeparableConv(features=16, kernel_size=3, strides=2, use_bias=False)
    out, variables = jax.eval_shape(lambda inp: layer.init_with_output(fast_key(0), inp), x)
    assert out.shape == (2, 5, 5, 16)
    shapes = jax.tree.map(lambda v: v.shape, variables["params"])
    assert shapes == {"depthwise": {"kernel": (3, 3, 1, 8)}, "pointwise": {"kernel": (1, 1, 8, 16)}}
    total = sum(v.size for v in jax.tree.leaves(variables["params"]))
    assert total == 3 * 3 * 8 + 8 * 16 < 3 * 3 * 8 * 16


def test_pooling_helpers():
    x = randn(2, 5, 7, 3, seed=0)
    np.testing.assert_allclose(global_avg_pool(x), x.mean(axis=(1, 2)), rtol=1e-6)
    assert adaptive_avg_pool(x, (5, 7)) is x
    y = adaptive_avg_pool(x, (3, 2))  # PyTorch's bins: rows [0,2) [1,4) [3,5); cols [0,4) [3,7)
    xn = np.asarray(x)
    expected = np.stack(
        [
            np.stack([xn[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in ((0, 4), (3, 7))], axis=1)
            for r0, r1 in ((0, 2), (1, 4), (3, 5))
        ],
        axis=1,
    )
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    z = jnp.arange(2 * 4 * 4 * 1.0).reshape(2, 4, 4, 1)
    np.testing.assert_allclose(
        adaptive_avg_pool(z, 2), z.reshape(2, 2, 2, 2, 2, 1).mean(axis=(2, 4))
    )
    assert adaptive_avg_pool(z[:, :1, :1], 3).shape == (2, 3, 3, 1)  # smaller input: repeats


def test_global_avg_pool_head():
    x = randn(4, 3, 3, 6, seed=0)
    head = GlobalAvgPoolHead(5, dropout=0.5)
    variables = numpy_variables(head, x.shape)
    assert jax.tree.map(jnp.shape, variables["params"]) == {"kernel": (6, 5), "bias": (5,)}
    expected = x.mean(axis=(1, 2)) @ variables["params"]["kernel"]
    np.testing.assert_allclose(head.apply(variables, x), expected, rtol=1e-5, atol=1e-6)
    train = head.apply(variables, x, train=True, rngs={"dropout": fast_key(2)})
    assert not np.allclose(train, expected)


def test_check_input_size():
    check_input_size(jnp.zeros((1, 32, 32, 3)), 32, "m")
    with pytest.raises(ConfigError, match="m needs NHWC inputs of at least 32x32"):
        check_input_size(jnp.zeros((1, 31, 40, 3)), 32, "m")
    with pytest.raises(ConfigError):
        check_input_size(jnp.zeros((1, 40, 40)), 32, "m")
