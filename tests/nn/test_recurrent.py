"""Tests of jaxlab/nn/recurrent.py: parameter counts against the closed forms and PyTorch's
numbers, one step of each cell against numpy with PyTorch's weight layout, masks, the
backward direction, merges, initial states, dropout between layers and the scalar mix."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxlab.analysis import parameter_table
from jaxlab.config import ConfigError
from jaxlab.nn.recurrent import (
    CELLS,
    Recurrent,
    ScalarMix,
    StackedRNN,
    cell_formula,
    make_cell,
    torch_style_count,
)

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _count(tree, skip: str = "initial_state") -> int:
    flat = traverse_util.flatten_dict(tree)
    return sum(int(np.prod(v.shape)) for k, v in flat.items() if skip not in k)


def _abstract_params(module, *args, **kwargs):
    return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))["params"]


def _init(module, *args, seed: int = 0):
    """Random parameters N(0, 0.5^2) in the module's structure (from `jax.eval_shape`, so
    nothing compiles: the behaviour tests need weights, not flax's initializers)."""
    rng = np.random.default_rng(seed)
    shapes = _abstract_params(module, *args)
    return jax.tree.map(lambda s: jnp.asarray(0.5 * rng.normal(size=s.shape), s.dtype), shapes)


def _apply(module, params, *args, **kwargs):
    """`module.apply` under jit (the scan and everything around it compiled once)."""
    return jax.jit(lambda p, *a: module.apply({"params": p}, *a, **kwargs))(params, *args)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("two_biases", [False, True])
def test_cell_counts_equal_the_closed_forms(kind, two_biases):
    i, h = 10, 20
    cell = make_cell(kind, h, two_biases=two_biases)
    carry = cell.zero_carry(2)
    params = _abstract_params(cell, carry, jnp.zeros((2, i)))
    # Written out independently of cell_formula: k*((in+h)*h + h) (+ k*h with two biases);
    # the layer-normalized LSTM adds two gains of 4h and the cell norm's gain and offset.
    k = GATES.get(kind, 4)
    expected = k * ((i + h) * h + h) + (k * h if two_biases else 0)
    if kind == "ln_lstm":
        expected += 2 * 4 * h + 2 * h
    assert _count(params) == expected == cell_formula(kind, i, h, two_biases)[0]


def test_formula_strings():
    assert cell_formula("lstm", 10, 20, True) == (2560, "4*((10+20)*20 + 20) + 4*20")
    assert cell_formula("lstm", 10, 20, False) == (2480, "4*((10+20)*20 + 20)")
    assert cell_formula("rnn", 3, 4, True) == (36, "(3+4)*4 + 4 + 4")
    assert cell_formula("gru", 3, 4, False) == (96, "3*((3+4)*4 + 4)")
    with pytest.raises(ConfigError, match="unknown recurrent cell 'lstn'; valid choices: rnn"):
        cell_formula("lstn", 3, 4, False)


# PyTorch's counts (torch is not installed here). Its layer l has weight_ih_l{l} [k*h, in_l],
# weight_hh_l{l} [k*h, h], bias_ih_l{l} and bias_hh_l{l} [k*h] per direction, with in_l = in
# for l = 0 and directions*h above (k = 1 RNN, 4 LSTM, 3 GRU).
TORCH_COUNTS = [
    # nn.RNN(10, 20): 20*10 + 20*20 + 20 + 20
    ("rnn", 10, 20, 1, False, 640),
    # nn.RNN(8, 16, num_layers=3): (16*8 + 16*16 + 32) + 2*(16*16 + 16*16 + 32)
    ("rnn", 8, 16, 3, False, 1504),
    # nn.LSTM(10, 20): 4*(20*10 + 20*20 + 20 + 20)
    ("lstm", 10, 20, 1, False, 2560),
    # nn.LSTM(10, 20, num_layers=2): 4*(200 + 400 + 40) + 4*(400 + 400 + 40)
    ("lstm", 10, 20, 2, False, 5920),
    # nn.LSTM(10, 20, bidirectional=True): 2*2560
    ("lstm", 10, 20, 1, True, 5120),
    # nn.GRU(10, 20): 3*(200 + 400 + 40)
    ("gru", 10, 20, 1, False, 1920),
    # nn.GRU(8, 16, num_layers=2, bidirectional=True):
    # 2*3*(16*8 + 16*16 + 32) + 2*3*(16*32 + 16*16 + 32)
    ("gru", 8, 16, 2, True, 7296),
]


