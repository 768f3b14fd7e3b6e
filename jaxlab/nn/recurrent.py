"""Recurrent building blocks: cells (tanh RNN, LSTM, GRU, layer-normalized LSTM), a layer
that runs a cell over time with `nn.scan`, stacked and bidirectional layers, and ELMo's
learned scalar mix of layer outputs.

Conventions (every cell):

- Parameter layout as PyTorch's `nn.RNN` / `nn.LSTM` / `nn.GRU`: one fused input projection
  `ih` (Dense, kernel [in, k*h], bias [k*h]) and one fused hidden projection `hh` (kernel
  [h, k*h], bias [k*h] only with `two_biases=True`), with the k gate blocks in PyTorch's
  order (LSTM: i, f, g, o; GRU: r, z, n). So `ih.kernel.T` is PyTorch's `weight_ih_l0` and
  the counts are PyTorch's with `two_biases=True` and the closed forms
  `(in+h)*h + h`, `4*((in+h)*h + h)`, `3*((in+h)*h + h)` with one bias (`cell_formula`).
- Equations, with p = x W_ih + b_ih and q = h W_hh (+ b_hh):
  RNN  h' = tanh(p + q);
  LSTM (i, f, g, o) = (p + q) split in 4; c' = s(f) c + s(i) tanh(g); h' = s(o) tanh(c');
  GRU  r = s(p_r + q_r); z = s(p_z + q_z); n = tanh(p_n + r * q_n); h' = (1 - z) n + z h
  (PyTorch's GRU: with one bias, `b_hn` inside `r * (.)` is absent, b_in stays outside).
- `forget_bias` (LSTMs) is added to the forget gate's slice of the input bias at
  *initialization* (a learnable bias, as Jozefowicz et al. 2015 recommend; the parameter
  count is unchanged and the weights stay PyTorch-portable), not a constant in the step.
- Initialization as flax's cells: lecun-normal input kernels, orthogonal recurrent kernels
  (per gate block), zero biases (plus the forget bias).
- The input projection of a whole sequence is one matmul outside the time loop
  (`project_inputs`, as cuDNN does); only `step` (the hidden projection and the gates) runs
  inside `nn.scan`.

Why not flax's cells: `nn.LSTMCell` keeps eight separate Dense modules (no fused 4h
projection, bias on the hidden side only); `nn.OptimizedLSTMCell` fuses at compute time but
stores per-gate parameters; `nn.GRUCell` has 4h biases (b_ir, b_iz, b_in, b_hn), which is
neither the one-bias closed form (3h) nor PyTorch's (6h); `nn.SimpleCell` has no two-bias
option; and none of them separates the input projection from the step, which hoisting it
out of the scan needs. Why not flax's `nn.RNN` / `nn.Bidirectional`: they scan the whole
cell (no hoisted projection), leave padded outputs unspecified and find the final carry by
storing every step's carry; `Recurrent` instead keeps the carry on padded steps (so the
final carry is the state after the last real step, for any mask) and zeroes padded
outputs. The backward direction flips the whole window: its padded steps then come first
and keep the initial carry, which equals flax's `flip_sequences` (reversal within each
sequence's real length) for the prefix masks of padded batches. The cells follow flax's
cell protocol, so `nn.RNN(cell, reverse=True, keep_order=True)` with `seq_lengths` runs
them too; the tests check `Recurrent(reverse=True)` against it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError, check_choice

Array = jax.Array
Carry = Any  # an array [B, h] (RNN, GRU) or a tuple (c, h) of them (LSTMs)
Shape = tuple[int, ...]

MERGE_MODES = ("concat", "sum", "mean")


def per_gate(init: Callable[..., Array], num_gates: int) -> Callable[..., Array]:
    """An initializer of a fused [rows, num_gates*h] kernel that initializes each [rows, h]
    gate block with `init` separately (an orthogonal recurrent kernel per gate, as flax's
    per-gate cells have, rather than one orthogonal [h, 4h] matrix)."""

    def init_fn(key: Array, shape: Shape, dtype: Any = jnp.float32) -> Array:
        rows, cols = shape
        keys = jax.random.split(key, num_gates)
        blocks = jax.vmap(lambda k: init(k, (rows, cols // num_gates), dtype))(keys)
        return jnp.moveaxis(blocks, 0, 1).reshape(rows, cols)  # [rows, gate blocks side by side]

    return init_fn


def gate_bias_init(num_gates: int, gate: int, value: float) -> Callable[..., Array]:
    """An initializer of a fused [..., num_gates*h] bias: zeros, with `value` on gate block
    `gate` (the LSTM's forget gate is block 1 of i, f, g, o)."""

    def init_fn(key: Array, shape: Shape, dtype: Any = jnp.float32) -> Array:
        del key
        h = shape[-1] // num_gates
        return jnp.zeros(shape, dtype).at[..., gate * h : (gate + 1) * h].set(value)

    return init_fn


def cell_formula(kind: str, input_size: int, hidden_size: int, two_biases: bool) -> tuple[int, str]:
    """(parameter count, formula with the sizes written in) of one cell, e.g.
    `cell_formula('lstm', 10, 20, True) == (2560, '4*((10+20)*20 + 20) + 4*20')`.

    rnn `(in+h)*h + h`, lstm `4*((in+h)*h + h)`, gru `3*((in+h)*h + h)`, each `+ k*h` with two
    biases (k = 1, 4, 3: PyTorch's count); ln_lstm `4*((in+h)*h + h) + 2*4*h + 2*h` (the gate
    bias is the input norm's offset; the input and hidden norms' gains; the cell norm's gain
    and offset) `+ 4*h` with two biases (the hidden norm's offset).
    """
    check_choice("recurrent cell", kind, CELLS)
    i, h = input_size, hidden_size
    k = CELLS[kind].num_gates
    base = f"(({i}+{h})*{h} + {h})"
    formula = base[1:-1] if k == 1 else f"{k}*{base}"
    count = k * ((i + h) * h + h)
    if kind == "ln_lstm":
        formula += f" + 2*4*{h} + 2*{h}"
        count += 8 * h + 2 * h
    if two_biases:
        formula += f" + {h}" if k == 1 else f" + {k}*{h}"
        count += k * h
    return count, formula


class RecurrentCell(nn.Module):
    """Base of the cells: fused projections `ih` (input, with bias) and `hh` (hidden, with a
    bias only if `two_biases`), k = `num_gates` blocks of `hidden_size` each.

    Follows flax's cell protocol (`cell(carry, x) -> (carry, y)`, `initialize_carry`) and
    splits it for the time loop: `project_inputs(x)` (any leading axes, e.g. [B, T, in]),
    then `step(carry, projected) -> (carry, y)` per time step.
    """

    hidden_size: int
    two_biases: bool = False
    forget_bias: float = 1.0  # LSTMs only: added to the forget gate's bias at init
    dtype: Any = jnp.float32

    kind: ClassVar[str] = ""
    num_gates: ClassVar[int] = 1
    carry_parts: ClassVar[int] = 1  # arrays in the carry: 2 for the LSTM's (c, h)

    def input_bias_init(self) -> Callable[..., Array]:
        """The initializer of the input projection's bias (zeros; LSTMs: the forget bias)."""
        return nn.initializers.zeros_init()

    def setup(self) -> None:
        k, h = self.num_gates, self.hidden_size
        self.ih = nn.Dense(
            k * h,
            kernel_init=nn.initializers.lecun_normal(),
            bias_init=self.input_bias_init(),
            dtype=self.dtype,
        )
        self.hh = nn.Dense(
            k * h,
            use_bias=self.two_biases,
            kernel_init=per_gate(nn.initializers.orthogonal(), k),
            dtype=self.dtype,
        )

    def project_inputs(self, x: Array) -> Array:
        """x W_ih + b_ih for inputs with any leading axes: [..., in] -> [..., k*h]."""
        return self.ih(x)

    def gates(self, projected: Array, h: Array) -> tuple[Array, Array]:
        """(p, q): the projected input and the hidden projection h W_hh (+ b_hh)."""
        return projected, self.hh(h)

    def step(self, carry: Carry, projected: Array) -> tuple[Carry, Array]:
        """One time step from the projected input [B, k*h]: (new carry, output h' [B, h])."""
        raise NotImplementedError

    def __call__(self, carry: Carry, x: Array) -> tuple[Carry, Array]:
        """One time step from the raw input x [B, in] (flax's cell protocol)."""
        return self.step(carry, self.project_inputs(x))

    def zero_carry(self, batch_size: int) -> Carry:
        """The all-zero carry for `batch_size` sequences: float32 (the state stays float32
        when the cell computes in bfloat16), float64 for a float64 cell (gradient checks)."""
        dtype = jnp.promote_types(self.dtype, jnp.float32)
        zeros = jnp.zeros((batch_size, self.hidden_size), dtype)
        return (zeros, zeros) if self.carry_parts == 2 else zeros

    @nn.nowrap
    def initialize_carry(self, rng: Array, input_shape: Shape) -> Carry:
        """flax's cell protocol: the zero carry for inputs of `input_shape` ([B, in])."""
        del rng
        return self.zero_carry(input_shape[0])

    @property
    def num_feature_axes(self) -> int:
        """flax's cell protocol: one feature axis."""
        return 1

    @nn.nowrap
    def parameter_formula(self, shapes: Mapping[tuple[str, ...], Shape]) -> tuple[str, str]:
        """(kind, formula) of this cell from its parameters' shapes (paths relative to the
        cell), for `jaxlab.analysis.params`: the input size is read off `ih`'s kernel."""
        input_size = shapes[("ih", "kernel")][0]
        _, formula = cell_formula(self.kind, input_size, self.hidden_size, self.two_biases)
        return self.kind, formula


def _keep_dtype(new: Carry, old: Carry) -> Carry:
    return jax.tree.map(lambda n, o: n.astype(o.dtype), new, old)


class RNNCell(RecurrentCell):
    """Elman RNN: h' = tanh(x W_ih + b_ih + h W_hh (+ b_hh)). Count `(in+h)*h + h` (+h)."""

    kind: ClassVar[str] = "rnn"

    def step(self, carry: Carry, projected: Array) -> tuple[Carry, Array]:
        """h' = tanh(p + q); the output is h'."""
        p, q = self.gates(projected, carry)
        h = jnp.tanh(p + q)
        return _keep_dtype(h, carry), h


class LSTMCell(RecurrentCell):
    """LSTM with PyTorch's gate order i, f, g, o in one fused 4h projection of the input and
    one of the hidden state. Carry (c, h). Count `4*((in+h)*h + h)` (+4h)."""

    kind: ClassVar[str] = "lstm"
    num_gates: ClassVar[int] = 4
    carry_parts: ClassVar[int] = 2

    def input_bias_init(self) -> Callable[..., Array]:
        """Zeros with `forget_bias` on the forget gate's block."""
        return gate_bias_init(4, 1, self.forget_bias)

    def cell_output(self, c: Array) -> Array:
        """tanh(c') (the layer-normalized LSTM normalizes c' first)."""
        return jnp.tanh(c)

    def step(self, carry: Carry, projected: Array) -> tuple[Carry, Array]:
        """c' = s(f) c + s(i) tanh(g); h' = s(o) tanh(c')."""
        c, h = carry
        p, q = self.gates(projected, h)
        i, f, g, o = jnp.split(p + q, 4, axis=-1)
        new_c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        new_h = jax.nn.sigmoid(o) * self.cell_output(new_c)
        return _keep_dtype((new_c, new_h), carry), new_h


class GRUCell(RecurrentCell):
    """GRU as PyTorch: r, z, n blocks; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), b_hn
    only with `two_biases`. Count `3*((in+h)*h + h)` (+3h)."""

    kind: ClassVar[str] = "gru"
    num_gates: ClassVar[int] = 3

    def step(self, carry: Carry, projected: Array) -> tuple[Carry, Array]:
        """r, z = s(p + q); n = tanh(p_n + r q_n); h' = (1 - z) n + z h."""
        p, q = self.gates(projected, carry)
        p_r, p_z, p_n = jnp.split(p, 3, axis=-1)
        q_r, q_z, q_n = jnp.split(q, 3, axis=-1)
        r = jax.nn.sigmoid(p_r + q_r)
        z = jax.nn.sigmoid(p_z + q_z)
        n = jnp.tanh(p_n + r * q_n)
        h = (1.0 - z) * n + z * carry
        return _keep_dtype(h, carry), h


class _GateNorm(nn.Module):
    """Layer norm of each gate block of a fused [..., k*h] vector separately (per-gate
    statistics, scale and offset [k, h]); `use_bias=False` drops the offset, whose row 1
    (the LSTM's forget gate) starts at `forget_bias`."""

    num_gates: int
    use_bias: bool = True
    forget_bias: float = 0.0
    dtype: Any = jnp.float32

    def _offset_init(self, key: Array, shape: Shape, dtype: Any = jnp.float32) -> Array:
        del key
        return jnp.zeros(shape, dtype).at[1].set(self.forget_bias)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        y = x.reshape(*x.shape[:-1], self.num_gates, -1)
        y = nn.LayerNorm(
            reduction_axes=-1,
            feature_axes=(-2, -1),
            use_bias=self.use_bias,
            bias_init=self._offset_init,
            dtype=self.dtype,
            name="norm",
        )(y)
        return y.reshape(x.shape)


class LayerNormLSTMCell(LSTMCell):
    """Layer-normalized LSTM (Ba et al., 2016): (i, f, g, o) = LN(x W_ih) + LN(h W_hh) + b,
    c' = s(f) c + s(i) tanh(g), h' = s(o) tanh(LN(c')). Each gate block is normalized on
    its own (as TensorFlow's LayerNormBasicLSTMCell); the gate bias b is the input norm's
    offset (with the forget bias at init), so `ih` has no bias of its own; `two_biases`
    gives the hidden norm an offset too. Count `4*((in+h)*h + h) + 2*4*h + 2*h` (+4h)."""

    kind: ClassVar[str] = "ln_lstm"

    def setup(self) -> None:
        h = self.hidden_size
        self.ih = nn.Dense(
            4 * h, use_bias=False, kernel_init=nn.initializers.lecun_normal(), dtype=self.dtype
        )
        self.hh = nn.Dense(
            4 * h,
            use_bias=False,
            kernel_init=per_gate(nn.initializers.orthogonal(), 4),
            dtype=self.dtype,
        )
        self.ih_norm = _GateNorm(4, forget_bias=self.forget_bias, dtype=self.dtype)
        self.hh_norm = _GateNorm(4, use_bias=self.two_biases, dtype=self.dtype)
        self.cell_norm = nn.LayerNorm(dtype=self.dtype)

    def project_inputs(self, x: Array) -> Array:
        """LN(x W_ih) + b per gate block, for inputs with any leading axes."""
        return self.ih_norm(self.ih(x))

    def gates(self, projected: Array, h: Array) -> tuple[Array, Array]:
        """(p, LN(h W_hh))."""
        return projected, self.hh_norm(self.hh(h))

    def cell_output(self, c: Array) -> Array:
        """tanh(LN(c'))."""
        return jnp.tanh(self.cell_norm(c))


CELLS: dict[str, type[RecurrentCell]] = {
    "rnn": RNNCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "ln_lstm": LayerNormLSTMCell,
}


def make_cell(
    kind: str,
    hidden_size: int,
    *,
    two_biases: bool = False,
    forget_bias: float = 1.0,
    dtype: Any = jnp.float32,
) -> RecurrentCell:
    """The cell named `kind` (rnn, lstm, gru, ln_lstm); ConfigError naming the valid ones."""
    check_choice("recurrent cell", kind, CELLS)
    return CELLS[kind](hidden_size, two_biases=two_biases, forget_bias=forget_bias, dtype=dtype)


def carry_output(carry: Carry) -> Array:
    """The hidden state h of a cell's carry (the LSTM's carry is (c, h))."""
    return carry[1] if isinstance(carry, tuple) else carry


def _scan_step(cell: RecurrentCell, carry: Carry, inputs: tuple[Array, Array]):
    projected, mask = inputs  # [B, k*h], [B]
    new_carry, y = cell.step(carry, projected)
    keep = mask[:, None]
    new_carry = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new_carry, carry)
    return new_carry, jnp.where(keep, y, jnp.zeros_like(y))


