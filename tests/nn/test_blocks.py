"""Tests of jaxlab.nn.blocks: the layers are created in the caller under the names passed
(no extra level in the parameter paths), the conv has a bias exactly when no norm follows,
and each block computes the sequence it documents."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.nn.blocks import (
    ConvNormAct,
    MlpBlock,
    conv_norm_act,
    patch_embedding,
    pre_norm_residual,
)
from jaxlab.nn.norms import get_norm
from tests.models.utils import fast_key, numpy_variables, randn


class _Call(nn.Module):
    """Calls `fn(x, train)` inside a compact method (the blocks' contract)."""

    fn: Any
    train: bool = False

    @nn.compact
    def __call__(self, x):
        return self.fn(x, self.train)


def _shapes(module, x_shape, **kwargs):
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    out, variables = jax.eval_shape(
        lambda inp: module.init_with_output(fast_key(0), inp, **kwargs), x
    )
    return out.shape, jax.tree.map(lambda v: v.shape, dict(variables))


@pytest.mark.parametrize(
    "norm, has_bias, has_norm",
    [
        (None, True, False),
        ("none", True, False),  # get_norm("none") is Identity: no layer, so the conv keeps its bias
        ("batch", False, True),
        ("group:2", False, True),
    ],
)
def test_conv_norm_act_has_a_bias_exactly_without_a_norm(norm, has_bias, has_norm):
    factory = None if norm is None else get_norm(norm, train=False)

    def fn(x, train):
        return conv_norm_act(x, 4, 3, norm=factory, act=nn.relu, conv_name="conv7", norm_name="bn7")

    out, variables = _shapes(_Call(fn), (2, 8, 8, 3))
    assert out == (2, 8, 8, 4)  # padding k // 2 keeps the size at stride 1
    params = variables["params"]
    assert set(params) == ({"conv7", "bn7"} if has_norm else {"conv7"})
    assert params["conv7"]["kernel"] == (3, 3, 3, 4)
    assert ("bias" in params["conv7"]) == has_bias
    assert ("batch_stats" in variables) == (norm == "batch")


def test_conv_norm_act_explicit_bias_strides_groups_and_padding():
    norm = get_norm("batch", train=False)

    def fn(x, train):
        return conv_norm_act(x, 8, 3, strides=2, groups=4, norm=norm, use_bias=True)

    out, variables = _shapes(_Call(fn), (1, 9, 9, 4))
    assert out == (1, 5, 5, 8)
    assert variables["params"]["conv"] == {"kernel": (3, 3, 1, 8), "bias": (8,)}
    assert variables["params"]["norm"] == {"scale": (8,), "bias": (8,)}
    out, _ = _shapes(_Call(lambda x, t: conv_norm_act(x, 2, 3, padding="valid")), (1, 9, 9, 4))
    assert out == (1, 7, 7, 2)


def test_conv_norm_act_computes_conv_then_norm_then_activation():
    x = randn(2, 5, 5, 3, seed=0)
    norm = get_norm("batch", train=False, epsilon=0.0)

    def fn(x, train):
        return conv_norm_act(x, 4, 1, norm=norm, act=nn.relu)

    layer = _Call(fn)
    variables = numpy_variables(layer, x.shape)
    variables["batch_stats"]["norm"]["mean"] = jnp.full((4,), 0.5)
    variables["batch_stats"]["norm"]["var"] = jnp.full((4,), 4.0)
    kernel = variables["params"]["conv"]["kernel"][0, 0]
    expected = jnp.maximum((x @ kernel - 0.5) / 2.0, 0.0)
    np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-5, atol=1e-6)
    linear = _Call(lambda x, t: conv_norm_act(x, 4, 1, norm=norm, act=None))
    assert float(linear.apply(variables, x).min()) < 0  # act None: no activation


def test_conv_norm_act_module_names_its_layers_conv_and_norm():
    layer = ConvNormAct(6, 3, strides=2, norm=get_norm("batch", train=False), act=nn.relu)
    out, variables = _shapes(layer, (1, 8, 8, 2))
    assert out == (1, 4, 4, 6)
    assert variables["params"] == {
        "conv": {"kernel": (3, 3, 2, 6)},
        "norm": {"scale": (6,), "bias": (6,)},
    }
    _, variables = _shapes(ConvNormAct(6, 1), (1, 8, 8, 2))
    assert variables["params"] == {"conv": {"kernel": (1, 1, 2, 6), "bias": (6,)}}


def test_mlp_block_maps_back_to_the_input_width():
    block = MlpBlock(16, dropout=0.5)
    out, variables = _shapes(block, (2, 5, 8), train=False)
    assert out == (2, 5, 8)
    assert variables["params"]["fc1"]["kernel"] == (8, 16)
    assert variables["params"]["fc2"]["kernel"] == (16, 8)
    x = randn(2, 5, 8, seed=1)
    v = numpy_variables(block, x.shape, train=False)
    y1 = block.apply(v, x, train=False)
    np.testing.assert_allclose(y1, block.apply(v, x, train=False))
    y2 = block.apply(v, x, train=True, rngs={"dropout": fast_key(3)})
    assert not np.allclose(y1, y2)


def test_pre_norm_residual_adds_the_branch_of_the_normalized_input():
    x = randn(4, 3, 8, seed=2, scale=5.0)

    def fn(x, train):
        return pre_norm_residual(x, lambda y: 2.0 * y, norm_name="ln7", drop_path=0.5, train=train)

    layer = _Call(fn)
    variables = layer.init(fast_key(0), x)
    assert jax.tree.map(jnp.shape, variables["params"]) == {"ln7": {"scale": (8,), "bias": (8,)}}
    ln = (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(layer.apply(variables, x), x + 2.0 * ln, rtol=1e-4, atol=1e-4)
    # train: each sample's branch is dropped (output x) or kept and scaled by 1 / (1 - 0.5)
    y = _Call(fn, train=True).apply(variables, x, rngs={"dropout": fast_key(5)})
    for i in range(x.shape[0]):
        assert np.allclose(y[i], x[i], atol=1e-5) or np.allclose(
            y[i], x[i] + 4.0 * ln[i], rtol=1e-4, atol=1e-4
        )


def test_patch_embedding_tokens_and_cropping():
    def fn(x, train):
        return patch_embedding(x, 12, 4)

    out, variables = _shapes(_Call(fn), (2, 18, 13, 3))  # 4 x 3 whole patches, the rest cropped
    assert out == (2, 12, 12)
    assert variables["params"] == {"patch_embed": {"kernel": (4, 4, 3, 12), "bias": (12,)}}
    x = randn(1, 4, 4, 3, seed=3)
    layer = _Call(fn)
    v = numpy_variables(layer, x.shape)
    p = v["params"]["patch_embed"]
    expected = x.reshape(1, -1) @ p["kernel"].reshape(-1, 12) + p["bias"]
    np.testing.assert_allclose(layer.apply(v, x)[:, 0], expected, rtol=1e-5, atol=1e-5)
