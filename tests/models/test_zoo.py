"""The model zoo as a whole: the registry, output shapes for several input sizes, bad input,
and norm / activation / initializer chosen by name."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import traverse_util

from jaxlab.config import ConfigError
from jaxlab.models import get_model, list_models
from tests.models.utils import abstract_forward, abstract_variables

ISSUE_MODELS = (
    "alexnet vgg11 vgg13 vgg16 vgg19 vgg11_bn vgg13_bn vgg16_bn vgg19_bn googlenet resnet18 "
    "resnet34 resnet50 resnet101 resnet152 resnet20 resnet32 resnet44 resnet56 resnet110 plain20 "
    "plain32 plain44 plain56 plain110 preact_resnet18 wide_resnet resnext50_32x4d densenet121 "
    "mobilenet_v1 mobilenet_v2 vit vit_tiny vit_small vit_b16 mlp_mixer linear mlp lenet5 small_cnn"
).split()


def test_registry_has_every_model_of_the_issue():
    assert set(ISSUE_MODELS) <= set(list_models())


# (name, kwargs that keep it small, input sizes): several sizes per family, batch 2, 7 classes.
FAMILIES = [
    ("alexnet", {}, (63, 100)),
    ("vgg11", {"width": 4, "fc_width": 8}, (32, 45)),
    ("vgg16_bn", {"width": 4, "classifier": "gap"}, (32, 64)),
    ("googlenet", {}, (32, 75)),
    ("resnet18", {"width": 4}, (32, 50)),
    ("resnet50", {"width": 4}, (32, 64)),
    ("resnext50_32x4d", {"width": 8, "groups": 2, "width_per_group": 32}, (33,)),
    ("resnet20", {"width": 4}, (4, 17, 32)),
    ("plain20", {"width": 4}, (8, 32)),
    ("preact_resnet18", {"width": 4}, (40,)),
    ("preact_resnet20", {"width": 4}, (12,)),
    ("wide_resnet", {"depth": 10, "widen_factor": 1}, (16, 32)),
    ("densenet121", {"growth_rate": 4}, (32, 70)),
    ("densenet121", {"growth_rate": 4, "stem": "cifar"}, (8, 32)),
    ("mobilenet_v1", {"width_multiplier": 0.25}, (32, 56)),
    ("mobilenet_v2", {"width_multiplier": 0.25}, (32, 48)),
    ("mobilenet_v2", {"width_multiplier": 0.25, "stem": "cifar"}, (8, 32)),
    ("vit_tiny", {"patch_size": 8}, (16, 32)),
    ("mlp_mixer", {"patch_size": 8, "hidden_size": 32}, (8, 40)),
    ("lenet5", {}, (28, 32)),
    ("small_cnn", {"widths": (4, 8)}, (8, 28)),
    ("mlp", {}, (8, 28)),
    ("linear", {}, (28,)),
]


@pytest.mark.parametrize(
    "name, kwargs, sizes", FAMILIES, ids=[f"{f[0]}-{i}" for i, f in enumerate(FAMILIES)]
)
def test_output_shapes_for_several_input_sizes(name, kwargs, sizes):
    model = get_model(name, num_classes=7, **kwargs)
    for i, size in enumerate(sizes):
        for train in (False, True) if i == 0 else (False,):
            logits, _ = abstract_forward(model, (2, size, size, 3), train=train)
            assert logits.shape == (2, 7), (name, size, train)


def test_grayscale_inputs_work():
    logits, v = abstract_forward(get_model("resnet20", num_classes=10), (2, 28, 28, 1))
    assert logits.shape == (2, 10) and v["params"]["stem_conv"]["kernel"].shape == (3, 3, 1, 16)


@pytest.mark.parametrize(
    "name, size, minimum",
    [
        ("alexnet", 62, 63),
        ("vgg11", 31, 32),
        ("resnet18", 31, 32),
        ("resnet20", 3, 4),
        ("densenet121", 31, 32),
        ("mobilenet_v2", 31, 32),
        ("mobilenet_v1", 16, 32),
        ("googlenet", 31, 32),
        ("vit_tiny", 15, 16),
        ("mlp_mixer", 15, 16),
    ],
)
def test_inputs_too_small_for_the_downsampling_fail_with_one_line(name, size, minimum):
    with pytest.raises(ConfigError) as e:
        abstract_forward(get_model(name, num_classes=3), (1, size, size, 3))
    message = str(e.value)
    assert f"at least {minimum}x{minimum}" in message and "\n" not in message


@pytest.mark.parametrize(
    "name, kwargs, valid",
    [
        ("resnet50", {"norm": "batchnorm"}, "batch, layer, instance, group, none"),
        ("vgg11", {"activation": "rectifier"}, "leaky_relu"),
        ("densenet121", {"kernel_init": "he"}, "kaiming_normal"),
        ("mlp", {"activation": "softplus", "num_classes": 3}, "relu"),
        ("no_such_net", {}, "resnet20"),
        ("resnet18", {"colour": 3}, "valid arguments"),
        ("vgg", {"depth": 12}, "11, 13, 16, 19"),
        ("densenet121", {"depth": 100}, "121, 161, 169, 201"),
    ],
)
def test_bad_names_fail_at_construction_naming_the_valid_choices(name, kwargs, valid):
    with pytest.raises(ConfigError) as e:
        get_model(name, **kwargs)
    assert valid in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "norm, has_params, has_stats",
    [
        ("batch", True, True),
        ("group:4", True, False),
        ("layer", True, False),
        ("instance", True, False),
        ("none", False, False),
    ],
)
def test_norm_is_chosen_by_name(norm, has_params, has_stats):
    logits, v = abstract_forward(
        get_model("resnet20", width=8, norm=norm), (2, 16, 16, 3), train=True
    )
    assert logits.shape == (2, 10)
    paths = ["/".join(p) for p in traverse_util.flatten_dict(v["params"])]
    assert any("norm1/scale" in p for p in paths) == has_params
    assert ("batch_stats" in v) == has_stats


@pytest.mark.parametrize("activation", ["gelu", "prelu", "leaky_relu:0.1", "swish", "elu"])
def test_activation_is_chosen_by_name(activation):
    logits, v = abstract_forward(
        get_model("resnet20", width=4, activation=activation), (2, 8, 8, 3)
    )
    assert logits.shape == (2, 10)
    assert any("PReLU" in "/".join(p) for p in traverse_util.flatten_dict(v["params"])) == (
        activation == "prelu"
    )


def test_initializer_is_chosen_by_name():
    x = np.ones((1, 32, 32, 3), np.float32)
    model = get_model("vgg11", width=4, classifier="gap", kernel_init="xavier_normal")
    params = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0, impl="unsafe_rbg"))[
        "params"
    ]
    k = params["conv3_1"]["kernel"]  # 3x3x8x16
    assert float(k.var()) == pytest.approx(2 / (9 * 8 + 9 * 16), rel=0.25)


def test_first_models_keep_their_parameter_names():
    def names(name, **kw):
        shape = (1, 28, 28, 1)
        return sorted(
            abstract_variables(get_model(name, num_classes=10, **kw), shape, train=False)["params"]
        )

    assert names("linear") == ["head"]
    assert names("mlp") == ["head", "hidden_0", "hidden_1"]
    assert names("lenet5") == ["conv1", "conv2", "fc1", "fc2", "head"]
    assert names("small_cnn", widths=(4,), convs_per_block=1) == ["bn0_0", "conv0_0", "head"]


def test_mobilenet_widths_round_like_torchvision():
    from jaxlab.models.mobilenet import make_divisible

    assert [make_divisible(v) for v in (32 * 0.25, 16 * 0.35, 24 * 0.5, 1280 * 1.0, 91)] == [
        8,
        8,
        16,
        1280,
        88,
    ]
    assert make_divisible(10, 8) == 16  # never below 90% of the request (8 < 9)
    _, v = abstract_forward(get_model("mobilenet_v2", width_multiplier=0.5), (1, 32, 32, 3))
    assert v["params"]["stem"]["conv"]["kernel"].shape == (3, 3, 3, 16)
    assert v["params"]["last"]["conv"]["kernel"].shape[-1] == 1280  # max(1, 0.5) * 1280