@pytest.mark.parametrize("kind,i,h,layers,bidirectional,torch_count", TORCH_COUNTS)
def test_stacked_counts_equal_pytorchs(kind, i, h, layers, bidirectional, torch_count):
    stack = StackedRNN(kind, h, layers, bidirectional=bidirectional, two_biases=True)
    params = _abstract_params(stack, jnp.zeros((2, 3, i)))
    assert _count(params) == torch_count == torch_style_count(kind, i, h, layers, bidirectional)


def test_parameter_table_gives_each_cell_its_formula():
    stack = StackedRNN("lstm", 20, 2, bidirectional=True, two_biases=True)
    table = parameter_table(stack, (1, 3, 10), flops=False)
    rows = {r.path: r for r in table.rows}
    row = rows["layers_0/backward/cell"]
    assert (row.kind, row.formula, row.count) == ("lstm", "4*((10+20)*20 + 20) + 4*20", 2560)
    assert rows["layers_1/forward/cell"].formula == "4*((40+20)*20 + 20) + 4*20"
    assert table.total == 2 * 2560 + 2 * 4960  # layer 1 reads 2h = 40 features


# ----- one step against numpy, PyTorch's layout: W_ih [k*h, in] = our ih.kernel.T -----


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _torch_weights(kind, i, h, two_biases, rng):
    k = GATES[kind]
    w = {
        "w_ih": rng.normal(size=(k * h, i)),
        "w_hh": rng.normal(size=(k * h, h)),
        "b_ih": rng.normal(size=(k * h,)),
        "b_hh": rng.normal(size=(k * h,)) if two_biases else np.zeros(k * h),
    }
    params = {"ih": {"kernel": w["w_ih"].T, "bias": w["b_ih"]}, "hh": {"kernel": w["w_hh"].T}}
    if two_biases:
        params["hh"]["bias"] = w["b_hh"]
    return w, jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)


def _numpy_step(kind, w, x, h, c=None):
    gi = x @ w["w_ih"].T + w["b_ih"]
    gh = h @ w["w_hh"].T + w["b_hh"]
    if kind == "rnn":
        return np.tanh(gi + gh), None
    if kind == "lstm":  # PyTorch's chunks: i, f, g, o
        i, f, g, o = np.split(gi + gh, 4, -1)
        c2 = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c2), c2
    r_i, z_i, n_i = np.split(gi, 3, -1)  # GRU: r, z, n
    r_h, z_h, n_h = np.split(gh, 3, -1)
    r, z = _sigmoid(r_i + r_h), _sigmoid(z_i + z_h)
    n = np.tanh(n_i + r * n_h)
    return (1 - z) * n + z * h, None


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("two_biases", [False, True])
def test_one_step_equals_numpy_with_pytorchs_layout(kind, two_biases):
    rng = np.random.default_rng(0)
    i, h = 3, 4
    w, params = _torch_weights(kind, i, h, two_biases, rng)
    x, h0, c0 = rng.normal(size=(2, i)), rng.normal(size=(2, h)), rng.normal(size=(2, h))
    carry = (jnp.asarray(c0, jnp.float32), jnp.asarray(h0, jnp.float32))
    if kind != "lstm":
        carry = carry[1]
    cell = make_cell(kind, h, two_biases=two_biases)
    new_carry, y = cell.apply({"params": params}, carry, jnp.asarray(x, jnp.float32))
    want_h, want_c = _numpy_step(kind, w, x, h0, c0)
    np.testing.assert_allclose(y, want_h, rtol=1e-5, atol=1e-5)
    if kind == "lstm":
        np.testing.assert_allclose(new_carry[0], want_c, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(new_carry[1], want_h, rtol=1e-5, atol=1e-5)


def _layer_norm(x, scale, bias, eps=1e-6):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * scale + bias


def test_layer_norm_lstm_step_equals_numpy():
    rng = np.random.default_rng(1)
    i, h = 3, 4
    w_ih, w_hh = rng.normal(size=(4 * h, i)), rng.normal(size=(4 * h, h))
    g_x, b_x = rng.normal(size=(4, h)), rng.normal(size=(4, h))
    g_h, b_h = rng.normal(size=(4, h)), rng.normal(size=(4, h))
    g_c, b_c = rng.normal(size=(h,)), rng.normal(size=(h,))
    params = {
        "ih": {"kernel": w_ih.T},
        "hh": {"kernel": w_hh.T},
        "ih_norm": {"norm": {"scale": g_x, "bias": b_x}},
        "hh_norm": {"norm": {"scale": g_h, "bias": b_h}},
        "cell_norm": {"scale": g_c, "bias": b_c},
    }
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    x, h0, c0 = rng.normal(size=(2, i)), rng.normal(size=(2, h)), rng.normal(size=(2, h))
    cell = make_cell("ln_lstm", h, two_biases=True)
    carry = (jnp.asarray(c0, jnp.float32), jnp.asarray(h0, jnp.float32))
    (c1, h1), _ = cell.apply({"params": params}, carry, jnp.asarray(x, jnp.float32))
    # Each gate block normalized on its own: [B, 4, h].
    px = _layer_norm((x @ w_ih.T).reshape(2, 4, h), g_x, b_x)
    ph = _layer_norm((h0 @ w_hh.T).reshape(2, 4, h), g_h, b_h)
    i_, f, g, o = np.moveaxis(px + ph, 1, 0)
    want_c = _sigmoid(f) * c0 + _sigmoid(i_) * np.tanh(g)
    want_h = _sigmoid(o) * np.tanh(_layer_norm(want_c, g_c, b_c))
    np.testing.assert_allclose(c1, want_c, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h1, want_h, rtol=1e-4, atol=1e-5)


def test_initialization_forget_bias_and_zero_learned_state():
    x = jnp.zeros((1, 2, 3))
    lstm = Recurrent("lstm", 4, forget_bias=1.5, learned_init=True)
    ln_lstm = Recurrent("ln_lstm", 4, forget_bias=1.5)
    p_lstm, p_ln = jax.jit(lambda k: (lstm.init(k, x)["params"], ln_lstm.init(k, x)["params"]))(
        jax.random.key(0)
    )
    # The forget bias is added to the forget gate's block (i, f, g, o) of the input bias.
    np.testing.assert_array_equal(p_lstm["cell"]["ih"]["bias"], [0] * 4 + [1.5] * 4 + [0] * 8)
    # ln_lstm: the input norm's offset is the gate bias, one row per gate.
    ln_bias = p_ln["cell"]["ih_norm"]["norm"]["bias"]
    np.testing.assert_array_equal(ln_bias, np.outer([0, 1.5, 0, 0], np.ones(4)))
    assert p_lstm["initial_state"].shape == (2, 4) and not np.any(p_lstm["initial_state"])
    # Recurrent kernels: an orthogonal [h, h] block per gate.
    blocks = np.split(np.asarray(p_lstm["cell"]["hh"]["kernel"]), 4, axis=1)
    for block in blocks:
        np.testing.assert_allclose(block.T @ block, np.eye(4), atol=1e-5)


# ----- the time loop: masks, direction, merges, initial states -----

B, T, IN, H = 2, 6, 5, 8


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(B, T, IN)), jnp.float32)
    lengths = np.array([3, 6])
    mask = jnp.asarray(np.arange(T)[None] < lengths[:, None])
    return x, mask, lengths


