"""The fields that every configurable conv-net classifier of the zoo shares, and the layers
they name (norm factory, activation, kernel initializer), built in one place."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError
from jaxlab.nn.activations import Activation, get_activation
from jaxlab.nn.conv import GlobalAvgPoolHead
from jaxlab.nn.initializers import Initializer, get_initializer
from jaxlab.nn.norms import NormFactory, get_norm


def check_depth(model: str, depth: int, presets: Collection[int]) -> None:
    """Raises ConfigError unless `depth` is one of the model's `presets`, naming them
    ("vgg depth 12 has no preset; valid depths: 11, 13, 16, 19")."""
    if depth not in presets:
        raise ConfigError(
            f"{model} depth {depth} has no preset; valid depths: {', '.join(map(str, presets))}"
        )


class ConvClassifier(nn.Module):
    """Base of AlexNet, VGG, GoogLeNet, ResNet, DenseNet and MobileNet: an image classifier
    whose norm, activation and kernel initializer are chosen by name or callable.

    A subclass adds its architecture's fields after these and redeclares a field to change
    its default (`dropout: float = 0.5`). `bn_momentum` is batch norm's running-average decay
    (0.9 is PyTorch's momentum=0.1) and `bn_axis_name` the pmap axis that synchronizes its
    statistics; both are ignored by the other norms.
    """

    num_classes: int = 1000
    dropout: float = 0.0
    norm: str | Callable[..., nn.Module] = "batch"
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    kernel_init: str | Callable[..., jax.Array] | None = None
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    def norm_act_init(
        self,
        train: bool,
        *,
        default_init: str = "lecun_normal",
        kernel_init: Initializer | None = None,
    ) -> tuple[NormFactory, Activation, Initializer]:
        """(norm factory, activation, kernel initializer) from the model's fields, with
        `default_init` where the `kernel_init` field is None; a `kernel_init` argument
        replaces the field's initializer (ResNet's Fixup). The "none" norm gives `Identity`."""
        norm = get_norm(
            self.norm,
            train=train,
            axis_name=self.bn_axis_name,
            dtype=self.dtype,
            momentum=self.bn_momentum,
        )
        init = kernel_init or get_initializer(self.kernel_init, default=default_init)
        return norm, get_activation(self.activation), init

    def gap_head(
        self, x: jax.Array, *, train: bool, dropout: float = 0.0, **dense_kwargs: Any
    ) -> jax.Array:
        """The classifier head named `head`: global average pooling, `dropout` (train only),
        a dense layer to `num_classes` (`dense_kwargs`: its kernel_init or bias_init). Call
        it from the compact `__call__`."""
        head = GlobalAvgPoolHead(
            self.num_classes, dropout=dropout, dtype=self.dtype, name="head", **dense_kwargs
        )
        return head(x, train=train)
