"""Tests of jaxlab.models.base: the shared classifier fields, their per-model defaults, and the
norm / activation / initializer and head that `ConvClassifier` builds from them."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxlab.config import ConfigError
from jaxlab.models import get_model
from jaxlab.models.alexnet import AlexNet
from jaxlab.models.base import ConvClassifier, check_depth
from jaxlab.models.densenet import DenseNet
from jaxlab.models.googlenet import GoogLeNet
from jaxlab.models.mobilenet import MobileNetV1, MobileNetV2
from jaxlab.models.resnet import ResNet
from jaxlab.models.vgg import VGG
from jaxlab.nn.norms import Identity
from tests.models.utils import abstract_variables

SHARED = "num_classes dropout norm activation kernel_init bn_momentum dtype bn_axis_name".split()


@pytest.mark.parametrize(
    "cls, defaults",
    [
        (AlexNet, {"dropout": 0.5, "norm": "none"}),
        (VGG, {"dropout": 0.5, "norm": "none"}),
        (GoogLeNet, {"dropout": 0.4, "norm": "none"}),
        (ResNet, {"dropout": 0.0, "norm": "batch"}),
        (DenseNet, {"dropout": 0.0, "norm": "batch"}),
        (MobileNetV1, {"dropout": 0.0, "activation": "relu"}),
        (MobileNetV2, {"dropout": 0.2, "activation": "relu6"}),
    ],
)
def test_conv_classifiers_share_the_fields_with_their_own_defaults(cls, defaults):
    names = [f.name for f in dataclasses.fields(cls)]
    assert names[: len(SHARED)] == SHARED
    model = cls()
    assert model.num_classes == 1000 and model.bn_momentum == 0.9 and model.bn_axis_name is None
    for field, value in defaults.items():
        assert getattr(model, field) == value


def test_norm_act_init_follows_the_fields():
    class Probe(ConvClassifier):
        @nn.compact
        def __call__(self, x, *, train):
            norm, act, init = self.norm_act_init(train, default_init="xavier_normal")
            x = nn.Dense(4, kernel_init=init, name="fc")(x)
            x = act(norm(name="n")(x))
            return self.gap_head(x, train=train)

    x = jnp.ones((2, 3, 3, 5))
    v = jax.eval_shape(lambda: Probe(num_classes=7).init(jax.random.key(0), x, train=True))
    assert set(v["params"]) == {"fc", "n", "head"} and set(v["batch_stats"]) == {"n"}
    assert v["params"]["head"]["kernel"].shape == (4, 7)
    v = jax.eval_shape(
        lambda: Probe(norm="none", activation="prelu").init(jax.random.key(0), x, train=True)
    )
    assert set(v["params"]) == {"fc", "PReLU_0", "head"} and "batch_stats" not in v

    norm, act, init = Probe(norm="none").norm_act_init(False)
    assert norm is Identity and act(jnp.array(-1.0)) == 0.0
    k = init(jax.random.key(0), (200, 300))  # lecun_normal by default: variance 1 / fan_in
    assert float(k.var()) == pytest.approx(1 / 200, rel=0.1)
    special = jax.nn.initializers.constant(3.0)
    assert Probe(kernel_init="orthogonal").norm_act_init(False, kernel_init=special)[2] is special


def test_models_still_pass_the_bias_rule_to_their_convs():
    """AlexNet's convs drop their bias under a norm; VGG's keep it (torchvision's layout)."""
    shape = (1, 64, 64, 3)
    plain = abstract_variables(get_model("alexnet"), shape, train=False)["params"]
    normed = abstract_variables(get_model("alexnet", norm="batch"), shape, train=False)["params"]
    assert "bias" in plain["conv1"] and "bias" not in normed["conv1"] and "norm1" in normed
    vgg = abstract_variables(get_model("vgg11_bn", width=4), (1, 32, 32, 3), train=False)
    assert "bias" in vgg["params"]["conv1_1"] and "norm1_1" in vgg["batch_stats"]


def test_check_depth_names_the_presets():
    check_depth("vgg", 16, {11: 0, 16: 0})
    with pytest.raises(ConfigError, match="^vgg depth 12 has no preset; valid depths: 11, 16$"):
        check_depth("vgg", 12, {11: 0, 16: 0})