@pytest.fixture(scope="module")
def bi_stack(inputs):
    x, mask, _ = inputs
    stack = StackedRNN("lstm", H, 2, bidirectional=True, two_biases=True)
    params = _init(stack, x, mask, seed=3)
    run = jax.jit(lambda p, x, m: stack.apply({"params": p}, x, m))
    return stack, params, run


def test_padded_steps_change_neither_outputs_nor_final_state(inputs, bi_stack):
    x, mask, lengths = inputs
    _, params, run = bi_stack
    y, carry = run(params, x, mask)
    n = lengths[0]  # row 0 is padded; the run of its real steps alone is the reference
    alone, alone_carry = run(params, x[:1, :n], mask[:1, :n])
    np.testing.assert_allclose(y[0, :n], alone[0], rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(y[0, n:]) == 0)
    got = jax.tree.map(lambda a: a[0], carry)
    want = jax.tree.map(lambda a: a[0], alone_carry)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6), got, want)


def test_backward_direction_is_the_forward_cell_on_each_reversed_sequence(inputs):
    x, mask, lengths = inputs
    backward = Recurrent("gru", H, reverse=True)
    params = _init(backward, x, mask, seed=4)
    y, _ = _apply(backward, params, x, mask)
    n = lengths[0]
    y_rev, _ = _apply(Recurrent("gru", H), params, jnp.flip(x[:1, :n], 1))
    np.testing.assert_allclose(y[0, :n], jnp.flip(y_rev[0], 0), rtol=1e-5, atol=1e-6)
    # flax's own reversal within each sequence's length (nn.RNN with seq_lengths; our cells
    # follow flax's cell protocol): the same outputs on the real steps.
    flax_rnn = nn.RNN(make_cell("gru", H), reverse=True, keep_order=True)
    y_flax = jax.jit(lambda p: flax_rnn.apply({"params": p}, x, seq_lengths=lengths))(params)
    np.testing.assert_allclose(np.where(mask[..., None], y_flax, 0), y, rtol=1e-5, atol=1e-6)


