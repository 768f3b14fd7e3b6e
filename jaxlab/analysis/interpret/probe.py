"""A classifier seen from outside: its logits, its penultimate features and its layers'
inputs and outputs, for any Flax Linen classifier (`apply(variables, x, train=False)`).

Layers are found by intercepting module calls (`flax.linen.intercept_methods`) rather than
by model-specific code: the input of the last `nn.Dense` called is the penultimate feature
vector (a linear model's is the flattened image), the outputs of the `nn.Conv` layers are
the activation maps, and the first `nn.Conv` (else the first `nn.Dense`) is the first layer.
The records are collected while tracing, so all of it works under `jax.jit`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.analysis.attacks import PixelSpace
from jaxlab.config import ConfigError


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """One call of a Conv or Dense layer during a forward pass."""

    path: tuple[str, ...]  # the module's path in the variables ('params' subtree)
    kind: str  # 'conv' or 'dense'
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def _trace(
    model: nn.Module, variables: Any, x: jax.Array
) -> tuple[jax.Array, list[tuple[LayerInfo, jax.Array, jax.Array]]]:
    """Logits and (info, input, output) of every Conv / Dense call, in call order."""
    records: list[tuple[LayerInfo, jax.Array, jax.Array]] = []

    def interceptor(next_fun, args, kwargs, context):  # noqa: ANN001, ANN202 - flax's protocol
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__" and isinstance(module, (nn.Conv, nn.Dense)):
            kind = "conv" if isinstance(module, nn.Conv) else "dense"
            info = LayerInfo(tuple(module.path), kind, tuple(args[0].shape), tuple(out.shape))
            records.append((info, args[0], out))
        return out

    with nn.intercept_methods(interceptor):
        logits = model.apply(variables, x, train=False)
    return logits, records


@dataclasses.dataclass
class Probe:
    """A classifier `model` with its `variables` and its inputs' `space` ([0, 1] pixels ->
    model inputs), with jitted views of it."""

    model: nn.Module
    variables: Any
    space: PixelSpace = dataclasses.field(default_factory=PixelSpace)

    def __post_init__(self) -> None:
        self._logits = jax.jit(lambda v, x: self.model.apply(v, x, train=False))
        self._features = jax.jit(lambda v, x: self._last_dense_input(v, x))
        self._outputs = jax.jit(lambda v, x, i: _trace(self.model, v, x)[1][i][2], static_argnums=2)

    def logits_fn(self, x: jax.Array) -> jax.Array:
        """Inference-mode logits [N, C] (not jitted itself: for use inside jitted code)."""
        return self.model.apply(self.variables, x, train=False)

    def logits(self, x: np.ndarray | jax.Array) -> jax.Array:
        """Jitted inference-mode logits [N, C]."""
        return self._logits(self.variables, jnp.asarray(x))

    def _last_dense_input(self, variables: Any, x: jax.Array) -> jax.Array:
        dense = [
            inp for info, inp, _ in _trace(self.model, variables, x)[1] if info.kind == "dense"
        ]
        if not dense:
            raise ConfigError("the model has no Dense layer, so no penultimate features")
        return dense[-1].reshape((x.shape[0], -1))

    def features(self, x: np.ndarray | jax.Array) -> jax.Array:
        """Penultimate-layer features [N, D]: the input of the last Dense layer."""
        return self._features(self.variables, jnp.asarray(x))

    def layers(self, example: np.ndarray | jax.Array) -> list[LayerInfo]:
        """The Conv / Dense calls of a forward pass on `example` [N, H, W, C], in order."""
        infos: list[LayerInfo] = []

        def keep(x: jax.Array) -> int:
            infos.extend(info for info, _, _ in _trace(self.model, self.variables, x)[1])
            return 0

        jax.eval_shape(keep, example)
        return infos

    def conv_layers(self, example: np.ndarray | jax.Array) -> list[tuple[int, LayerInfo]]:
        """(index among all layers, info) of the Conv layers, in call order."""
        return [(i, info) for i, info in enumerate(self.layers(example)) if info.kind == "conv"]

    def layer_output(self, x: np.ndarray | jax.Array, index: int) -> jax.Array:
        """The output of layer `index` (of `layers`) on `x`."""
        return self._outputs(self.variables, jnp.asarray(x), index)

    def layer_output_fn(self, index: int) -> Any:
        """`x -> output of layer index` (not jitted: for gradients inside jitted code)."""
        return lambda x: _trace(self.model, self.variables, x)[1][index][2]

    def kernel(self, info: LayerInfo) -> np.ndarray:
        """The kernel of a layer, from the 'params' collection."""
        node = self.variables["params"]
        for name in info.path:
            node = node[name]
        return np.asarray(node["kernel"])


def first_layer_filters(probe: Probe, example: np.ndarray) -> np.ndarray:
    """The first layer's filters as images [F, h, w, C]: the first Conv's kernels, or, for a
    model without convolutions, the first Dense layer's weight columns reshaped to the image
    (the 'templates' of a linear classifier)."""
    layers = probe.layers(example)
    if not layers:
        raise ConfigError("the model has no Conv or Dense layer")
    convs = [info for info in layers if info.kind == "conv"]
    info = convs[0] if convs else layers[0]
    kernel = probe.kernel(info)
    if info.kind == "conv":  # [h, w, C_in, F]
        return np.moveaxis(kernel, -1, 0)
    return np.moveaxis(kernel, -1, 0).reshape((kernel.shape[-1], *example.shape[1:]))
