"""Normalizing-flow models: RealNVP (Dinh et al. 2017) and Glow (Kingma & Dhariwal 2018).

Both map an image x [B, H, W, C] (in the task's centred model scale) to standard-normal
latents: `model(x, train=...) -> (zs, logdet)` (zs: the latents factored out at each scale
and the last one; logdet: log|det dz/dx| per example) and `model.apply(v, zs,
method='inverse') -> x`. The layers are those of `jaxlab.nn.flows`.

RealNVP, per scale (all but the last): for each mask type in `mask_types`,
`num_couplings` affine couplings with alternating parity (a 2x2 squeeze before the first
'channel' stage, or at the end of the scale if there is none), then a split that factors
half of the channels out. The last scale: `num_couplings` couplings of the first mask type
(no squeeze, no split). `actnorm=True` puts an ActNorm before each coupling (Dinh et al.
used batch norm there; ActNorm is its batch-independent replacement).

Glow, per scale: squeeze, then `num_steps` steps of [ActNorm, LU 1x1 convolution, affine
coupling (`mask_type`, parity alternating)], then (all but the last scale) a split with a
learned conditional prior when `learned_prior`.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxlab.config import check_choice
from jaxlab.nn import flows


class _FlowModel(nn.Module):
    """Shared forward/inverse around the layers a subclass lists in `build_layers`."""

    def build_layers(self) -> list[nn.Module]:
        raise NotImplementedError

    def setup(self) -> None:
        self.flow = flows.Flow(tuple(self.build_layers()))

    def __call__(
        self, x: jax.Array, *, train: bool = False
    ) -> tuple[tuple[jax.Array, ...], jax.Array]:
        """(latents, log|det dz/dx| [B]) of images x [B, H, W, C]; `train` is unused (the
        flows have no train-only behaviour)."""
        return self.flow.forward(x)

    def inverse(self, zs: Sequence[jax.Array]) -> jax.Array:
        """The images x whose latents are `zs`."""
        return self.flow.inverse(zs)


class RealNVP(_FlowModel):
    """RealNVP (see the module doc).

    Attributes:
      num_scales: scales (each but the last ends with a squeeze and a split).
      num_couplings: couplings per mask-type stage.
      hidden: width of the coupling networks.
      mask_types: the coupling stages of a scale, in order ('checkerboard', 'channel').
      actnorm: an ActNorm before each coupling.
    """

    num_scales: int = 2
    num_couplings: int = 3
    hidden: int = 64
    mask_types: Sequence[str] = ("checkerboard", "channel")
    actnorm: bool = False

    def build_layers(self) -> list[nn.Module]:
        """The layer sequence (see the module doc)."""
        if not self.mask_types:
            raise ValueError("RealNVP needs at least one mask type")
        for m in self.mask_types:
            check_choice("model.mask_types entry", m, flows.MASK_TYPES)
        layers: list[nn.Module] = []

        def stage(mask: str) -> None:
            for i in range(self.num_couplings):
                if self.actnorm:
                    layers.append(flows.ActNorm())
                layers.append(flows.AffineCoupling(mask, i % 2, self.hidden))

        for scale in range(self.num_scales):
            if scale == self.num_scales - 1:
                stage(self.mask_types[0])
                break
            squeezed = False
            for mask in self.mask_types:
                if mask == "channel" and not squeezed:
                    layers.append(flows.Squeeze())
                    squeezed = True
                stage(mask)
            if not squeezed:
                layers.append(flows.Squeeze())
            layers.append(flows.Split())
        return layers


class Glow(_FlowModel):
    """Glow (see the module doc).

    Attributes:
      num_scales: scales (each starts with a squeeze; all but the last end with a split).
      num_steps: flow steps (ActNorm, 1x1 conv, coupling) per scale.
      hidden: width of the coupling networks.
      mask_type: the couplings' mask ('channel' as in Glow, or 'checkerboard').
      learned_prior: the splits' conditional Gaussian prior (else standard normal).
    """

    num_scales: int = 2
    num_steps: int = 4
    hidden: int = 64
    mask_type: str = "channel"
    learned_prior: bool = True

    def build_layers(self) -> list[nn.Module]:
        """The layer sequence (see the module doc)."""
        check_choice("model.mask_type", self.mask_type, flows.MASK_TYPES)
        layers: list[nn.Module] = []
        for scale in range(self.num_scales):
            layers.append(flows.Squeeze())
            for i in range(self.num_steps):
                layers.append(flows.ActNorm())
                layers.append(flows.InvConv1x1(seed=scale * self.num_steps + i))
                layers.append(flows.AffineCoupling(self.mask_type, i % 2, self.hidden))
            if scale < self.num_scales - 1:
                layers.append(flows.Split(learned_prior=self.learned_prior))
        return layers
