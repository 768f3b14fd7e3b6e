"""DeepLabv3/v3+, FCN-8s and the segmentation U-Net: parameter counts against torchvision's
and closed forms, output strides read from feature-map shapes (all through jax.eval_shape:
no real initialization)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxlab.config import ConfigError
from jaxlab.models import get_model
from jaxlab.models.deeplab import decoder_param_count
from jaxlab.models.resnet import dilation_plan


def shapes(model, size: int, capture: bool = False):
    """(params shapes, output shape, intermediates shapes) of `model` on [1, size, size, 3]."""
    x = jnp.zeros((1, size, size, 3))
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}

    def run():
        variables = model.init(rngs, x, train=False)
        out, state = model.apply(
            variables, x, train=False, capture_intermediates=capture, mutable=["intermediates"]
        )
        return variables["params"], out, state.get("intermediates", {})

    return jax.eval_shape(run)


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def test_deeplabv3_resnet50_has_torchvision_parameter_count():
    # torchvision.models.segmentation.deeplabv3_resnet50(num_classes=21, aux_loss=False).
    params, out, _ = shapes(get_model("deeplabv3_resnet50"), 64)
    assert count(params) == 39_638_869
    assert out.shape == (1, 64, 64, 21)


def test_decoder_parameters_match_closed_form_and_output_stride_from_shapes():
    model = get_model(
        "deeplabv3plus",
        depth=18,
        width=8,
        num_classes=5,
        output_stride=8,
        aspp_features=16,
        low_level_features=6,
        decoder_features=12,
    )
    params, out, inter = shapes(model, 64, capture=True)
    flat = traverse_util.flatten_dict(params, sep="/")
    decoder = sum(int(np.prod(v.shape)) for k, v in flat.items() if k.startswith("head_decoder"))
    # Stage 1 of a width-8 basic-block ResNet has 8 channels.
    assert decoder == decoder_param_count(8, 16, 6, 12)
    assert out.shape == (1, 64, 64, 5)
    # Output stride 8: stages 3 and 4 keep stage 2's 8x8 map (64 / 8); stage 1 is stride 4.
    size = {k: inter[k]["__call__"][0].shape[1] for k in inter if k.startswith("stage")}
    assert size["stage1_block2"] == 16 and size["stage2_block2"] == 8
    assert size["stage3_block2"] == 8 and size["stage4_block2"] == 8
    assert inter["head_aspp"]["__call__"][0].shape == (1, 8, 8, 16)


@pytest.mark.parametrize("stride, last", [(16, 4), (32, 2)])
def test_output_stride_16_and_32(stride, last):
    model = get_model(
        "deeplabv3", depth=18, width=4, num_classes=3, output_stride=stride, aspp_features=4
    )
    _, _, inter = shapes(model, 64, capture=True)
    assert inter["stage4_block2"]["__call__"][0].shape[1] == last


def test_dilation_plan_follows_torchvision_and_bad_stride_fails():
    # (stride, dilation of the first block, dilation of the others) per stage.
    assert dilation_plan((False, True, True), 4) == [(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4)]
    assert dilation_plan((), 4) == [(1, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1)]
    with pytest.raises(ConfigError, match="output_stride 12.*valid: 32, 16, 8, 4"):
        shapes(get_model("deeplabv3", depth=18, width=4, num_classes=3, output_stride=12), 32)


def test_fcn8s_score_layers_and_unet_shapes():
    params, out, _ = shapes(get_model("fcn8s", depth=18, width=4, num_classes=5), 64)
    flat = traverse_util.flatten_dict(params, sep="/")
    head = sum(int(np.prod(v.shape)) for k, v in flat.items() if k.startswith("head_"))
    assert head == sum((c + 1) * 5 for c in (8, 16, 32))  # 1x1 scores of stages 2..4
    assert out.shape == (1, 64, 64, 5)
    _, out, _ = shapes(get_model("seg_unet", features=(4, 8), num_classes=3), 20)
    assert out.shape == (1, 20, 20, 3)


def aspp_param_count(c_in: int, f: int, num_rates: int = 3) -> int:
    """1x1 and pooling branches, `num_rates` dilated 3x3 branches, the 1x1 projection of
    their concatenation; every conv without bias and followed by BN (2 per channel)."""
    branches = 2 * (c_in * f + 2 * f) + num_rates * (9 * c_in * f + 2 * f)
    return branches + (2 + num_rates) * f * f + 2 * f


def test_deeplabv3plus_mobilenet_v2_count_and_output_stride_from_shapes():
    # torchvision's mobilenet_v2 (3,504,872 at 1000 classes, tests/models/test_param_counts)
    # minus its 1x1 conv to 1280 (no bias, BN) and its classifier: the blocks DeepLab keeps.
    backbone = 3_504_872 - (320 * 1280 + 2 * 1280) - (1280 * 1000 + 1000)
    model = get_model("deeplabv3plus_mobilenet_v2", num_classes=21, output_stride=8)
    x = jnp.zeros((1, 64, 64, 3))
    # One abstract trace: init with the intermediates captured (the output is __call__'s).
    variables = jax.eval_shape(
        lambda: model.init(jax.random.key(0), x, train=False, capture_intermediates=True)
    )
    params, inter = variables["params"], variables["intermediates"]
    out = inter["__call__"][0]
    head = aspp_param_count(320, 256) + decoder_param_count(24, 256, 48, 256) + 256 * 21 + 21
    assert count(params) == backbone + head == 1_811_712 + head
    assert out.shape == (1, 64, 64, 21)
    size = {k: inter[k]["__call__"][0].shape[1] for k in inter if k.startswith("block")}
    # Output stride 8: blocks 3 (low level) at 64/4, 4..6 at 64/8, and the later blocks
    # (natural strides 16 and 32) dilated at 64/8.
    assert size["block3_project"] == 16 and size["block6_project"] == 8
    assert size["block13_project"] == 8 and size["block17_project"] == 8
    assert inter["head_aspp"]["__call__"][0].shape == (1, 8, 8, 256)
    assert model.rates() == (12, 24, 36)
    with pytest.raises(ConfigError, match="output_stride 12 is not reachable; valid: 1, 2, 4"):
        shapes(get_model("deeplabv3_mobilenet_v2", output_stride=12), 32)


@pytest.mark.slow
def test_atrous_mobilenet_v2_is_the_strided_net_densely():
    # The a trous identity: with the same parameters (eval mode), the output stride 8 net's
    # last features subsampled 4x equal the natural (stride 32) net's. Holds only if a
    # block that drops its stride keeps the previous rate and the later ones double it.
    x = jax.random.normal(jax.random.key(0), (1, 64, 64, 3))
    natural = get_model("mobilenet_v2", width_multiplier=0.25, num_classes=2)
    dense = get_model("mobilenet_v2", width_multiplier=0.25, num_classes=2, output_stride=8)

    @jax.jit
    def last_features(variables):
        def out(model):  # block 17 has no residual: its projection is the last feature map
            _, state = model.apply(
                variables,
                x,
                train=False,
                capture_intermediates=lambda m, _: m.name == "block17_project",
                mutable=["intermediates"],
            )
            return state["intermediates"]["block17_project"]["__call__"][0]

        return out(natural), out(dense)

    coarse, fine = last_features(natural.init(jax.random.key(1), x, train=False))
    assert coarse.shape[1:3] == (2, 2) and fine.shape[1:3] == (8, 8)
    np.testing.assert_allclose(fine[:, ::4, ::4], coarse, rtol=1e-4, atol=1e-4)
