"""The model registry: `get_model(name, **kwargs)` builds a Flax Linen module by name.

Every model takes `num_classes`, `dtype` and `bn_axis_name` (the pmap axis for synchronized
batch norm; ignored by models without batch norm) and is called as `model(x, train=...)`.
Add a family by writing its file and one line per preset in `_REGISTRY`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn

from jaxlab.config import ConfigError
from jaxlab.models.lenet import LeNet5
from jaxlab.models.mlp import MLP
from jaxlab.models.small_cnn import SmallCNN

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "linear": functools.partial(MLP, depth=0),
    "mlp": MLP,
    "lenet5": LeNet5,
    "small_cnn": SmallCNN,
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

    Raises ConfigError for an unknown name (listing the valid ones) or an unknown argument
    (listing the model's arguments).
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
        return factory(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for model {name!r}: {e}") from None
