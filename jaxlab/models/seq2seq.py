"""Recurrent encoder-decoder with attention (`seq2seq_rnn`, contract 3 of the sequence family).

Encoder: a shared embedding, then one LSTM or GRU layer (flax's `nn.OptimizedLSTMCell` /
`nn.GRUCell` under `nn.RNN`, the padded steps skipped through `seq_lengths`), optionally
bidirectional (`nn.Bidirectional`, hidden // 2 per direction, outputs and final states
concatenated, so both directions together are `hidden` wide). The decoder starts from the
encoder's final state.

Decoder, one step t (input token y_{t-1}, embedding e), by `attention`:

    none      h_t = cell(h_{t-1}, e);  logits = W_o h_t                        (Sutskever)
    luong     h_t = cell(h_{t-1}, [e; h~_{t-1}])  (input feeding; [e] without it)
              a_t = softmax_s score(h_t, hbar_s);  c_t = sum_s a_ts hbar_s
              h~_t = tanh(W_c [c_t; h_t]);  logits = W_o h~_t                   (Luong 2015)
              score: dot h_t . hbar_s | general h_t . W_a hbar_s |
                     concat v . tanh(W_1 hbar_s + W_2 h_t)
    bahdanau  a_t = softmax_s v . tanh(W_1 hbar_s + W_2 s_{t-1});  c_t = sum_s a_ts hbar_s
              s_t = cell(s_{t-1}, [e; c_t]);  logits = W_o tanh(W_r [s_t; c_t])  (Bahdanau 2015)

Source padding (PAD = 0) gets a score of -1e9 before the softmax, so its weight is exactly 0.
`W_1 hbar_s` (and `W_a hbar_s`) are computed once per source in `encode`.

`__call__` (teacher forcing) runs the decoder step under `nn.scan` (the step module lifted
with the parameters broadcast), so it shares its parameters with `decode_step`, which runs
one step of the same module: stepping `decode_step` over the teacher tokens gives the logits
of `__call__`. Dropout (rate `dropout`) acts on the embeddings in `__call__` only.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import check_choice
from jaxlab.data.text import PAD

CELLS = ("lstm", "gru")
ATTENTIONS = ("none", "luong", "bahdanau")
SCORES = ("dot", "general", "concat")
MASKED_SCORE = -1e9


def make_cell(kind: str, features: int, dtype: Any, name: str | None = None) -> nn.RNNCellBase:
    """flax's LSTM (`OptimizedLSTMCell`: the four gates from fused projections) or GRU cell."""
    check_choice("model.cell", kind, CELLS)
    if kind == "lstm":
        return nn.OptimizedLSTMCell(features, dtype=dtype, name=name)
    return nn.GRUCell(features, dtype=dtype, name=name)


def cell_output(kind: str, carry: Any) -> jax.Array:
    """The hidden state h of a cell's carry (LSTM carry is (c, h); GRU carry is h)."""
    return carry[1] if kind == "lstm" else carry


def masked_softmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
    """softmax over the last axis with the entries where `mask` is False at exactly 0."""
    scores = jnp.where(mask, scores.astype(jnp.float32), MASKED_SCORE)
    return jax.nn.softmax(scores, axis=-1)


class DecoderStep(nn.Module):
    """One decoder step (see the module docstring); the carry is (cell carry, h~_{t-1})."""

    vocab_size: int
    hidden: int
    cell: str = "lstm"
    attention: str = "luong"
    score: str = "general"
    input_feeding: bool = True
    attention_dim: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, carry: tuple[Any, jax.Array], embedded: jax.Array, memory: dict, mask: jax.Array
    ) -> tuple[tuple[Any, jax.Array], tuple[jax.Array, jax.Array]]:
        cell_carry, feed = carry
        dense = lambda n, name, bias=True: nn.Dense(  # noqa: E731
            n, use_bias=bias, dtype=self.dtype, name=name
        )
        rnn = make_cell(self.cell, self.hidden, self.dtype, name="cell")
        values = memory["outputs"]  # [B, S, H]
        weights = jnp.zeros(mask.shape, jnp.float32)
        if self.attention == "bahdanau":
            query = dense(self.attention_dim or self.hidden, "W_2", False)(
                cell_output(self.cell, cell_carry)
            )
            energy = jnp.tanh(memory["keys"] + query[:, None, :])
            weights = masked_softmax(dense(1, "v", False)(energy)[..., 0], mask)
            context = jnp.einsum("bs,bsh->bh", weights, values.astype(jnp.float32))
            cell_carry, h = rnn(cell_carry, jnp.concatenate([embedded, context], -1))
            out = jnp.tanh(dense(self.hidden, "W_r")(jnp.concatenate([h, context], -1)))
        elif self.attention == "luong":
            x = jnp.concatenate([embedded, feed], -1) if self.input_feeding else embedded
            cell_carry, h = rnn(cell_carry, x)
            if self.score == "concat":
                query = dense(self.attention_dim or self.hidden, "W_2", False)(h)
                energy = jnp.tanh(memory["keys"] + query[:, None, :])
                scores = dense(1, "v", False)(energy)[..., 0]
            else:  # dot: keys are the outputs; general: W_a hbar_s
                scores = jnp.einsum("bh,bsh->bs", h, memory["keys"])
            weights = masked_softmax(scores, mask)
            context = jnp.einsum("bs,bsh->bh", weights, values.astype(jnp.float32))
            out = jnp.tanh(dense(self.hidden, "W_c", False)(jnp.concatenate([context, h], -1)))
            feed = out
        else:
            cell_carry, out = rnn(cell_carry, embedded)
        logits = dense(self.vocab_size, "output")(out).astype(jnp.float32)
        return (cell_carry, feed), (logits, weights)