class Recurrent(nn.Module):
    """One recurrent layer in one direction: the cell `cell_type` run over the time axis of
    x [B, T, in] with `nn.scan`. Returns (outputs [B, T, h], final carry).

    `mask` [B, T] (true/1 = real step): on a padded step the carry is kept and the output
    is zero, so real outputs and the final carry equal those of the unpadded sequence.
    `reverse=True` runs from the last step to the first (the whole window flipped; with a
    mask, each sequence starts at its last real step) and returns outputs in input order.
    `learned_init`: the initial carry is a learned parameter `initial_state`
    [carry parts, h] shared by the batch (zeros at init), else zeros.
    """

    cell_type: str
    hidden_size: int
    reverse: bool = False
    two_biases: bool = False
    forget_bias: float = 1.0
    learned_init: bool = False
    unroll: int = 1
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.cell = make_cell(
            self.cell_type,
            self.hidden_size,
            two_biases=self.two_biases,
            forget_bias=self.forget_bias,
            dtype=self.dtype,
        )
        if self.learned_init:
            parts = CELLS[self.cell_type].carry_parts
            self.initial_state = self.param(
                "initial_state", nn.initializers.zeros_init(), (parts, self.hidden_size)
            )

    def initial_carry(self, batch_size: int) -> Carry:
        """The carry before the first step: learned (broadcast over the batch) or zeros."""
        carry = self.cell.zero_carry(batch_size)
        if not self.learned_init:
            return carry
        parts = [jnp.broadcast_to(v, (batch_size, self.hidden_size)) for v in self.initial_state]
        return tuple(parts) if isinstance(carry, tuple) else parts[0]

    def __call__(
        self, x: Array, mask: Array | None = None, carry: Carry | None = None
    ) -> tuple[Array, Carry]:
        """(outputs [B, T, h], carry after the last real step)."""
        batch, length = x.shape[:2]
        start = self.initial_carry(batch)  # created even when a carry is given
        carry = start if carry is None else carry
        mask = jnp.ones((batch, length), bool) if mask is None else mask.astype(bool)
        projected = self.cell.project_inputs(x)
        if self.reverse:
            projected, mask = jnp.flip(projected, 1), jnp.flip(mask, 1)
        scan = nn.scan(
            _scan_step,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=1,
            out_axes=1,
            unroll=self.unroll,
        )
        carry, ys = scan(self.cell, carry, (projected, mask))
        return (jnp.flip(ys, 1) if self.reverse else ys), carry


