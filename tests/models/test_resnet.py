"""Tests of jaxlab.models.resnet: shortcuts, plain twins, batch-norm train/eval behaviour,
stochastic depth, Fixup and the depth rules."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxlab.config import ConfigError
from jaxlab.models import get_model
from jaxlab.models.resnet import zero_pad_shortcut
from tests.models.utils import abstract_variables, fast_key, numpy_variables, param_count, randn

X = randn(4, 8, 8, 3, seed=1)


def _paths(variables, collection="params"):
    return ["/".join(p) for p in traverse_util.flatten_dict(variables[collection])]


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    x = randn(2, 4, 4, 16)
    y = zero_pad_shortcut(x, 32, 2)
    assert y.shape == (2, 2, 2, 32)
    np.testing.assert_array_equal(y[..., 8:24], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., :8], 0.0)
    np.testing.assert_array_equal(y[..., 24:], 0.0)


def test_option_a_shortcuts_have_no_parameters_and_projection_ones_do():
    variables = abstract_variables(get_model("resnet20"), (1, 32, 32, 3), train=False)
    assert not [p for p in _paths(variables) if "shortcut" in p]
    projection = get_model("resnet20", shortcut="projection")
    extra = param_count(projection, (1, 32, 32, 3)) - param_count(
        get_model("resnet20"), (1, 32, 32, 3)
    )
    assert extra == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)  # two 1x1 convs with their BNs


def test_imagenet_resnets_project_where_the_shape_changes():
    paths = _paths(abstract_variables(get_model("resnet18"), (1, 64, 64, 3), train=False))
    shortcut_blocks = sorted({p.split("/")[0] for p in paths if "shortcut_conv" in p})
    assert shortcut_blocks == ["stage2_block1", "stage3_block1", "stage4_block1"]
    paths50 = _paths(abstract_variables(get_model("resnet50"), (1, 64, 64, 3), train=False))
    assert "stage1_block1/shortcut_conv/kernel" in paths50  # 64 -> 256 channels


@functools.cache
def _small_resnet_variables():
    model = get_model("resnet20", width=4, num_classes=3)
    return numpy_variables(model, X.shape, train=False)


def test_batch_norm_statistics_update_in_train_only_and_eval_is_deterministic():
    model = get_model("resnet20", width=4, num_classes=3)
    variables = _small_resnet_variables()
    train_fn = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))
    eval_fn = jax.jit(lambda v, x: model.apply(v, x, train=False, mutable=["batch_stats"]))
    train_logits, train_state = train_fn(variables, X)
    eval_logits, eval_state = eval_fn(variables, X)
    old = variables["batch_stats"]["stem_norm"]
    assert not np.allclose(train_state["batch_stats"]["stem_norm"]["mean"], old["mean"])
    jax.tree.map(np.testing.assert_array_equal, eval_state["batch_stats"], variables["batch_stats"])
    assert not np.allclose(train_logits, eval_logits)  # batch vs running statistics
    again, _ = eval_fn(variables, X[:1])  # eval output of a sample ignores the rest of the batch
    np.testing.assert_allclose(again, eval_logits[:1], rtol=1e-5, atol=1e-5)
    assert eval_logits.shape == (4, 3)


def test_stochastic_depth_is_identity_at_eval_and_random_in_train():
    variables = _small_resnet_variables()
    base = get_model("resnet20", width=4, num_classes=3)
    sd = get_model("resnet20", width=4, num_classes=3, stochastic_depth=0.5)
    eval_base = base.apply(variables, X, train=False)
    eval_sd = sd.apply(variables, X, train=False, rngs={"dropout": fast_key(0)})
    np.testing.assert_array_equal(eval_base, eval_sd)
    train = jax.jit(
        lambda v, x, r: sd.apply(v, x, train=True, rngs={"dropout": r}, mutable=["batch_stats"])[0]
    )
    a, b = train(variables, X, fast_key(1)), train(variables, X, fast_key(2))
    assert not np.allclose(a, b)
    with pytest.raises(ConfigError, match="shortcuts"):
        get_model("plain20", stochastic_depth=0.1)


def test_fixup_blocks_are_the_identity_at_init():
    model = get_model(
        "cifar_resnet", depth=8, width=4, num_classes=3, norm="none", kernel_init="fixup"
    )
    variables = jax.jit(lambda k, x: model.init(k, x, train=False))(fast_key(0), X)
    params = variables["params"]
    assert "batch_stats" not in variables
    np.testing.assert_array_equal(params["head"]["kernel"], 0.0)
    for block in ("stage1_block1", "stage2_block1", "stage3_block1"):
        np.testing.assert_array_equal(params[block]["conv2"]["kernel"], 0.0)
        assert float(params[block]["scale"]["scale"]) == 1.0
        assert float(params[block]["bias1a"]["bias"]) == 0.0
    # the other branch convs: He init scaled by L^(-1/(2m-2)) = 3^(-1/2)
    k = params["stage3_block1"]["conv1"]["kernel"]
    assert float(jnp.std(k)) == pytest.approx(np.sqrt(2 / (9 * 8)) / np.sqrt(3), rel=0.15)
    logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, X)
    np.testing.assert_array_equal(logits, 0.0)


def test_fixup_needs_no_norm_and_shortcuts():
    with pytest.raises(ConfigError, match="norm='none'"):
        get_model("resnet20", kernel_init="fixup")
    with pytest.raises(ConfigError, match="norm='none'"):
        get_model("plain20", kernel_init="fixup", norm="none")


def test_preact_wide_and_resnext_structure():
    preact = _paths(abstract_variables(get_model("preact_resnet20"), (1, 32, 32, 3), train=False))
    assert "final_norm/scale" in preact and "stem_norm/scale" not in preact
    wrn = abstract_variables(
        get_model("wide_resnet", depth=16, widen_factor=2), (1, 32, 32, 3), train=False
    )
    assert wrn["params"]["stage1_block1"]["conv1"]["kernel"].shape == (3, 3, 16, 32)
    assert (
        len([k for k in wrn["params"] if k.startswith("stage")]) == 6
    )  # (16 - 4) / 6 = 2 per stage
    rx = abstract_variables(get_model("resnext50_32x4d"), (1, 64, 64, 3), train=False)
    assert rx["params"]["stage1_block1"]["conv2"]["kernel"].shape == (
        3,
        3,
        4,
        128,
    )  # 32 groups of 4
    bottleneck = abstract_variables(get_model("preact_resnet164"), (1, 32, 32, 3), train=False)
    assert bottleneck["params"]["stage3_block18"]["conv3"]["kernel"].shape == (1, 1, 64, 256)


@pytest.mark.parametrize(
    "name, kwargs, valid",
    [
        ("resnet", {"depth": 19}, "18, 34, 50, 101, 152"),
        ("cifar_resnet", {"depth": 21}, "6n+2"),
        ("cifar_resnet", {"depth": 21, "block": "bottleneck"}, "9n+2"),
        ("wide_resnet", {"depth": 27}, "6n+4"),
        ("resnet", {"variant": "tiny"}, "imagenet, cifar, wide"),
        ("resnet20", {"shortcut": "dense"}, "projection, zero_pad, none"),
    ],
)
def test_depths_without_presets_and_bad_choices_fail_with_the_valid_ones(name, kwargs, valid):
    with pytest.raises(ConfigError) as e:
        get_model(name, **kwargs)
    assert valid in str(e.value) and "\n" not in str(e.value)