def test_merge_modes(inputs):
    x, mask, _ = inputs
    cat = StackedRNN("rnn", H, bidirectional=True, merge="concat")
    params = _init(cat, x, mask, seed=5)
    y_cat, _ = _apply(cat, params, x, mask)
    fwd, bwd = y_cat[..., :H], y_cat[..., H:]
    assert y_cat.shape == (B, T, 2 * H)
    forward_only, _ = _apply(Recurrent("rnn", H), params["layers_0"]["forward"], x, mask)
    np.testing.assert_allclose(fwd, forward_only, rtol=1e-6)
    for merge, want in (("sum", fwd + bwd), ("mean", (fwd + bwd) / 2)):
        stack = StackedRNN("rnn", H, bidirectional=True, merge=merge)
        y, _ = _apply(stack, params, x, mask)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="unknown bidirectional merge 'max'; valid choices"):
        StackedRNN("rnn", H, bidirectional=True, merge="max").init(jax.random.key(0), x)


def test_initial_carry_zeros_or_learned(inputs):
    x, _, _ = inputs
    zero = Recurrent("lstm", H)
    params = _abstract_params(zero, x)
    assert "initial_state" not in params
    c, h = zero.apply({"params": params}, 3, method="initial_carry")
    assert c.shape == h.shape == (3, H) and not np.any(c) and not np.any(h)

    learned = Recurrent("lstm", H, learned_init=True)
    params = _init(learned, x, seed=6)
    assert params["initial_state"].shape == (2, H)
    state = jnp.asarray(np.random.default_rng(7).normal(size=(2, H)), jnp.float32)
    params = {**params, "initial_state": state}
    c, h = learned.apply({"params": params}, 3, method="initial_carry")
    np.testing.assert_array_equal(c, np.broadcast_to(state[0], (3, H)))
    np.testing.assert_array_equal(h, np.broadcast_to(state[1], (3, H)))
    # The learned state is where the sequence starts: the same as passing it as the carry.
    y, _ = _apply(learned, params, x)
    y_given, _ = _apply(zero, params, x, None, (c[:B], h[:B]))
    y_zero, _ = _apply(zero, params, x)
    np.testing.assert_allclose(y, y_given, rtol=1e-6)
    assert not np.allclose(y, y_zero)


def test_dropout_between_layers_only_and_only_in_training(inputs):
    x, _, _ = inputs
    rngs = {"dropout": jax.random.key(8)}
    one = StackedRNN("rnn", H, 1, dropout=0.5)
    params = _init(one, x, seed=9)
    y_eval, _ = _apply(one, params, x)
    y_train, _ = _apply(one, params, x, train=True, rngs=rngs)
    np.testing.assert_array_equal(y_eval, y_train)  # no dropout after the last layer
    two = StackedRNN("rnn", H, 2, dropout=0.5)
    params = _init(two, x, seed=9)
    layers, _ = _apply(two, params, x, all_layers=True)
    y_train, _ = _apply(two, params, x, train=True, rngs=rngs)
    assert len(layers) == 2 and not np.allclose(layers[-1], y_train)


def test_time_loop_is_one_scan_whatever_the_length():
    stack = StackedRNN("lstm", 4)
    params = {"params": _abstract_params(stack, jnp.zeros((1, 3, 2)))}

    def size(length):
        x = jax.ShapeDtypeStruct((1, length, 2), jnp.float32)
        jaxpr = jax.make_jaxpr(lambda p, x: stack.apply(p, x))(params, x)
        return len(jaxpr.eqns), "scan" in str(jaxpr)

    assert size(5) == size(50) and size(5)[1]


def test_scalar_mix_is_a_softmax_weighted_scaled_sum():
    rng = np.random.default_rng(10)
    layers = [jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32) for _ in range(3)]
    mix = ScalarMix()
    params = mix.init(jax.random.key(0), layers)["params"]
    even = mix.apply({"params": params}, layers)
    np.testing.assert_allclose(even, sum(layers) / 3, rtol=1e-5, atol=1e-7)
    s, gamma = np.array([0.5, -1.0, 2.0]), 1.7
    w = np.exp(s) / np.exp(s).sum()
    got = mix.apply({"params": {"weights": jnp.asarray(s), "gamma": jnp.asarray(gamma)}}, layers)
    want = gamma * sum(w[k] * np.asarray(y) for k, y in enumerate(layers))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_bad_cell_and_sizes_raise_config_error():
    with pytest.raises(ConfigError, match="unknown recurrent cell 'elman'; valid choices"):
        make_cell("elman", 4)
    with pytest.raises(ConfigError, match="num_layers >= 1"):
        StackedRNN("rnn", 4, 0).init(jax.random.key(0), jnp.zeros((1, 2, 3)))
