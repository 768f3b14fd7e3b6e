"""The model registry: `get_model(name, **kwargs)` builds a Flax Linen module by name.

Every model takes `num_classes`, `dtype` and `bn_axis_name` (the pmap axis for synchronized
batch norm; ignored by models without batch norm) and is called as `model(x, train=...)`.
Add a family by writing its file and one line per preset in `_REGISTRY` (a
`functools.partial` of the family's class; keyword arguments override the preset's).

A model's fields are its constructor arguments: `model_fields(name)` lists them with their
defaults (a preset's own values included). `complete_model_config` writes them into a
config's `model` section so that each one can be overridden from the command line, and
`build_model(name, kwargs, **context)` builds from such a section, adding what comes from
elsewhere (`num_classes` from the dataset, `bn_axis_name` from the parallel mode). Values
are checked against the fields' type annotations, so a wrong value is reported with its key.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flax.linen as nn
import ml_collections
import numpy as np

from jaxlab.config import ConfigError
from jaxlab.models.alexnet import AlexNet
from jaxlab.models.bert import Bert, BertClassifier
from jaxlab.models.conv_lm import ConvLM
from jaxlab.models.deeplab import DeepLab, DeepLabMobileNetV2
from jaxlab.models.densenet import DenseNet
from jaxlab.models.fcn import FCN8s
from jaxlab.models.googlenet import GoogLeNet
from jaxlab.models.gpt import GPT
from jaxlab.models.lenet import LeNet5
from jaxlab.models.mixer import MlpMixer
from jaxlab.models.mlp import MLP
from jaxlab.models.mobilenet import MobileNetV1, MobileNetV2
from jaxlab.models.resnet import ResNet
from jaxlab.models.rnn import RNNLM, RNNClassifier
from jaxlab.models.seg_unet import SegUNet
from jaxlab.models.small_cnn import SmallCNN
from jaxlab.models.transformer import Transformer
from jaxlab.models.transformer_xl import TransformerXL
from jaxlab.models.unet import UNet
from jaxlab.models.vgg import VGG
from jaxlab.models.vit import ViT
from jaxlab.models.word2vec import Word2Vec
from jaxlab.models.xlnet import XLNet
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
    "transformer": Transformer,  # encoder-decoder, Vaswani et al.'s base model by default
    "gpt": GPT,  # nanoGPT's CPU shakespeare_char model by default
    "gpt2": P(GPT, vocab_size=50257, num_layers=12, num_heads=12, d_model=768, block_size=1024),
    "rnn_lm": RNNLM,  # cell=rnn/lstm/gru/ln_lstm
    "rnn_classifier": RNNClassifier,
    "conv_lm": ConvLM,
    "bert": Bert,
    "bert_classifier": BertClassifier,
    "transformer_xl": TransformerXL,
    "xlnet": XLNet,
    "skipgram": P(Word2Vec, mode="skipgram"),
    "cbow": P(Word2Vec, mode="cbow"),
    "unet": UNet,  # DDPM's noise-prediction U-Net (model(x, t, train=...))
    # segmentation (logits [N, H, W, C] at the input size)
    "deeplabv3": P(DeepLab, decoder=False),
    "deeplabv3plus": P(DeepLab, decoder=True),
    "deeplabv3_resnet50": P(DeepLab, depth=50, decoder=False, output_stride=8, num_classes=21),
    "fcn8s": FCN8s,
    "seg_unet": SegUNet,
    "deeplabv3_mobilenet_v2": P(DeepLabMobileNetV2, decoder=False),
    "deeplabv3plus_mobilenet_v2": P(DeepLabMobileNetV2, decoder=True),
}


def list_models() -> list[str]:
    """Returns the registered model names, sorted."""
    return sorted(_REGISTRY)


class _Required:
    """The default of a field that has none (`model_fields`)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# Fields that come from outside the model section: the dataset (num_classes, vocab_size) and
# the parallel mode (bn_axis_name). `complete_model_config` leaves them out; `build_model`
# fills them in.
CONTEXT_FIELDS = ("num_classes", "vocab_size", "bn_axis_name")


def _factory(name: str) -> Callable[..., nn.Module]:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; valid choices: {', '.join(list_models())}")
    return _REGISTRY[name]


def _class_and_preset(factory: Callable[..., nn.Module]) -> tuple[type, dict[str, Any]]:
    if isinstance(factory, functools.partial):  # nested partials are flattened by Python
        return factory.func, dict(factory.keywords)
    return factory, {}