def _scan_decoder(step: DecoderStep, carry: Any, xs: jax.Array, memory: dict, mask: jax.Array):
    return step(carry, xs, memory, mask)


class Seq2SeqRNN(nn.Module):
    """RNN encoder-decoder (see the module docstring). Contract 3: `__call__(source,
    target_in, train)`, `encode`, `init_decode_state`, `decode_step`.

    Attributes:
      vocab_size: ids incl. the 3 specials (filled by the task from the dataset).
      embed_dim, hidden: embedding and recurrent widths.
      cell: 'lstm' | 'gru'.
      bidirectional: bidirectional encoder (hidden // 2 per direction).
      attention: 'none' | 'luong' | 'bahdanau'; score (Luong): 'dot' | 'general' | 'concat'.
      input_feeding: Luong's input feeding of h~_{t-1}.
      attention_dim: width of the additive scores (0: hidden).
      dropout: on the embeddings in `__call__` when training.
    """

    vocab_size: int = 0
    embed_dim: int = 64
    hidden: int = 128
    cell: str = "lstm"
    bidirectional: bool = False
    attention: str = "luong"
    score: str = "general"
    input_feeding: bool = True
    attention_dim: int = 0
    dropout: float = 0.0
    dtype: Any = jnp.float32

    def setup(self) -> None:
        check_choice("model.cell", self.cell, CELLS)
        check_choice("model.attention", self.attention, ATTENTIONS)
        check_choice("model.score", self.score, SCORES)
        if self.bidirectional and self.hidden % 2:
            raise ValueError(f"a bidirectional encoder needs an even hidden, got {self.hidden}")
        self.embed = nn.Embed(self.vocab_size, self.embed_dim, name="embed")
        width = self.hidden // 2 if self.bidirectional else self.hidden
        if self.bidirectional:
            self.encoder = nn.Bidirectional(
                nn.RNN(make_cell(self.cell, width, self.dtype)),
                nn.RNN(make_cell(self.cell, width, self.dtype)),
                return_carry=True,
            )
        else:
            self.encoder = nn.RNN(make_cell(self.cell, width, self.dtype), return_carry=True)
        self.needs_keys = self.attention == "bahdanau" or (
            self.attention == "luong" and self.score in ("general", "concat")
        )
        if self.needs_keys:
            self.key_proj = nn.Dense(
                self.hidden
                if self.score == "general" and self.attention == "luong"
                else (self.attention_dim or self.hidden),
                use_bias=False,
                dtype=self.dtype,
                name="W_1" if self.attention == "bahdanau" or self.score == "concat" else "W_a",
            )
        self.decoder = DecoderStep(
            vocab_size=self.vocab_size,
            hidden=self.hidden,
            cell=self.cell,
            attention=self.attention,
            score=self.score,
            input_feeding=self.input_feeding,
            attention_dim=self.attention_dim,
            dtype=self.dtype,
        )
        self.drop = nn.Dropout(self.dropout)

    def encode(self, source: jax.Array, *, train: bool = False) -> dict:
        """memory: 'outputs' [B, S, H], 'keys' [B, S, H'] (the projected outputs the scores
        use), 'carry' (the decoder's initial cell carry)."""
        lengths = jnp.sum(source != PAD, axis=1).astype(jnp.int32)
        x = self.drop(self.embed(source), deterministic=not train)
        carry, outputs = self.encoder(x, seq_lengths=lengths)
        if self.bidirectional:
            (fwd, bwd) = carry
            carry = jax.tree.map(lambda a, b: jnp.concatenate([a, b], -1), fwd, bwd)
        keys = self.key_proj(outputs) if self.needs_keys else outputs
        return {"outputs": outputs, "keys": keys, "carry": carry}

    def init_decode_state(self, memory: dict, source: jax.Array, max_length: int) -> tuple:
        """(cell carry, h~ = 0); `max_length` is not needed by a recurrent decoder."""
        del max_length
        batch = source.shape[0]
        return memory["carry"], jnp.zeros((batch, self.hidden), jnp.float32)

    def decode_step(
        self, token: jax.Array, state: tuple, memory: dict, source: jax.Array
    ) -> tuple[jax.Array, tuple, jax.Array | None]:
        """(logits f32 [B, V], state, attention f32 [B, S] or None without attention)."""
        state, (logits, weights) = self.decoder(state, self.embed(token), memory, source != PAD)
        return logits, state, (None if self.attention == "none" else weights)

    def __call__(self, source: jax.Array, target_in: jax.Array, *, train: bool) -> jax.Array:
        """Teacher-forced logits f32 [B, T, V]."""
        return self.forward_with_attention(source, target_in, train=train)[0]

    def forward_with_attention(
        self, source: jax.Array, target_in: jax.Array, *, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        """Teacher-forced logits [B, T, V] and attention weights [B, T, S]."""
        memory = self.encode(source, train=train)
        state = self.init_decode_state(memory, source, target_in.shape[1])
        x = self.drop(self.embed(target_in), deterministic=not train)
        scan = nn.scan(
            _scan_decoder,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=(1, nn.broadcast, nn.broadcast),
            out_axes=1,
        )
        _, (logits, weights) = scan(self.decoder, state, x, memory, source != PAD)
        return logits, weights