def merge_directions(forward: Array, backward: Array, mode: str) -> Array:
    """Merges the two directions' outputs: concat (width 2h), sum or mean."""
    check_choice("bidirectional merge", mode, MERGE_MODES)
    if mode == "concat":
        return jnp.concatenate([forward, backward], -1)
    total = forward + backward
    return total / 2 if mode == "mean" else total


class RecurrentLayer(nn.Module):
    """One layer, forward only (`forward`) or bidirectional (`forward` and `backward`,
    merged by `merge`). Carry: the forward cell's carry, or (forward, backward) carries."""

    cell_type: str
    hidden_size: int
    bidirectional: bool = False
    merge: str = "concat"
    two_biases: bool = False
    forget_bias: float = 1.0
    learned_init: bool = False
    unroll: int = 1
    dtype: Any = jnp.float32

    def setup(self) -> None:
        check_choice("bidirectional merge", self.merge, MERGE_MODES)
        kwargs = dict(
            cell_type=self.cell_type,
            hidden_size=self.hidden_size,
            two_biases=self.two_biases,
            forget_bias=self.forget_bias,
            learned_init=self.learned_init,
            unroll=self.unroll,
            dtype=self.dtype,
        )
        self.forward = Recurrent(**kwargs)
        if self.bidirectional:
            self.backward = Recurrent(reverse=True, **kwargs)

    def initial_carry(self, batch_size: int) -> Carry:
        """The layer's initial carry (each direction's)."""
        if self.bidirectional:
            return (self.forward.initial_carry(batch_size), self.backward.initial_carry(batch_size))
        return self.forward.initial_carry(batch_size)

    def __call__(
        self, x: Array, mask: Array | None = None, carry: Carry | None = None
    ) -> tuple[Array, Carry]:
        """(outputs [B, T, h or 2h], final carry)."""
        if not self.bidirectional:
            return self.forward(x, mask, carry)
        fwd_carry, bwd_carry = (None, None) if carry is None else carry
        y_f, c_f = self.forward(x, mask, fwd_carry)
        y_b, c_b = self.backward(x, mask, bwd_carry)
        return merge_directions(y_f, y_b, self.merge), (c_f, c_b)

    def final_output(self, carry: Carry) -> Array:
        """The layer's summary of each sequence from its final carry: h after the last real
        step (bidirectional: merged with the backward h after the first step)."""
        if self.bidirectional:
            return merge_directions(carry_output(carry[0]), carry_output(carry[1]), self.merge)
        return carry_output(carry)


