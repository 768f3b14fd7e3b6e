"""The model registry: `get_model(name, **kwargs)` builds a Flax Linen module by name.

Every model takes `num_classes`, `dtype` and `bn_axis_name` (the pmap axis for synchronized
batch norm; ignored by models without batch norm) and is called as `model(x, train=...)`.
Add a family by writing its file and one line per preset in `_REGISTRY` (a
`functools.partial` of the family's class; keyword arguments override the preset's).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn

from jaxlab.config import ConfigError
from jaxlab.models.alexnet import AlexNet
from jaxlab.models.densenet import DenseNet
from jaxlab.models.googlenet import GoogLeNet
from jaxlab.models.lenet import LeNet5
from jaxlab.models.mixer import MlpMixer
from jaxlab.models.mlp import MLP
from jaxlab.models.mobilenet import MobileNetV1, MobileNetV2
from jaxlab.models.resnet import ResNet
from jaxlab.models.small_cnn import SmallCNN
from jaxlab.models.vgg import VGG
from jaxlab.models.vit import ViT
from jaxlab.nn.activations import get_activation
from jaxlab.nn.initializers import get_initializer
from jaxlab.nn.norms import get_norm

P = functools.partial
_CIFAR = {"variant": "cifar", "num_classes": 10}

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "linear": P(MLP, depth=0),
    "mlp": MLP,
    "lenet5": LeNet5,
    "small_cnn": SmallCNN,
    "alexnet": AlexNet,
    "vgg": VGG,  # depth=11/13/16/19
    **{f"vgg{d}": P(VGG, depth=d) for d in (11, 13, 16, 19)},
    **{f"vgg{d}_bn": P(VGG, depth=d, norm="batch") for d in (11, 13, 16, 19)},
    "googlenet": GoogLeNet,
    "resnet": ResNet,  # depth=18/34/50/101/152
    **{f"resnet{d}": P(ResNet, depth=d) for d in (18, 34, 50, 101, 152)},
    "resnext50_32x4d": P(ResNet, depth=50, groups=32, width_per_group=4),
    "resnext101_32x8d": P(ResNet, depth=101, groups=32, width_per_group=8),
    "wide_resnet50_2": P(ResNet, depth=50, width_per_group=128),
    "cifar_resnet": P(ResNet, depth=20, **_CIFAR),  # depth=6n+2 (9n+2 with bottlenecks)
    **{f"resnet{d}": P(ResNet, depth=d, **_CIFAR) for d in (20, 32, 44, 56, 110, 1202)},
    **{f"plain{d}": P(ResNet, depth=d, shortcut="none", **_CIFAR) for d in (20, 32, 44, 56, 110)},
    "preact_resnet": P(ResNet, depth=18, preact=True),
    **{f"preact_resnet{d}": P(ResNet, depth=d, preact=True) for d in (18, 34, 50, 101, 152)},
    **{
        f"preact_resnet{d}": P(ResNet, depth=d, preact=True, shortcut="projection", **_CIFAR)
        for d in (20, 56, 110)
    },
    "preact_resnet164": P(
        ResNet, depth=164, preact=True, block="bottleneck", shortcut="projection", **_CIFAR
    ),
    "wide_resnet": P(ResNet, variant="wide", depth=28, widen_factor=10, num_classes=10),
    "densenet": DenseNet,  # depth=121/161/169/201
    **{f"densenet{d}": P(DenseNet, depth=d) for d in (121, 161, 169, 201)},
    "mobilenet_v1": MobileNetV1,
    "mobilenet_v2": MobileNetV2,
    "vit": ViT,
    "vit_tiny": P(ViT, hidden_size=192, depth=12, num_heads=3, mlp_dim=768),
    "vit_small": P(ViT, hidden_size=384, depth=12, num_heads=6, mlp_dim=1536),
    "vit_b16": P(ViT, hidden_size=768, depth=12, num_heads=12, mlp_dim=3072),
    "mlp_mixer": MlpMixer,
    "mixer_s16": P(MlpMixer, hidden_size=512, depth=8, tokens_mlp_dim=256, channels_mlp_dim=2048),
    "mixer_b16": P(MlpMixer, hidden_size=768, depth=12, tokens_mlp_dim=384, channels_mlp_dim=3072),
}


def list_models() -> list[str]:
    """Returns the registered model names, sorted."""
    return sorted(_REGISTRY)


def _field_names(factory: Callable[..., nn.Module]) -> set[str]:
    cls = factory.func if isinstance(factory, functools.partial) else factory
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls) if f.init} - {"parent", "name"}
    return set()


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Builds the model registered as `name` with `kwargs` (e.g. num_classes, depth, width).

    Raises ConfigError for an unknown name (listing the valid ones), an unknown argument
    (listing the model's arguments), a depth with no preset, or an unknown norm, activation
    or initializer name (listing the valid ones).
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; valid choices: {', '.join(list_models())}")
    factory = _REGISTRY[name]
    fields = _field_names(factory)
    unknown = sorted(set(kwargs) - fields) if fields else []
    if unknown:
        raise ConfigError(
            f"model {name!r} has no argument(s) {', '.join(unknown)}; "
            f"valid arguments: {', '.join(sorted(fields))}"
        )
    try:
        model = factory(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for model {name!r}: {e}") from None
    _check_block_names(model)
    return model


def _check_block_names(model: nn.Module) -> None:
    """Fails now (not at the first forward pass) on an unknown norm, activation or
    initializer name given to the model."""
    if isinstance(getattr(model, "norm", None), str):
        get_norm(model.norm, train=False)
    if isinstance(getattr(model, "activation", None), str):
        get_activation(model.activation)
    init = getattr(model, "kernel_init", None)
    if isinstance(init, str) and not (init == "fixup" and isinstance(model, ResNet)):
        get_initializer(init)
