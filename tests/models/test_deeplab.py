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
