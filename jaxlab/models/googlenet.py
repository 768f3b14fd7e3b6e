"""GoogLeNet / Inception v1 (Szegedy et al., 2014), following the paper's Table 1.

Auxiliary classifiers (`aux_logits=True`, the default) hang on the outputs of inception 4a
and 4d: 5x5/3 average pooling, 1x1 conv to 128, dense 1024, dropout 0.7, dense to the
classes. Contract with the training loop: the model always returns the main logits
[B, num_classes]; when `train=True` and `aux_logits` it also *sows* the two auxiliary
logits, in order (4a, 4d), into the `'intermediates'` collection under `'aux_logits'`.
A loop that wants them applies the model with `mutable=['batch_stats', 'intermediates']`
and reads `mutated['intermediates']['aux_logits']` (a tuple of two [B, num_classes]
arrays); the paper's training loss is `ce(main) + aux_loss_weight * (ce(aux1) + ce(aux2))`
with `aux_loss_weight = 0.3` (a field of the model, so `model.aux_loss_weight` tells the
loop). At eval, at init, or when 'intermediates' is not mutable nothing is sown. The aux
parameters (`aux1/...`, `aux2/...`) exist whenever `aux_logits=True`.

Differences from other published variants:
- torchvision's `googlenet`: uses a 3x3 conv where the paper has the 5x5 branch (a bug kept
  for its weights), adds batch norm (eps 1e-3) after every conv without conv biases, drops
  LRN, pools with ceil_mode, uses dropout 0.2 (paper: 0.4) and an adaptive 4x4 aux pooling;
  it has 6,624,904 parameters without aux heads, this model 6,998,552 (13,378,280 with
  them); the paper's Table 1 sums to about 6.8M with rounded per-layer figures.
- Caffe's bvlc_googlenet: same as the paper (with LRN), ceil-mode pooling.
- Here: "SAME" max pooling (inputs of any size of at least 32x32), LRN switchable (`lrn`),
  `norm` other than "none" adds a norm after each conv (which then drops its bias), and
  the aux pooling is the paper's 5x5/3 where the 4a/4d maps are at least 5x5, followed by an
  adaptive 4x4 average (the identity at 224x224) so any input size gives the same dense
  layers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.models.base import ConvClassifier
from jaxlab.nn.blocks import ConvNormAct
from jaxlab.nn.conv import adaptive_avg_pool, check_input_size
from jaxlab.nn.norms import local_response_norm

# name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), Table 1 of the paper.
INCEPTION: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
AUX_LOSS_WEIGHT = 0.3


class Inception(nn.Module):
    """The four-branch inception module: 1x1 | 1x1-3x3 | 1x1-5x5 | 3x3 max pool-1x1,
    concatenated along channels."""

    widths: tuple[int, int, int, int, int, int]
    conv: Callable[..., nn.Module]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w1, r3, w3, r5, w5, wp = self.widths
        b1 = self.conv(w1, 1, name="b1")(x)
        b2 = self.conv(w3, 3, name="b2_conv")(self.conv(r3, 1, name="b2_reduce")(x))
        b3 = self.conv(w5, 5, name="b3_conv")(self.conv(r5, 1, name="b3_reduce")(x))
        b4 = self.conv(wp, 1, name="b4_proj")(nn.max_pool(x, (3, 3), padding="SAME"))
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class AuxClassifier(nn.Module):
    """5x5/3 average pool (where it fits), adaptive 4x4 average, 1x1 conv 128, dense 1024,
    dropout 0.7, dense to the classes."""

    num_classes: int
    conv: Callable[..., nn.Module]
    act: Callable[[jax.Array], jax.Array]
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        if min(x.shape[1:3]) >= 5:
            x = nn.avg_pool(x, (5, 5), strides=(3, 3))
        x = adaptive_avg_pool(x, 4)
        x = self.conv(128, 1, name="conv")(x).reshape(x.shape[0], -1)
        x = self.act(nn.Dense(1024, dtype=self.dtype, name="fc")(x))
        x = nn.Dropout(0.7, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)


class GoogLeNet(ConvClassifier):
    """GoogLeNet per the paper (see the module docstring for the aux-logits contract and the
    differences from torchvision's variant)."""

    dropout: float = 0.4
    norm: str | Callable[..., nn.Module] = "none"
    aux_logits: bool = True
    aux_loss_weight: float = AUX_LOSS_WEIGHT  # read by the loop; the model does not use it
    lrn: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        check_input_size(x, 32, "googlenet")
        norm, act, init = self.norm_act_init(train, default_init="xavier_uniform")

        # conv(features, kernel, strides, name=...): conv (same padding; bias only without
        # a norm) - norm - activation
        conv = functools.partial(
            ConvNormAct, norm=norm, act=act, kernel_init=init, dtype=self.dtype
        )

        def pool(y: jax.Array) -> jax.Array:
            return nn.max_pool(y, (3, 3), strides=(2, 2), padding="SAME")

        def lrn(y: jax.Array) -> jax.Array:
            return local_response_norm(y) if self.lrn else y

        run_aux = self.aux_logits and (train or self.is_initializing())
        aux: list[jax.Array] = []
        x = x.astype(self.dtype)
        x = lrn(pool(conv(64, 7, 2, name="conv1")(x)))
        x = conv(192, 3, name="conv2")(conv(64, 1, name="conv2_reduce")(x))
        x = pool(lrn(x))
        for name in INCEPTION:
            if name in ("4a", "5a"):
                x = pool(x)
            x = Inception(INCEPTION[name], conv, name=f"inception{name}")(x)
            if run_aux and name in ("4a", "4d"):
                head = AuxClassifier(
                    self.num_classes, conv, act, self.dtype, name=f"aux{len(aux) + 1}"
                )
                aux.append(head(x, train=train))
        if train and aux and not self.is_initializing():
            for a in aux:
                self.sow("intermediates", "aux_logits", a)
        return self.gap_head(x, train=train, dropout=self.dropout)
