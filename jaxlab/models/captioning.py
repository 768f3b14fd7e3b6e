"""Image captioning models: a CNN encoder and three decoders (contract 3 of the sequence
family, with the image as the source).

Encoder (`ConvEncoder`, shared): the image with two coordinate channels (y and x in
[-1, 1], CoordConv, Liu et al. 2018: without them the zero-padded convolutions of a zero
background are translation-equivariant, and a region's features would not say where it is,
which "left of" needs once attention has picked a region), then per width w in `widths` a
3x3 convolution with w filters, ReLU and 2x2 max pooling; then a 3x3 convolution to
`features` channels and ReLU. A 20x20 image with two widths gives a 5x5 feature map: 25
vectors a_i, each seeing one region. No batch norm, so decoding needs only the parameters.

Decoders, one step t (input word y_{t-1}, embedding E y):

    caption_rnn        (the recurrent captioning of Karpathy & Fei-Fei 2015 / Vinyals et al.
                       2015) the image vector a = [a_1; ...; a_HW] (`pool='flatten'`, the
                       CNN's "fc" input; 'mean': abar) initializes the state,
                       h_0 = tanh(LN_h(W_h LN(a))) (LSTM also c_0 = tanh(LN_c(W_c LN(a))));
                       h_t = cell(h_{t-1}, E y); logits = W_o h_t. The image enters only
                       through h_0. Its encoder has no CoordConv channels (`coords=False`):
                       the flattened vector already says where each feature is, and the
                       coordinate channels make the features of the empty background a large
                       image-independent part of a (see `_init_carry`). (With the mean,
                       "left of" and "right of" are nearly indistinguishable: the mean
                       forgets where the features were.)
    caption_attention  (show, attend and tell, Xu et al. 2015, soft attention) h_0, c_0 from
                       abar as above (tanh of a Dense of its LayerNorm);
                       e_ti = v . tanh(W_a a_i + W_h h_{t-1}),
                       alpha_t = softmax_i e_ti, z_t = beta_t sum_i alpha_ti a_i with the
                       gate beta_t = sigmoid(w_b . h_{t-1}) (section 4.2.1);
                       h_t = LSTM(h_{t-1}, [E y; z_t]);
                       logits = L_o(E y + L_h h_t + L_z z_t) (the deep output, eq. 7).
                       `decode_step` returns alpha_t [B, HW].
    caption_transformer  the a_i projected to d_model plus a learned position per region
                       (and `encoder_layers` pre-LN self-attention blocks over them) are the
                       memory; pre-LN decoder blocks (`jaxlab.models.transformer.
                       TransformerBlock` with cross-attention: causal self-attention,
                       cross-attention to the regions, MLP), learned token positions, a
                       final LayerNorm and a linear head. Decoding keeps one `KVCache` per
                       layer and the cross-attention keys and values of the memory, computed
                       once in `init_decode_state`; `decode_step` returns the last layer's
                       cross-attention weights averaged over heads [B, HW].

`__call__(image, target_in, train)` gives the teacher-forced logits [B, T, V]; the recurrent
decoders run their step module under `nn.scan` (parameters broadcast), so `decode_step`
stepped over the teacher tokens gives the same logits. `jaxlab.tasks.seq2seq`'s
`greedy_decode` and `beam_search` decode them (they call `encode`, `init_decode_state`,
`decode_step`). Dropout (rate `dropout`) acts on the word embeddings (and in the
transformer's sub-layers) when training, never in `decode_step`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import check_choice, check_positive
from jaxlab.models.seq2seq import cell_output, make_cell
from jaxlab.models.transformer import TransformerBlock
from jaxlab.nn.attention import causal_mask
from jaxlab.nn.positional import LearnedPositions

POOLS = ("flatten", "mean")


class ConvEncoder(nn.Module):
    """Image [B, H, W, C] -> feature map [B, H / 2^k, W / 2^k, features] (module doc)."""

    widths: Sequence[int] = (16, 32)
    features: int = 32
    coords: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        x = image.astype(self.dtype)
        if self.coords:  # CoordConv: y and x in [-1, 1] as two more input channels
            b, h, w, _ = x.shape
            ys, xs = jnp.meshgrid(jnp.linspace(-1, 1, h), jnp.linspace(-1, 1, w), indexing="ij")
            grid = jnp.broadcast_to(jnp.stack([ys, xs], -1), (b, h, w, 2)).astype(self.dtype)
            x = jnp.concatenate([x, grid], axis=-1)
        for width in self.widths:
            x = nn.relu(nn.Conv(width, (3, 3), dtype=self.dtype)(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        return nn.relu(nn.Conv(self.features, (3, 3), dtype=self.dtype)(x))


def _regions(feature_map: jax.Array) -> jax.Array:
    """[B, h, w, C] -> [B, h * w, C] (row-major regions)."""
    b, h, w, c = feature_map.shape
    return feature_map.reshape(b, h * w, c)


def _init_carry(
    kind: str, hidden: int, pooled: jax.Array, dtype: Any, project_norm: bool = False
) -> Any:
    """The cell carry initialized from the pooled features: h_0 = tanh(W_h LN(a)) (and for an
    LSTM c_0 = tanh(W_c LN(a))), with `project_norm` tanh(LN(W LN(a))); the layers are
    created in the caller's scope.

    Why `project_norm` (measured on digit_captions, caption_rnn, Adam 3e-3): the decoder
    first learns the grammar, which wants one image-independent start state. The bias could
    give it, but Adam moves each of the 800 weights of the flattened map by about the learning
    rate per step, so the part of W LN(a) along the image-independent component of a (the
    background's features, large with CoordConv) grows about 800 times faster. Within 100
    steps the tanh saturated (|h_0| = 1.000 with spread 0.000 across test images; the
    encoder's gradient fell from 0.6 to 2e-5) and the model stayed on the grammar plateau
    (0.4% exact captions). The LayerNorm of the projection keeps the pre-activations O(1) per
    image whatever the weights' scale, so the gradient keeps flowing; removing the CoordConv
    channels (caption_rnn's default) makes the image-dependent part of a larger (spread of
    h_0 across images at init 0.45 instead of 0.17). Either alone was not enough in 400-step
    probes (the LayerNorm alone: h_0's spread across images 0.004; no CoordConv alone: the
    tanh still saturated, |h_0| = 1.000; test exact captions <= 1.6% at step 400 either
    way, 10.0% with both, whose 2,500-step run reaches 85.4%)."""
    pooled = nn.LayerNorm(epsilon=1e-5, dtype=dtype, name="norm")(pooled)

    def project(name: str) -> jax.Array:
        z = nn.Dense(hidden, dtype=dtype, name=name)(pooled)
        if project_norm:
            z = nn.LayerNorm(epsilon=1e-5, dtype=dtype, name=f"{name}_norm")(z)
        return jnp.tanh(z)

    h = project("init_h")
    if kind == "lstm":
        return project("init_c"), h
    return h


class RNNStep(nn.Module):
    """One step of the plain recurrent decoder: (carry, E y) -> (carry, logits)."""

    vocab_size: int
    hidden: int
    cell: str = "lstm"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, carry: Any, embedded: jax.Array, memory: dict
    ) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        del memory  # the image entered through the initial carry
        carry, h = make_cell(self.cell, self.hidden, self.dtype, name="cell")(carry, embedded)
        logits = nn.Dense(self.vocab_size, dtype=self.dtype, name="output")(h)
        return carry, (logits.astype(jnp.float32), jnp.zeros(h.shape[:1], jnp.float32))


class AttendStep(nn.Module):
    """One show-attend-tell step: (carry, E y, memory) -> (carry, (logits, alpha))."""

    vocab_size: int
    hidden: int
    embed_dim: int
    attention_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, carry: Any, embedded: jax.Array, memory: dict
    ) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        dense = lambda n, name, bias=True: nn.Dense(  # noqa: E731
            n, use_bias=bias, dtype=self.dtype, name=name
        )
        h_prev = cell_output("lstm", carry)
        query = dense(self.attention_dim, "W_h", False)(h_prev)
        energy = jnp.tanh(memory["keys"] + query[:, None, :])  # [B, HW, A]
        scores = dense(1, "v", False)(energy)[..., 0].astype(jnp.float32)
        alpha = jax.nn.softmax(scores, axis=-1)
        context = jnp.einsum("bi,bic->bc", alpha, memory["regions"].astype(jnp.float32))
        context = context * jax.nn.sigmoid(dense(1, "gate")(h_prev))
        carry, h = make_cell("lstm", self.hidden, self.dtype, name="cell")(
            carry, jnp.concatenate([embedded, context.astype(embedded.dtype)], -1)
        )
        out = embedded + dense(self.embed_dim, "L_h")(h) + dense(self.embed_dim, "L_z")(context)
        logits = dense(self.vocab_size, "L_o")(out)
        return carry, (logits.astype(jnp.float32), alpha)


def _scan_step(step: nn.Module, carry: Any, xs: jax.Array, memory: dict):
    return step(carry, xs, memory)


class _RecurrentCaptioner(nn.Module):
    """The shared plumbing of `CaptionRNN` and `CaptionAttention` (contract 3)."""

    vocab_size: int = 0
    widths: Sequence[int] = (16, 32)
    features: int = 32
    embed_dim: int = 32
    hidden: int = 64
    dropout: float = 0.0
    coords: bool = True
    dtype: Any = jnp.float32

    def _make_step(self) -> nn.Module:
        raise NotImplementedError

    def _cell_kind(self) -> str:
        return "lstm"

    def _project_norm(self) -> bool:
        return False

    def setup(self) -> None:
        check_positive("model.vocab_size", self.vocab_size, integer=True)
        self.encoder = ConvEncoder(self.widths, self.features, self.coords, dtype=self.dtype)
        self.embed = nn.Embed(self.vocab_size, self.embed_dim, dtype=self.dtype)
        self.step = self._make_step()
        self.drop = nn.Dropout(self.dropout)
        self.init_proj = _InitCarry(
            self._cell_kind(), self.hidden, self.dtype, self._project_norm()
        )

    def encode(self, image: jax.Array, *, train: bool = False) -> dict:
        """memory: 'regions' [B, HW, C], 'keys' (attention: W_a a_i) and 'carry' (the
        decoder's initial cell carry from the mean region)."""
        del train
        regions = _regions(self.encoder(image))
        pooled = self._pool(regions)
        return {"regions": regions, "keys": self._keys(regions), "carry": self.init_proj(pooled)}

    def _pool(self, regions: jax.Array) -> jax.Array:
        return jnp.mean(regions, axis=1)

    def _keys(self, regions: jax.Array) -> jax.Array:
        return regions

    def init_decode_state(self, memory: dict, image: jax.Array, max_length: int) -> Any:
        """The initial cell carry (`max_length` is not needed by a recurrent decoder)."""
        del image, max_length
        return memory["carry"]

    def decode_step(
        self, token: jax.Array, state: Any, memory: dict, image: jax.Array
    ) -> tuple[jax.Array, Any, jax.Array | None]:
        """(logits f32 [B, V], state, attention [B, HW] or None without attention)."""
        del image
        state, (logits, alpha) = self.step(state, self.embed(token), memory)
        return logits, state, self._attention(alpha)

    def _attention(self, alpha: jax.Array) -> jax.Array | None:
        return None

    def forward_with_attention(
        self, image: jax.Array, target_in: jax.Array, *, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        """Teacher-forced logits [B, T, V] and attention weights [B, T, HW] (zeros [B, T]
        without attention)."""
        memory = self.encode(image, train=train)
        x = self.drop(self.embed(target_in), deterministic=not train)
        scan = nn.scan(
            _scan_step,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=(1, nn.broadcast),
            out_axes=1,
        )
        _, (logits, alpha) = scan(self.step, memory["carry"], x, memory)
        return logits, alpha

    def __call__(self, image: jax.Array, target_in: jax.Array, *, train: bool) -> jax.Array:
        """Teacher-forced logits f32 [B, T, V]."""
        return self.forward_with_attention(image, target_in, train=train)[0]


class _InitCarry(nn.Module):
    """The decoder's initial carry from the pooled features (see `_init_carry`)."""

    cell: str
    hidden: int
    dtype: Any = jnp.float32
    project_norm: bool = False

    @nn.compact
    def __call__(self, pooled: jax.Array) -> Any:
        return _init_carry(self.cell, self.hidden, pooled, self.dtype, self.project_norm)


class CaptionRNN(_RecurrentCaptioner):
    """CNN encoder whose pooled features initialize an LSTM or GRU decoder (module doc).

    Attributes: vocab_size (from the dataset), widths / features (encoder), embed_dim,
    hidden, cell ('lstm' | 'gru'), pool ('flatten' | 'mean': the image vector that
    initializes the state), project_norm (LayerNorm of the state projections, see
    `_init_carry`), coords (CoordConv channels in the encoder), dropout (word embeddings,
    training only).
    """

    cell: str = "lstm"
    pool: str = "flatten"
    project_norm: bool = True
    coords: bool = False

    def _cell_kind(self) -> str:
        return self.cell

    def _project_norm(self) -> bool:
        return self.project_norm

    def _pool(self, regions: jax.Array) -> jax.Array:
        """'flatten': all regions in order (the image vector keeps where each feature is);
        'mean': their average (which forgets it)."""
        check_choice("model.pool", self.pool, POOLS)
        if self.pool == "mean":
            return jnp.mean(regions, axis=1)
        return regions.reshape(regions.shape[0], -1)

    def _make_step(self) -> nn.Module:
        return RNNStep(self.vocab_size, self.hidden, self.cell, self.dtype)


class CaptionAttention(_RecurrentCaptioner):
    """Show, attend and tell: soft attention over the regions at every step (module doc).

    Attributes: as `CaptionRNN` (the cell is an LSTM) plus attention_dim (0: hidden).
    """

    attention_dim: int = 0

    def _make_step(self) -> nn.Module:
        return AttendStep(
            self.vocab_size,
            self.hidden,
            self.embed_dim,
            self.attention_dim or self.hidden,
            self.dtype,
        )

    def setup(self) -> None:
        super().setup()
        self.key_proj = nn.Dense(
            self.attention_dim or self.hidden, use_bias=True, dtype=self.dtype, name="W_a"
        )

    def _keys(self, regions: jax.Array) -> jax.Array:
        return self.key_proj(regions)

    def _attention(self, alpha: jax.Array) -> jax.Array:
        return alpha


class CaptionTransformer(nn.Module):
    """CNN regions as the memory of a small pre-LN transformer decoder (module doc).

    Attributes: vocab_size (from the dataset), widths / features (encoder), d_model,
    num_heads, num_layers (decoder), encoder_layers (self-attention over the regions),
    mlp_dim, dropout, max_len (token positions), max_regions (region positions).
    """

    vocab_size: int = 0
    widths: Sequence[int] = (16, 32)
    features: int = 32
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    encoder_layers: int = 1
    mlp_dim: int = 128
    dropout: float = 0.0
    max_len: int = 32
    max_regions: int = 64
    dtype: Any = jnp.float32

    def setup(self) -> None:
        check_positive("model.vocab_size", self.vocab_size, integer=True)
        check_positive("model.d_model", self.d_model, integer=True)
        self.encoder = ConvEncoder(self.widths, self.features, dtype=self.dtype)
        self.region_proj = nn.Dense(self.d_model, dtype=self.dtype)
        block = dict(
            features=self.d_model,
            num_heads=self.num_heads,
            mlp_dim=self.mlp_dim,
            dropout=self.dropout,
            norm_first=True,
            activation="gelu",
            dtype=self.dtype,
        )
        self.encoder_blocks = [TransformerBlock(**block) for _ in range(self.encoder_layers)]
        self.decoder = [
            TransformerBlock(**block, cross_attention=True) for _ in range(self.num_layers)
        ]
        self.memory_norm = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype)
        self.decoder_norm = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype)
        self.embed = nn.Embed(
            self.vocab_size,
            self.d_model,
            embedding_init=nn.initializers.normal(self.d_model**-0.5),
            dtype=self.dtype,
        )
        self.token_positions = LearnedPositions(self.max_len, self.d_model, self.dtype)
        self.region_positions = LearnedPositions(self.max_regions, self.d_model, self.dtype)
        self.head = nn.Dense(self.vocab_size, dtype=self.dtype)
        self.drop = nn.Dropout(self.dropout)

    def encode(self, image: jax.Array, *, train: bool = False) -> jax.Array:
        """The memory [B, HW, d_model]: projected regions plus a learned position each,
        through the encoder blocks and a LayerNorm."""
        regions = _regions(self.encoder(image))
        if regions.shape[1] > self.max_regions:
            raise ValueError(f"{regions.shape[1]} regions exceed max_regions {self.max_regions}")
        x = self.region_proj(regions) + self.region_positions(jnp.arange(regions.shape[1]))
        for block in self.encoder_blocks:
            x, _, _ = block(x, train=train)
        return self.memory_norm(x)

    def _embed(self, tokens: jax.Array, positions: jax.Array, train: bool) -> jax.Array:
        if tokens.shape[-1] > self.max_len:
            raise ValueError(f"caption length {tokens.shape[-1]} exceeds max_len {self.max_len}")
        x = self.embed(tokens) * math.sqrt(self.d_model) + self.token_positions(positions)
        return self.drop(x, deterministic=not train)

    def _logits(self, y: jax.Array) -> jax.Array:
        return self.head(self.decoder_norm(y)).astype(jnp.float32)

    def __call__(self, image: jax.Array, target_in: jax.Array, *, train: bool) -> jax.Array:
        """Teacher-forced logits f32 [B, T, V]."""
        memory = self.encode(image, train=train)
        y = self._embed(target_in, jnp.arange(target_in.shape[1]), train)
        mask = causal_mask(target_in.shape[1])
        for block in self.decoder:
            y, _, _ = block(y, mask=mask, memory=memory, train=train)
        return self._logits(y)

    def init_decode_state(self, memory: jax.Array, image: jax.Array, max_length: int) -> dict:
        """'self': one empty `KVCache` of `max_length` per decoder layer; 'cross': each
        layer's cross-attention keys and values of the memory (every leaf batch-first)."""
        del image
        batch = memory.shape[0]
        return {
            "self": tuple(block.init_cache(batch, max_length) for block in self.decoder),
            "cross": tuple(block.project_memory(memory) for block in self.decoder),
        }

    def decode_step(
        self, token: jax.Array, state: dict, memory: jax.Array, image: jax.Array
    ) -> tuple[jax.Array, dict, jax.Array]:
        """(logits f32 [B, V], the state with `token` appended, the last layer's
        cross-attention weights averaged over heads [B, HW])."""
        del memory, image
        positions = state["self"][0].index[:, None]
        y = self._embed(token[:, None], positions, False)
        caches, weights = [], None
        for block, cache, kv in zip(self.decoder, state["self"], state["cross"], strict=True):
            y, weights, cache = block(y, cache=cache, memory_kv=kv)
            caches.append(cache)
        state = {"self": tuple(caches), "cross": state["cross"]}
        return self._logits(y)[:, 0], state, jnp.mean(weights, axis=1)[:, 0]
