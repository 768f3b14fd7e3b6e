"""BERT (Devlin et al. 2019) at small scale: a bidirectional post-LN Transformer encoder
with a masked-language-model head (`Bert`, registered as 'bert') and a sequence
classification head on [CLS] (`BertClassifier`, 'bert_classifier').

Vocabulary: the dataset's ids 0 .. V-1, plus two ids the model reserves after them:
`[MASK]` = V (what `jaxlab.tasks.masked_lm` writes at masked positions) and `[CLS]` = V + 1
(prepended by the encoder to every sequence). The token embedding table has V + 2 rows.

Encoder (`BertEncoder`): x_0 = LN(E_tok[[CLS], tokens] + P[0 .. T] + E_seg[segments]),
dropout; then `depth` post-LN blocks
    x = LN(x + Dropout(MHA(x)));  x = LN(x + Dropout(W2 GELU(W1 x)))
with flax's `nn.MultiHeadDotProductAttention` (no causal mask: every position sees every
other; keys equal to `pad_id` are masked out when `pad_id >= 0`).

MLM head: h = LN(GELU(W x)), logits = h E_tok[:V]^T + b (output weights tied to the input
embeddings through `nn.Embed.attend`; [MASK] and [CLS] are never predicted).

Classifier head: pooled = tanh(W_p x[CLS]) (BERT's pooler), dropout, logits = W_c pooled.

Fine-tuning: both models hold the encoder under the same key `encoder` with the same tree
(for the same vocab_size, hidden_size, depth, mlp_dim, max_len, type_vocab_size), so
`init_from` a masked_lm workdir loads `params/encoder/**` into `bert_classifier`; the MLM's
`mlm_head/**` is reported as unexpected, and the classifier's `head/**` (pooler and output
layer) matches the default `init_head` pattern 'head' and is created afresh.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class BertEncoder(nn.Module):
    """Embeddings and post-LN Transformer blocks; returns [B, T + 1, H] (position 0: [CLS]).

    `tokens` int32 [B, T] in [0, V + 2); `segments` int32 [B, T] in [0, type_vocab_size)
    (zeros when None; [CLS] takes segment 0).
    """

    vocab_size: int
    hidden_size: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_dim: int = 256
    max_len: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    pad_id: int = -1
    dtype: Any = jnp.float32

    def setup(self) -> None:
        init = nn.initializers.normal(0.02)
        self.token_embed = nn.Embed(
            self.vocab_size + 2, self.hidden_size, embedding_init=init, dtype=self.dtype
        )
        self.pos_embed = self.param("pos_embed", init, (self.max_len, self.hidden_size))
        self.segment_embed = nn.Embed(
            self.type_vocab_size, self.hidden_size, embedding_init=init, dtype=self.dtype
        )
        self.embed_norm = nn.LayerNorm(epsilon=1e-12, dtype=self.dtype)
        self.attn = [
            nn.MultiHeadDotProductAttention(
                num_heads=self.num_heads,
                dtype=self.dtype,
                kernel_init=init,
                dropout_rate=self.dropout,
                name=f"attn_{i}",
            )
            for i in range(self.depth)
        ]
        self.ln_attn = [
            nn.LayerNorm(epsilon=1e-12, dtype=self.dtype, name=f"ln_attn_{i}")
            for i in range(self.depth)
        ]
        self.mlp_in = [
            nn.Dense(self.mlp_dim, kernel_init=init, dtype=self.dtype, name=f"mlp_in_{i}")
            for i in range(self.depth)
        ]
        self.mlp_out = [
            nn.Dense(self.hidden_size, kernel_init=init, dtype=self.dtype, name=f"mlp_out_{i}")
            for i in range(self.depth)
        ]
        self.ln_mlp = [
            nn.LayerNorm(epsilon=1e-12, dtype=self.dtype, name=f"ln_mlp_{i}")
            for i in range(self.depth)
        ]
        self.drop = nn.Dropout(self.dropout)

    @property
    def cls_id(self) -> int:
        """The [CLS] id, V + 1."""
        return self.vocab_size + 1

    def __call__(
        self, tokens: jax.Array, segments: jax.Array | None = None, *, train: bool
    ) -> jax.Array:
        b, t = tokens.shape
        if t + 1 > self.max_len:
            raise ValueError(f"sequence length {t} + [CLS] exceeds bert max_len {self.max_len}")
        tokens = jnp.concatenate([jnp.full((b, 1), self.cls_id, tokens.dtype), tokens], axis=1)
        if segments is None:
            segments = jnp.zeros_like(tokens)
        else:
            segments = jnp.concatenate([jnp.zeros((b, 1), segments.dtype), segments], axis=1)
        x = self.token_embed(tokens) + self.pos_embed[: t + 1].astype(self.dtype)
        x = self.embed_norm(x + self.segment_embed(segments))
        x = self.drop(x, deterministic=not train)
        mask = None
        if self.pad_id >= 0:
            valid = tokens != self.pad_id
            mask = nn.make_attention_mask(jnp.ones_like(valid), valid)
        for i in range(self.depth):
            y = self.attn[i](x, x, mask=mask, deterministic=not train)
            x = self.ln_attn[i](x + self.drop(y, deterministic=not train))
            y = self.mlp_out[i](nn.gelu(self.mlp_in[i](x), approximate=False))
            x = self.ln_mlp[i](x + self.drop(y, deterministic=not train))
        return x

    def attend(self, x: jax.Array) -> jax.Array:
        """x [..., H] times the token embeddings transposed: [..., V + 2]."""
        return self.token_embed.attend(x)


class Bert(nn.Module):
    """BERT with the masked-LM head; `__call__(tokens, segments=None, *, train)` returns
    the logits f32 [B, T, V] over the dataset's ids at every input position (not [CLS]).

    Attributes: see `BertEncoder` (vocab_size is the dataset's, filled by the task).
    """

    vocab_size: int = 0
    hidden_size: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_dim: int = 256
    max_len: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    pad_id: int = -1
    dtype: Any = jnp.float32

    @property
    def mask_id(self) -> int:
        """The [MASK] id, V (the first id after the dataset's)."""
        return self.vocab_size

    def setup(self) -> None:
        if self.vocab_size <= 0:
            raise ValueError(f"bert needs vocab_size > 0, got {self.vocab_size}")
        self.encoder = BertEncoder(
            self.vocab_size,
            self.hidden_size,
            self.depth,
            self.num_heads,
            self.mlp_dim,
            self.max_len,
            self.type_vocab_size,
            self.dropout,
            self.pad_id,
            self.dtype,
        )
        self.mlm_head = MlmHead(self.hidden_size, self.vocab_size, self.dtype)

    def __call__(
        self, tokens: jax.Array, segments: jax.Array | None = None, *, train: bool
    ) -> jax.Array:
        x = self.encoder(tokens, segments, train=train)[:, 1:]
        h = self.mlm_head.transform(x)
        logits = self.encoder.attend(h)[..., : self.vocab_size]
        return (logits + self.mlm_head.bias()).astype(jnp.float32)


class MlmHead(nn.Module):
    """The MLM transform LN(GELU(W x)) and the output bias (the output weights are the
    encoder's embeddings)."""

    hidden_size: int
    vocab_size: int
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.output_bias = self.param("output_bias", nn.initializers.zeros, (self.vocab_size,))
        self.dense = nn.Dense(
            self.hidden_size, kernel_init=nn.initializers.normal(0.02), dtype=self.dtype
        )
        self.norm = nn.LayerNorm(epsilon=1e-12, dtype=self.dtype)

    def transform(self, x: jax.Array) -> jax.Array:
        """LN(GELU(W x))."""
        return self.norm(nn.gelu(self.dense(x), approximate=False))

    def bias(self) -> jax.Array:
        """The output bias [V]."""
        return self.output_bias

    def __call__(self, x: jax.Array) -> jax.Array:
        """The logits' bias-free part is the encoder's; this is the transform."""
        return self.transform(x)


class BertClassifier(nn.Module):
    """BERT's sequence classifier (contract 2): `__call__(x, *, train)` -> logits f32
    [B, num_classes] from the pooled [CLS] vector. `pad_id` defaults to PAD = 0: keys
    holding it are masked out of attention, so right padding changes nothing.

    Attributes: see `BertEncoder`; `num_classes` comes from the dataset.
    """

    vocab_size: int = 0
    num_classes: int = 2
    hidden_size: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_dim: int = 256
    max_len: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    pad_id: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        if self.vocab_size <= 0:
            raise ValueError(f"bert_classifier needs vocab_size > 0, got {self.vocab_size}")
        h = BertEncoder(
            self.vocab_size,
            self.hidden_size,
            self.depth,
            self.num_heads,
            self.mlp_dim,
            self.max_len,
            self.type_vocab_size,
            self.dropout,
            self.pad_id,
            self.dtype,
            name="encoder",
        )(x, train=train)
        return ClassifierHead(self.num_classes, self.dropout, self.dtype, name="head")(
            h[:, 0], train=train
        )


class ClassifierHead(nn.Module):
    """pooled = tanh(W_p h_cls); logits = W_c Dropout(pooled)."""

    num_classes: int
    dropout: float = 0.1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array, *, train: bool) -> jax.Array:
        init = nn.initializers.normal(0.02)
        pooled = jnp.tanh(
            nn.Dense(h.shape[-1], kernel_init=init, dtype=self.dtype, name="pooler")(h)
        )
        pooled = nn.Dropout(self.dropout)(pooled, deterministic=not train)
        out = nn.Dense(self.num_classes, kernel_init=init, dtype=self.dtype, name="out")(pooled)
        return out.astype(jnp.float32)