class StackedRNN(nn.Module):
    """`num_layers` recurrent layers (`layers_0`, ...), each reading the previous one's
    (merged) outputs, with dropout of rate `dropout` between layers (train only, the
    'dropout' rng; as PyTorch, not after the last layer).

    `__call__(x [B, T, in], mask=None, carry=None, *, train, all_layers=False)` returns
    (outputs of the last layer [B, T, h or 2h], carry: a tuple of the layers' carries),
    or with `all_layers` the list of every layer's outputs (before dropout) in place of the
    last one's. With merge 'concat', layer l > 0 reads 2h features, as PyTorch's
    bidirectional stacks, so the counts match `nn.LSTM(in, h, num_layers, bidirectional=True)`.
    """

    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    merge: str = "concat"
    dropout: float = 0.0
    two_biases: bool = False
    forget_bias: float = 1.0
    learned_init: bool = False
    unroll: int = 1
    dtype: Any = jnp.float32

    def setup(self) -> None:
        check_choice("recurrent cell", self.cell, CELLS)
        if self.num_layers < 1 or self.hidden_size < 1:
            raise ConfigError(
                f"a recurrent stack needs num_layers >= 1 and hidden_size >= 1, got "
                f"{self.num_layers} and {self.hidden_size}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout rate must be in [0, 1), got {self.dropout!r}")
        self.layers = [
            RecurrentLayer(
                self.cell,
                self.hidden_size,
                bidirectional=self.bidirectional,
                merge=self.merge,
                two_biases=self.two_biases,
                forget_bias=self.forget_bias,
                learned_init=self.learned_init,
                unroll=self.unroll,
                dtype=self.dtype,
            )
            for _ in range(self.num_layers)
        ]
        self.drop = nn.Dropout(self.dropout)

    def initial_carry(self, batch_size: int) -> tuple[Carry, ...]:
        """Each layer's initial carry (learned or zeros), batch axis first on every leaf."""
        return tuple(layer.initial_carry(batch_size) for layer in self.layers)

    def final_output(self, carry: tuple[Carry, ...]) -> Array:
        """The last layer's summary of each sequence (`RecurrentLayer.final_output`)."""
        return self.layers[-1].final_output(carry[-1])

    def __call__(
        self,
        x: Array,
        mask: Array | None = None,
        carry: tuple[Carry, ...] | None = None,
        *,
        train: bool = False,
        all_layers: bool = False,
    ) -> tuple[Array | list[Array], tuple[Carry, ...]]:
        """(last layer's outputs, or every layer's with `all_layers`; the layers' carries)."""
        carries, outputs = [], []
        for index, layer in enumerate(self.layers):
            if index > 0:
                x = self.drop(x, deterministic=not train)
            x, layer_carry = layer(x, mask, None if carry is None else carry[index])
            carries.append(layer_carry)
            outputs.append(x)
        return (outputs if all_layers else x), tuple(carries)


