"""The bert helper's language models: conv_lm (jaxlab/models/conv_lm.py), bert and
bert_classifier (bert.py), transformer_xl (transformer_xl.py).

Causality is checked by perturbing the token embeddings (flax's method interception adds a
zero tensor to the output of the model's `nn.Embed`) and taking the gradient of the logits
at step t with respect to it: exactly zero at every step after t, nonzero at t.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.models import get_model
from jaxlab.models.transformer_xl import rel_shift

V, B, T = 11, 2, 7


def forward(model):
    """model.apply(variables, tokens, carry=None, train=False), jit-compiled."""
    return jax.jit(functools.partial(model.apply, train=False))


def decoder(model):
    """model.apply(variables, tokens, state, method='decode'), jit-compiled."""
    return jax.jit(functools.partial(model.apply, method="decode"))


def tokens_of(seed: int, length: int = T, batch: int = B) -> jax.Array:
    return jax.random.randint(jax.random.key(seed), (batch, length), 0, V)


def init(model, *args):
    """model.init(key 0, *args, train=False), jit-compiled."""
    return jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), *args)


def embedding_gradient(model, variables, tokens, t, **kwargs) -> np.ndarray:
    """|d sum(logits[:, t]) / d embedding[:, s]| summed over features: [B, T] for an int
    `t`, [len(t), B, T] for a tuple (one compiled Jacobian)."""
    delta = jnp.zeros((*tokens.shape, embed_size(model)))

    def f(d):
        def add(next_fun, args, kw, context):
            out = next_fun(*args, **kw)
            token_embed = (
                isinstance(context.module, nn.Embed)
                and context.method_name == "__call__"
                and context.module.num_embeddings >= V  # not BERT's segment embeddings
            )
            # BERT's encoder prepends [CLS]: the tokens are the last T rows.
            return out.at[:, out.shape[1] - d.shape[1] :].add(d) if token_embed else out

        with nn.intercept_methods(add):
            out = model.apply(variables, tokens, train=False, **kwargs)
        logits = out[0] if isinstance(out, tuple) else out
        return jnp.stack([jnp.sum(logits[:, s]) for s in ts])

    ts = (t,) if isinstance(t, int) else tuple(t)
    jac = np.asarray(jnp.abs(jax.jit(jax.jacrev(f))(delta)).sum(-1))
    return jac[0] if isinstance(t, int) else jac


def embed_size(model) -> int:
    for name in ("embed_dim", "d_model", "hidden_size"):
        if hasattr(model, name):
            return getattr(model, name)
    raise AttributeError(name)


# --- conv_lm -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conv_lm():
    model = get_model("conv_lm", vocab_size=V, embed_dim=8, width=8, kernel_size=3)
    variables = init(model, tokens_of(0))
    return model, variables


def test_conv_lm_is_causal_with_the_receptive_field_of_its_convolutions(conv_lm):
    model, variables = conv_lm
    g = embedding_gradient(model, variables, tokens_of(1), t=5)
    assert np.all(g[:, 6:] == 0) and np.all(g[:, 5] > 0)
    # 4 convolutions of width 3 see 4 * 2 = 8 steps back: all of 0..5 here.
    assert np.all(g[:, :5] > 0)
    small = get_model("conv_lm", vocab_size=V, embed_dim=8, width=8, kernel_size=2, num_blocks=1)
    small_vars = init(small, tokens_of(0))
    g = embedding_gradient(small, small_vars, tokens_of(1), t=5)
    # 2 convolutions of width 2: steps 3, 4, 5 only (the residual adds nothing older).
    assert np.all(g[:, :3] == 0) and np.all(g[:, 3:6] > 0) and np.all(g[:, 6:] == 0)


def test_conv_lm_chunked_decode_equals_the_full_pass(conv_lm):
    model, variables = conv_lm
    tokens = tokens_of(2)
    full, carry = forward(model)(variables, tokens)
    assert carry is None and model.apply(variables, B, method="initial_carry") is None
    state = model.apply(variables, B, T, method="init_decode_state")
    chunks, decode = [], decoder(model)
    for lo, hi in ((0, 3), (3, 4), (4, 5), (5, 6), (6, 7)):  # a prompt, then steps
        logits, state = decode(variables, tokens[:, lo:hi], state)
        chunks.append(logits)
    np.testing.assert_allclose(np.concatenate(chunks, 1), full, rtol=1e-5, atol=1e-5)


# --- bert ----------------------------------------------------------------------------------

BERT = dict(vocab_size=V, hidden_size=16, depth=1, num_heads=2, mlp_dim=32, max_len=12)


@pytest.fixture(scope="module")
def bert():
    model = get_model("bert", **BERT)
    return model, init(model, tokens_of(0))


def test_bert_is_bidirectional_and_ties_its_output_to_the_embeddings(bert):
    model, variables = bert
    logits = forward(model)(variables, tokens_of(3))
    assert logits.shape == (B, T, V) and model.mask_id == V
    g = embedding_gradient(model, variables, tokens_of(3), t=2)
    assert np.all(g > 0)  # every position sees every other
    # Output weights tied: logits = LN(GELU(W x)) E[:V]^T + b, checked by hand.
    params = variables["params"]
    hidden = jax.jit(
        lambda v, x: model.apply(
            v, x, method=lambda m, x: m.mlm_head.transform(m.encoder(x, train=False)[:, 1:])
        )
    )(variables, tokens_of(3))
    table = params["encoder"]["token_embed"]["embedding"]
    assert table.shape == (V + 2, 16)  # + [MASK] and [CLS]
    expected = hidden @ table[:V].T + params["mlm_head"]["output_bias"]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_bert_classifier_shares_the_encoder_tree_and_ignores_padding(bert):
    _, variables = bert
    clf = get_model("bert_classifier", num_classes=3, **BERT)
    cvars = init(clf, tokens_of(0))
    shapes = lambda tree: jax.tree.map(jnp.shape, tree)  # noqa: E731
    assert shapes(cvars["params"]["encoder"]) == shapes(variables["params"]["encoder"])
    assert set(cvars["params"]) == {"encoder", "head"}  # head: init_head re-creates it
    # init_from's merge: the encoder loads, the classifier's head is re-created, the MLM head
    # is reported as unexpected.
    from jaxlab.train.transfer import merge_pretrained

    loaded, report = merge_pretrained(cvars, {"params": variables["params"]}, head="head")
    assert report.reinitialized and all(p.startswith("params/head/") for p in report.reinitialized)
    assert report.loaded and all(p.startswith("params/encoder/") for p in report.loaded)
    assert not report.missing and all("mlm_head" in p for p in report.unexpected)
    assert len(report.loaded) == len(jax.tree.leaves(variables["params"]["encoder"]))
    x = jnp.array([[4, 5, 6, 0, 0, 0, 0], [7, 3, 9, 8, 4, 0, 0]])
    run = forward(clf)
    logits = run(loaded, x)
    assert logits.shape == (B, 3)
    np.testing.assert_allclose(run(loaded, x[:, :5]), logits, atol=1e-5)
    shifted = x.at[0, 5].set(9)  # a real token where row 0 had padding changes row 0 only
    out = run(loaded, shifted)
    assert not np.allclose(out[0], logits[0]) and np.allclose(out[1], logits[1], atol=1e-6)


# --- transformer_xl ------------------------------------------------------------------------


def test_rel_shift_equals_a_direct_gather():
    t, k = 4, 7
    x = jax.random.normal(jax.random.key(0), (2, 3, t, k))
    out, x = np.asarray(rel_shift(x)), np.asarray(x)
    for i in range(t):
        for j in range(i + k - t + 1):
            np.testing.assert_array_equal(out[..., i, j], x[..., i, j + t - 1 - i])


XL = dict(vocab_size=V, d_model=16, num_heads=2, head_dim=8, d_inner=32, depth=2)


@pytest.fixture(scope="module")
def xl():
    model = get_model("transformer_xl", mem_len=4, **XL)
    variables = init(model, tokens_of(0, 4))
    # Nonzero u, v so that the (c) and (d) terms take part.
    params = variables["params"]
    params = {
        **params,
        "pos_bias_u": jax.random.normal(jax.random.key(5), params["pos_bias_u"].shape),
        "pos_bias_v": jax.random.normal(jax.random.key(6), params["pos_bias_v"].shape),
    }
    return model, {"params": params}


def test_transformer_xl_is_causal(xl):
    model, variables = xl
    g = embedding_gradient(model, variables, tokens_of(1, 4), t=2)
    assert np.all(g[:, 3:] == 0) and np.all(g[:, :3] > 0)


def test_transformer_xl_memory_reproduces_the_run_over_both_segments(xl):
    model, variables = xl
    tokens = tokens_of(4, 8)
    run = forward(model)
    seg1, carry = run(variables, tokens[:, :4])
    seg2, carry2 = run(variables, tokens[:, 4:], carry)
    # One window over both segments (memory 8 > 4 + 4: nothing is evicted).
    long = get_model("transformer_xl", mem_len=8, **XL)
    both, _ = forward(long)(variables, tokens)
    np.testing.assert_allclose(seg1, both[:, :4], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(seg2, both[:, 4:], rtol=1e-5, atol=1e-5)
    assert carry2.mems.shape == (B, 2, 4, 16) and bool(carry2.valid.all())
    # The memory is used: without it segment 2's logits differ.
    alone, _ = run(variables, tokens[:, 4:])
    assert not np.allclose(alone, seg2, atol=1e-3)
    # The carried memory is out of the gradient's path (stop-gradient).
    grad = jax.jit(
        jax.grad(
            lambda m: model.apply(variables, tokens[:, 4:], carry.replace(mems=m), train=False)[
                0
            ].sum()
        )
    )(carry.mems)
    assert np.all(np.asarray(grad) == 0)
    # Chunked decoding (a memory of max_length slots) equals the full pass.
    state = model.apply(variables, B, 8, method="init_decode_state")
    chunks, decode = [], decoder(model)
    for lo, hi in ((0, 4), (4, 5), (5, 6), (6, 7), (7, 8)):  # a prompt, then steps
        logits, state = decode(variables, tokens[:, lo:hi], state)
        chunks.append(logits)
    np.testing.assert_allclose(np.concatenate(chunks, 1), both, rtol=1e-5, atol=1e-5)
    empty = model.apply(variables, B, method="initial_carry")
    assert empty.mems.shape == (B, 2, 4, 16) and not bool(empty.valid.any())


# --- xlnet ---------------------------------------------------------------------------------


def test_xlnet_query_stream_sees_neither_its_token_nor_later_ones_in_the_order():
    from jaxlab.tasks.permutation_lm import sample_rank

    model = get_model("xlnet", vocab_size=V, d_model=16, num_heads=2, head_dim=8, d_inner=32)
    tokens = tokens_of(7)
    rank = sample_rank(jax.random.key(3), B, T)
    np.testing.assert_array_equal(np.sort(rank, axis=1), np.tile(np.arange(T), (B, 1)))
    variables = init(model, tokens, rank)
    rank_np = np.asarray(rank)
    grads = embedding_gradient(model, variables, tokens, t=(0, 4), rank=rank)
    for t, g in zip((0, 4), grads, strict=True):
        before = rank_np < rank_np[:, t : t + 1]  # earlier in the order
        assert np.all(g[~before] == 0)  # its own token and everything after it in the order
        assert np.all(g[before] > 0)


# --- train mode ----------------------------------------------------------------------------

SMALL = {
    "conv_lm": dict(embed_dim=8, width=8, kernel_size=2, num_blocks=1),
    "transformer_xl": dict(mem_len=4, **{k: v for k, v in XL.items() if k != "vocab_size"}),
}


@pytest.mark.parametrize("name", sorted(SMALL))  # bert's and xlnet's: in the task tests
def test_dropout_draws_from_the_dropout_stream_in_training_only(name):
    model = get_model(name, vocab_size=V, dropout=0.5, **SMALL[name])
    tokens = tokens_of(8)
    variables = init(model, tokens)

    @jax.jit
    def run(key):
        out = model.apply(variables, tokens, train=True, rngs={"dropout": key})
        return out[0] if isinstance(out, tuple) else out

    a, b, c = run(jax.random.key(1)), run(jax.random.key(2)), run(jax.random.key(1))
    assert np.all(np.isfinite(a)) and not np.allclose(a, b) and np.array_equal(a, c)
    out = forward(model)(variables, tokens)
    out = out[0] if isinstance(out, tuple) else out
    assert not np.allclose(out, a)  # evaluation runs without dropout