def _init_fields(cls: type) -> list[dataclasses.Field]:
    if not dataclasses.is_dataclass(cls):
        return []
    return [f for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")]


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: its values go unchecked
        return {}


def model_fields(name: str) -> dict[str, Any]:
    """Returns the constructor fields of the model registered as `name`, in declaration
    order, with their defaults (the preset's values where `name` is a preset, e.g.
    `model_fields('resnet20')['depth'] == 20`); `REQUIRED` marks a field without one.

    Raises ConfigError for an unknown name (listing the valid ones).
    """
    cls, preset = _class_and_preset(_factory(name))
    fields = {}
    for f in _init_fields(cls):
        if f.name in preset:
            fields[f.name] = preset[f.name]
        elif f.default is not dataclasses.MISSING:
            fields[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = f.default_factory()
        else:
            fields[f.name] = REQUIRED
    return fields


_SCALARS = (bool, int, float, str)


def _config_value(value: Any, hint: Any) -> tuple[bool, Any]:
    """(representable, the value as a config holds it): scalars and tuples of scalars as they
    are, None as a typed placeholder (so that the command line can set it), anything else
    (callables, dtypes) not."""
    if value is None:
        members = typing.get_args(hint) if _is_union(hint) else (hint,)
        for kind in _SCALARS[::-1]:  # str first: 'norm'-like fields take names
            if kind in members:
                return True, ml_collections.config_dict.placeholder(kind)
        return False, None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return True, float(value)  # a float field written `= 0`: keep the override float
    if isinstance(value, _SCALARS):
        return True, value
    if isinstance(value, (tuple, list)) and all(isinstance(v, _SCALARS) for v in value):
        return True, tuple(value)
    return False, None


def model_config_defaults(name: str) -> dict[str, Any]:
    """The fields of `model_fields(name)` that a config section can hold, with their
    defaults: all but `CONTEXT_FIELDS`, fields without a default, and those whose default is
    not a plain value (dtypes, callables: `dtype` is the only one in this zoo; norm,
    activation and initializer defaults are names)."""
    cls, _ = _class_and_preset(_factory(name))
    hints = _type_hints(cls)
    out = {}
    for key, value in model_fields(name).items():
        if key in CONTEXT_FIELDS or value is REQUIRED:
            continue
        ok, config_value = _config_value(value, hints.get(key))
        if ok:
            out[key] = config_value
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, ml_collections.FieldReference):
        value = value.get()
    return tuple(value) if isinstance(value, list) else value


def complete_model_config(
    section: ml_collections.ConfigDict,
    previous_name: str | None = None,
    keep: Iterable[str] = (),
) -> None:
    """Adds to a config's `model` section every field of `model_config_defaults(
    section.name)` that it lacks, holding its default (so the built model is the same as
    without them). Keys already there are kept; the section stays locked if it was.

    After `section.name` changed from `previous_name` (e.g. an override of `model.name`),
    first drops the keys that still hold `previous_name`'s defaults, except those in `keep`
    (the keys set explicitly, e.g. on the command line): they were completed for the other
    model and would otherwise override the new one's preset (resnet20's depth on resnet56).
    """
    defaults = model_config_defaults(section.name)
    with section.unlocked():
        if previous_name is not None and previous_name != section.name:
            stale = model_config_defaults(previous_name)
            keep = set(keep)
            for key in list(section.keys()):
                if key in stale and key not in keep and _plain(section[key]) == _plain(stale[key]):
                    del section[key]
        for key, value in defaults.items():
            if key not in section:
                section[key] = value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _is_callable_hint(hint: Any) -> bool:
    return hint is collections.abc.Callable or typing.get_origin(hint) is collections.abc.Callable


def _sequence_element(hint: Any) -> Any:
    """The element type of a Sequence[T] / tuple[T, ...] / list[T] hint, else None."""
    origin = typing.get_origin(hint)
    if origin not in (collections.abc.Sequence, tuple, list):
        return None
    args = [a for a in typing.get_args(hint) if a is not Ellipsis]
    return args[0] if len(set(args)) == 1 else Any


def _fits(value: Any, hint: Any) -> bool:
    """Whether `value` fits the type annotation `hint`; annotations other than scalars,
    None, unions, callables and sequences of them (dtypes, modules) are not checked."""
    if _is_union(hint):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if hint is float:
        numeric = isinstance(value, (int, float, np.integer, np.floating))
        return numeric and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if _is_callable_hint(hint):
        return callable(value)
    element = _sequence_element(hint)
    if element is not None:
        if not isinstance(value, (tuple, list)):
            return False
        if element is int:  # sizes (widths, strides, kernel dims): positive
            return all(_fits(v, int) and v > 0 for v in value)
        return all(_fits(v, element) for v in value)
    return True


def _describe(hint: Any) -> str:
    if _is_union(hint):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    simple = {
        type(None): "None",
        bool: "true or false",
        int: "an integer",
        float: "a finite number",
        str: "a string",
    }
    if hint in simple:
        return simple[hint]
    if _is_callable_hint(hint):
        return "a callable"
    element = _sequence_element(hint)
    if element is int:
        return "a sequence of positive integers, e.g. (16, 32)"
    if element is not None:
        return f"a sequence of which each entry is {_describe(element)}"
    return getattr(hint, "__name__", str(hint))


def _check_values(name: str, cls: type, kwargs: Mapping[str, Any]) -> None:
    hints = _type_hints(cls)
    for key, value in kwargs.items():
        hint = hints.get(key)
        if hint is not None and not _fits(value, hint):
            raise ConfigError(
                f"model.{key} must be {_describe(hint)} (model {name!r}), got {value!r}"
            )


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Builds the model registered as `name` with `kwargs` (e.g. num_classes, depth, width).

    Raises ConfigError for an unknown name (listing the valid ones), an unknown argument
    (listing the model's arguments), a value that does not fit the field's type annotation
    (naming `model.KEY`, what was given and what is expected), a depth with no preset, or an
    unknown norm, activation or initializer name (listing the valid ones).
    """
    factory = _factory(name)
    cls, _ = _class_and_preset(factory)
    fields = {f.name for f in _init_fields(cls)}
    unknown = sorted(set(kwargs) - fields) if fields else []
    if unknown:
        raise ConfigError(
            f"model {name!r} has no argument(s) {', '.join(unknown)}; "
            f"valid arguments: {', '.join(sorted(fields))}"
        )
    _check_values(name, cls, kwargs)
    try:
        model = factory(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for model {name!r}: {e}") from None
    _check_block_names(model)
    return model


def build_model(name: str, kwargs: Mapping[str, Any], **context: Any) -> nn.Module:
    """Builds the model `name` from a config's model section (`kwargs`, without `name`),
    adding each `context` entry (e.g. `num_classes=10`, `bn_axis_name='data'`) only where
    the model has that field and `kwargs` does not set it.

    Raises ConfigError for an unknown name or argument (listing the valid ones), a field
    without default that neither sets, and everything `get_model` checks.
    """
    fields = model_fields(name)
    unknown = sorted(set(kwargs) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown model key(s) {', '.join(f'model.{k}' for k in unknown)} for model "
            f"{name!r}; valid keys: {', '.join(sorted(fields))}"
        )
    args = dict(kwargs)
    args.update({k: v for k, v in context.items() if k in fields and k not in args})
    missing = [k for k, v in fields.items() if v is REQUIRED and k not in args]
    if missing:
        raise ConfigError(
            f"model {name!r} needs {', '.join(f'model.{k}' for k in missing)} (no default)"
        )
    return get_model(name, **args)


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


from jaxlab.models.seq2seq import Seq2SeqRNN  # noqa: E402

_REGISTRY["seq2seq_rnn"] = Seq2SeqRNN
from jaxlab.models.pointer import PointerNet  # noqa: E402

_REGISTRY["pointer_net"] = PointerNet
from jaxlab.models.autoencoder import VAE, Autoencoder  # noqa: E402

_REGISTRY["mlp_autoencoder"] = P(Autoencoder, backbone="mlp")
_REGISTRY["conv_autoencoder"] = P(Autoencoder, backbone="conv", sizes=(32, 64))
_REGISTRY["vae"] = VAE
from jaxlab.models.dcgan import DCGAN  # noqa: E402

_REGISTRY["dcgan"] = DCGAN  # generator_widths / discriminator_widths sized per image
from jaxlab.models.flows import Glow, RealNVP  # noqa: E402

_REGISTRY["realnvp"] = RealNVP
_REGISTRY["glow"] = Glow
from jaxlab.models.pixelcnn import PixelCNN  # noqa: E402

_REGISTRY["pixelcnn"] = PixelCNN
from jaxlab.models.video import VideoClassifier  # noqa: E402

_REGISTRY["video_cnn"] = P(VideoClassifier, head="none")  # frame by frame
_REGISTRY["video_cnn_lstm"] = P(VideoClassifier, head="lstm")
_REGISTRY["video_cnn_gru"] = P(VideoClassifier, head="gru")
from jaxlab.models.captioning import CaptionAttention, CaptionRNN, CaptionTransformer  # noqa: E402

_REGISTRY["caption_rnn"] = CaptionRNN
_REGISTRY["caption_attention"] = CaptionAttention
_REGISTRY["caption_transformer"] = CaptionTransformer