class ScalarMix(nn.Module):
    """ELMo's learned scalar mix (Peters et al., 2018): gamma * sum_k softmax(s)_k * y_k of
    layer outputs y_k of one shape; s (`weights`, zeros at init: an even mix) and gamma
    (`gamma`, 1 at init) are learned. flax has no such module."""

    @nn.compact
    def __call__(self, layers: Sequence[Array]) -> Array:
        """The mix of `layers` (a list of arrays of one shape)."""
        weights = self.param("weights", nn.initializers.zeros_init(), (len(layers),))
        gamma = self.param("gamma", nn.initializers.ones_init(), ())
        w = jax.nn.softmax(weights)
        return gamma * sum(w[k] * y for k, y in enumerate(layers))


_LAYER = re.compile(r"layers_(\d+)/(forward|backward)")


def recurrent_layer_label(path: str, kind: str) -> str:
    """A row's label for the per-layer formula lines: 'lstm layer 0' (and ' backward')."""
    match = _LAYER.search(path)
    if not match:
        return f"{kind} {path}"
    direction = " backward" if match.group(2) == "backward" else ""
    return f"{kind} layer {match.group(1)}{direction}"


def torch_style_count(
    kind: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool
) -> int:
    """PyTorch's parameter count of `nn.RNN/LSTM/GRU(input_size, hidden_size, num_layers,
    bidirectional=...)` (two biases; layer l > 0 reads h or 2h features) from
    `cell_formula`."""
    directions = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        size = input_size if layer == 0 else directions * hidden_size
        total += directions * cell_formula(kind, size, hidden_size, True)[0]
    return total


__all__ = [
    "CELLS",
    "MERGE_MODES",
    "GRUCell",
    "LSTMCell",
    "LayerNormLSTMCell",
    "RNNCell",
    "Recurrent",
    "RecurrentCell",
    "RecurrentLayer",
    "ScalarMix",
    "StackedRNN",
    "carry_output",
    "cell_formula",
    "gate_bias_init",
    "make_cell",
    "merge_directions",
    "per_gate",
    "recurrent_layer_label",
    "torch_style_count",
]
