"""Train-step throughput of jaxlab against the same models in PyTorch eager (issue 12).

For each model of `SPECS` both sides train the same architecture at the same batch size with
SGD with momentum 0.9 (optax `sgd(momentum=0.9)` and `torch.optim.SGD(momentum=0.9)`, the
same update: v = 0.9 v + g, p -= lr v) on the *same host numpy batches*: a few synthetic
batches drawn once, before timing, cycled by both sides; torch gets them converted once with
`torch.from_numpy` (images NHWC -> NCHW, labels and targets int64). They run in one process,
alternating segments of `steps` steps after `warmup` untimed steps per side; the rate of a
side is the median over its segments, and the ratio is jaxlab / torch.

The jaxlab side:
- image models (`small_cnn`, `resnet20`, `mlp`): the loop's step, `jaxlab.analysis.bench`'s
  `LoopDriver` (`Trainer.train_one_step` plus the loop's per-step host work), on an
  in-memory dataset of random images registered for the run (`register_synthetic_images`);
- language models (`lstm_lm`, `gpt`): this worktree has no language-model task yet, so the
  jaxlab side is the minimal `jax.jit` step of `jaxlab.analysis.bench` written for token
  targets (mean softmax cross entropy over all positions, donated buffers). `gpt` is
  jaxlab's registered model; `lstm_lm` is `FlaxLSTMLM` below, a stand-in with the defaults
  of the rnn helper's `rnn_lm` (embedding 128, 2 LSTM layers of 256, one bias per gate,
  untied head) until that model is merged.

The torch mirrors (`torch_model`) copy jaxlab's layer structure: convolution padding (3x3,
padding 1), batch norm after bias-free convolutions, ceil-mode 2x2 pooling (flax 'SAME'),
option-A shortcuts (stride-2 subsampling, channels zero-padded half on each side), global
average pooling heads, the GPT's pre-LN blocks, exact GELU and tied head (attention through
`torch.nn.functional.scaled_dot_product_attention`, what a PyTorch user would write). The MLP
gets the NCHW batches too: with one channel they flatten in the same order as jaxlab's NHWC. Their
trainable parameter counts are checked against jaxlab's (`ParamCountMismatch`). PyTorch's LSTM
has two bias vectors per layer where flax's cell has one: the mirror keeps `bias_hh` at zero
and frozen, so both train the same number of parameters.

`small_cnn` differs from the issue's "conv32-pool-conv64-pool-dense128": jaxlab's SmallCNN
has batch norm after each conv and a global-average-pooling head (no dense-128 layer); the
bench uses it with `widths=(32, 64)` and one conv per block, the nearest jaxlab model.

PyTorch is an optional dependency of this benchmark only: `require_torch` imports it and
raises `TorchMissing` (with the install command) when it is absent. Nothing else in jaxlab
imports torch, and this module imports it only inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxlab.config import ConfigError, check_positive

INSTALL_COMMAND = ".venv/bin/pip install torch==2.13.0"
LEARNING_RATE = 0.01
MOMENTUM = 0.9
NUM_CLASSES = 10
CHAR_VOCAB = 68  # 65 characters of tiny shakespeare plus PAD, BOS, EOS


@dataclasses.dataclass(frozen=True)
class BenchSpec:
    """One benchmarked model: its kind ('image' or 'lm'), batch size, example shape (HWC
    image or (sequence length,)), default timed steps per segment, and what it is."""

    name: str
    kind: str
    batch_size: int
    shape: tuple[int, ...]
    steps: int
    description: str

    @property
    def unit(self) -> str:
        """The throughput unit of the table."""
        return "img/s" if self.kind == "image" else "tokens/s"

    def items_per_step(self, batch_size: int | None = None) -> int:
        """Images or tokens in one step at `batch_size` (default: the spec's)."""
        batch = batch_size or self.batch_size
        return batch if self.kind == "image" else batch * self.shape[0]


SPECS: dict[str, BenchSpec] = {
    s.name: s
    for s in (
        BenchSpec(
            "small_cnn",
            "image",
            128,
            (28, 28, 1),
            50,
            "small_cnn widths (32, 64), 1 conv-BN-ReLU per block, 2x2 max pool, GAP head",
        ),
        BenchSpec("resnet20", "image", 128, (32, 32, 3), 10, "resnet20 (CIFAR, option-A)"),
        BenchSpec("mlp", "image", 128, (28, 28, 1), 200, "mlp 784-256-256-10, ReLU"),
        BenchSpec(
            "lstm_lm",
            "lm",
            32,
            (128,),
            10,
            f"2-layer LSTM char LM, embed 128, hidden 256, vocab {CHAR_VOCAB}",
        ),
        BenchSpec(
            "gpt", "lm", 64, (64,), 10, f"gpt 4 layers, d 128, 4 heads, ctx 64, vocab {CHAR_VOCAB}"
        ),
    )
}
MODELS = tuple(SPECS)


class TorchMissing(RuntimeError):
    """PyTorch is not installed; the message says how to install it."""


class ParamCountMismatch(RuntimeError):
    """A torch mirror does not have as many trainable parameters as the jaxlab model."""


def check_models(names: Sequence[str]) -> list[str]:
    """Returns `names` as a list, or raises ConfigError (one line, the valid names) for an
    empty list or an unknown name."""
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ConfigError(f"no model given; valid choices: {', '.join(MODELS)}")
    for name in names:
        if name not in SPECS:
            raise ConfigError(
                f"unknown model {name!r} for --vs torch; valid choices: {', '.join(MODELS)}"
            )
    return names


def require_torch() -> Any:
    """Imports and returns the `torch` module; TorchMissing with the install command if it
    cannot be imported."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise TorchMissing(
            f"--vs torch needs PyTorch, which is not installed; install its CPU wheel with "
            f"`{INSTALL_COMMAND}`"
        ) from None


def nhwc_to_nchw(images: np.ndarray) -> np.ndarray:
    """A C-contiguous NCHW copy of NHWC `images` (what torch convolutions take)."""
    if images.ndim != 4:
        raise ValueError(f"expected NHWC images of rank 4, got shape {images.shape}")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def check_param_counts(name: str, jaxlab_count: int, torch_count: int) -> None:
    """Raises ParamCountMismatch unless the two trainable-parameter counts are equal."""
    if jaxlab_count != torch_count:
        raise ParamCountMismatch(
            f"{name}: the torch mirror has {torch_count:,} trainable parameters, jaxlab's "
            f"model {jaxlab_count:,}; the two sides would not train the same network"
        )


def count_params(params: Any) -> int:
    """The number of scalars in a parameter pytree."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


# ---- data ---------------------------------------------------------------------------------


def synthetic_batches(spec: BenchSpec, batch_size: int, num_batches: int, seed: int = 0) -> list:
    """`num_batches` host batches of random data: images 'image' float32 NHWC and 'label'
    int32, or tokens 'inputs' and 'targets' int32 [B, T] (targets = inputs shifted by one)."""
    rng = np.random.default_rng(seed)
    if spec.kind == "image":
        return [
            {
                "image": rng.standard_normal((batch_size, *spec.shape), np.float32),
                "label": rng.integers(0, NUM_CLASSES, batch_size).astype(np.int32),
            }
            for _ in range(num_batches)
        ]
    length = spec.shape[0]
    batches = []
    for _ in range(num_batches):
        stream = rng.integers(3, CHAR_VOCAB, (batch_size, length + 1)).astype(np.int32)
        batches.append({"inputs": stream[:, :-1].copy(), "targets": stream[:, 1:].copy()})
    return batches


def to_torch_batches(batches: list[dict[str, np.ndarray]]) -> list[tuple[Any, Any]]:
    """The host batches as torch (input, target) pairs, converted once with
    `torch.from_numpy`: images to NCHW float32, labels and token targets to int64."""
    torch = require_torch()
    out = []
    for b in batches:
        if "image" in b:
            x = torch.from_numpy(nhwc_to_nchw(b["image"]))
            y = torch.from_numpy(b["label"].astype(np.int64))
        else:
            x = torch.from_numpy(b["inputs"].astype(np.int64))
            y = torch.from_numpy(b["targets"].astype(np.int64))
        out.append((x, y))
    return out


def register_synthetic_images(shape: tuple[int, ...], num_examples: int) -> str:
    """Registers (replacing any earlier one) an in-memory dataset of `num_examples` random
    images of `shape` (HWC) and 10 classes for train and test; returns its name."""
    from jaxlab import data
    from jaxlab.data.features import Feature
    from jaxlab.data.generated import ArraySource

    examples = synthetic_batches(
        BenchSpec("images", "image", num_examples, tuple(shape), 1, ""), num_examples, 1
    )[0]
    for value in examples.values():
        value.setflags(write=False)

    class SyntheticImages(ArraySource):
        features = {
            "image": Feature(tuple(shape), "float32", "image"),
            "label": Feature((), "int32", "label"),
        }
        num_classes = NUM_CLASSES

        def examples(self, split: str) -> dict[str, np.ndarray]:
            return examples

    name = "torch_bench_" + "x".join(map(str, shape))
    data.register_dataset(name, SyntheticImages(), replace=True)
    return name


# ---- jaxlab side ----------------------------------------------------------------------------


class FlaxLSTMLM(nn.Module):
    """Stand-in for `rnn_lm` (cell 'lstm') until it is merged: embedding, `num_layers`
    LSTM layers (flax's `OptimizedLSTMCell` scanned by `nn.RNN`, one bias per gate) and an
    untied dense head. Returns logits f32[B, T, V]."""

    vocab_size: int = CHAR_VOCAB
    embed_dim: int = 128
    hidden_size: int = 256
    num_layers: int = 2

    @nn.compact
    def __call__(self, tokens: jax.Array, *, train: bool) -> jax.Array:
        del train
        x = nn.Embed(self.vocab_size, self.embed_dim)(tokens)
        for i in range(self.num_layers):
            x = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size), name=f"lstm{i}")(x)
        return nn.Dense(self.vocab_size, name="head")(x).astype(jnp.float32)


def image_config(spec: BenchSpec, batch_size: int, log_every: int) -> ml_collections.ConfigDict:
    """A jaxlab config for an image spec: its model on a registered synthetic dataset of
    4 batches, SGD momentum 0.9 at a constant rate, no weight decay or clipping."""
    from jaxlab.config import default_config, finish_config

    c = default_config()
    c.dataset.name = register_synthetic_images(spec.shape, 4 * batch_size)
    c.model.name = spec.name
    if spec.name == "small_cnn":
        c.model.widths = (32, 64)
        c.model.convs_per_block = 1
    c.optimizer.name = "momentum"
    c.optimizer.momentum = MOMENTUM
    c.optimizer.learning_rate = LEARNING_RATE
    c.optimizer.weight_decay = 0.0
    c.schedule.name = "constant"
    c.batch_size = batch_size
    c.eval_batch_size = batch_size
    c.log_every_steps = log_every
    return finish_config(c)


def lm_model(spec: BenchSpec) -> nn.Module:
    """The jaxlab language model of an 'lm' spec."""
    if spec.name == "gpt":
        from jaxlab.models import get_model

        return get_model("gpt", vocab_size=CHAR_VOCAB, block_size=spec.shape[0])
    return FlaxLSTMLM()


class MinimalLMDriver:
    """The minimal jit step of a language model: mean token cross entropy, optax SGD with
    momentum, donated parameters and optimizer state."""

    def __init__(self, spec: BenchSpec, batches: Iterator[dict[str, np.ndarray]]) -> None:
        model = lm_model(spec)
        tx = optax.sgd(LEARNING_RATE, momentum=MOMENTUM)
        tokens = jnp.zeros((1, spec.shape[0]), jnp.int32)
        params = jax.jit(lambda: model.init(jax.random.key(0), tokens, train=False))()["params"]
        self.num_params = count_params(params)
        gpt = spec.name == "gpt"

        def step(params, opt_state, inputs, targets):
            def loss_fn(p):
                out = model.apply({"params": p}, inputs, train=True)
                logits = out[0] if gpt else out
                return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        self.step_fn = jax.jit(step, donate_argnums=(0, 1))
        self.carry = (params, jax.jit(tx.init)(params))
        self.batches = batches
        self.loss: jax.Array | None = None

    def run_steps(self, n: int) -> None:
        """Runs `n` steps, then waits for the device."""
        params, opt_state = self.carry
        loss = self.loss
        for _ in range(n):
            b = next(self.batches)
            params, opt_state, loss = self.step_fn(params, opt_state, b["inputs"], b["targets"])
        self.carry = jax.block_until_ready((params, opt_state))
        self.loss = loss

    def close(self) -> None:
        """Nothing to release."""


# ---- torch side -----------------------------------------------------------------------------


def torch_model(spec: BenchSpec) -> Any:
    """The torch mirror of `spec`'s jaxlab model (see the module docstring)."""
    torch = require_torch()
    tnn = torch.nn
    F = torch.nn.functional

    def conv_bn(cin: int, cout: int, stride: int = 1) -> list:
        return [
            tnn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            tnn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),
        ]

    if spec.name == "small_cnn":
        layers, cin = [], spec.shape[-1]
        for width in (32, 64):
            layers += [*conv_bn(cin, width), tnn.ReLU(), tnn.MaxPool2d(2, ceil_mode=True)]
            cin = width
        return tnn.Sequential(
            *layers, tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(cin, NUM_CLASSES)
        )
    if spec.name == "mlp":
        d = math.prod(spec.shape)
        return tnn.Sequential(
            tnn.Flatten(),
            tnn.Linear(d, 256),
            tnn.ReLU(),
            tnn.Linear(256, 256),
            tnn.ReLU(),
            tnn.Linear(256, NUM_CLASSES),
        )
    if spec.name == "resnet20":

        class Block(tnn.Module):
            def __init__(self, cin: int, cout: int, stride: int) -> None:
                super().__init__()
                self.c1, self.b1 = conv_bn(cin, cout, stride)
                self.c2, self.b2 = conv_bn(cout, cout)
                self.stride, self.extra = stride, cout - cin

            def forward(self, x):
                y = F.relu(self.b1(self.c1(x)))
                y = self.b2(self.c2(y))
                if self.stride != 1 or self.extra:
                    x = x[:, :, :: self.stride, :: self.stride]
                    x = F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
                return F.relu(y + x)

        blocks, cin = [], 16
        for i, width in enumerate((16, 32, 64)):
            for j in range(3):
                blocks.append(Block(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width
        return tnn.Sequential(
            *conv_bn(spec.shape[-1], 16),
            tnn.ReLU(),
            *blocks,
            tnn.AdaptiveAvgPool2d(1),
            tnn.Flatten(),
            tnn.Linear(64, NUM_CLASSES),
        )
    if spec.name == "lstm_lm":

        class LSTMLM(tnn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = tnn.Embedding(CHAR_VOCAB, 128)
                self.lstm = tnn.LSTM(128, 256, num_layers=2, batch_first=True)
                for k in range(2):  # flax's cell has one bias per gate: keep the second at 0
                    bias = getattr(self.lstm, f"bias_hh_l{k}")
                    with torch.no_grad():
                        bias.zero_()
                    bias.requires_grad_(False)
                self.head = tnn.Linear(256, CHAR_VOCAB)

            def forward(self, tokens):
                return self.head(self.lstm(self.embed(tokens))[0])

        return LSTMLM()
    if spec.name == "gpt":
        d, heads, ctx, layers = 128, 4, spec.shape[0], 4

        class GPTBlock(tnn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.ln1, self.ln2 = tnn.LayerNorm(d, eps=1e-5), tnn.LayerNorm(d, eps=1e-5)
                self.qkv, self.proj = tnn.Linear(d, 3 * d), tnn.Linear(d, d)
                self.fc1, self.fc2 = tnn.Linear(d, 4 * d), tnn.Linear(4 * d, d)

            def forward(self, x):
                b, t, _ = x.shape
                q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, heads, d // heads).unbind(2)
                y = F.scaled_dot_product_attention(
                    q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
                )
                x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
                return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

        class GPT(tnn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.wte, self.wpe = tnn.Embedding(CHAR_VOCAB, d), tnn.Embedding(ctx, d)
                self.blocks = tnn.ModuleList(GPTBlock() for _ in range(layers))
                self.ln_f = tnn.LayerNorm(d, eps=1e-5)

            def forward(self, tokens):
                x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
                for block in self.blocks:
                    x = block(x)
                return self.ln_f(x) @ self.wte.weight.T  # tied head, no bias

        return GPT()
    raise ConfigError(f"unknown model {spec.name!r}; valid choices: {', '.join(MODELS)}")


def torch_param_count(model: Any) -> int:
    """Trainable parameters of a torch module."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


class TorchDriver:
    """PyTorch eager training: zero_grad, forward, cross entropy (mean over examples or
    tokens), backward, SGD step, cycling through pre-converted batches."""

    def __init__(self, spec: BenchSpec, batches: list[tuple[Any, Any]]) -> None:
        torch = require_torch()
        torch.manual_seed(0)
        self.model = torch_model(spec).train()
        self.num_params = torch_param_count(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(params, lr=LEARNING_RATE, momentum=MOMENTUM)
        self.loss_fn = torch.nn.functional.cross_entropy
        self.batches = _cycle(batches)
        self.loss: Any = None

    def run_steps(self, n: int) -> None:
        """Runs `n` steps (eager on CPU: done when this returns)."""
        for _ in range(n):
            x, y = next(self.batches)
            self.opt.zero_grad(set_to_none=True)
            logits = self.model(x)
            loss = self.loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            loss.backward()
            self.opt.step()
        self.loss = float(loss.detach()) if n else self.loss

    def close(self) -> None:
        """Nothing to release."""


def _cycle(items: list) -> Iterator:
    while True:
        yield from items


# ---- the benchmark ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TorchBenchResult:
    """Steps/s of jaxlab and of torch for one model (medians over `repeats` segments)."""

    model: str
    unit: str
    batch_size: int
    items_per_step: int
    jaxlab_side: str  # 'loop' (Trainer step) or 'minimal' (hand-written jit step)
    jaxlab_steps_per_s: float
    torch_steps_per_s: float
    jaxlab_runs: tuple[float, ...]
    torch_runs: tuple[float, ...]
    jaxlab_params: int
    torch_params: int
    steps: int
    warmup: int
    torch_threads: int

    @property
    def ratio(self) -> float:
        """jaxlab throughput as a multiple of torch's."""
        return self.jaxlab_steps_per_s / self.torch_steps_per_s

    @property
    def jaxlab_rate(self) -> float:
        """jaxlab images or tokens per second."""
        return self.jaxlab_steps_per_s * self.items_per_step

    @property
    def torch_rate(self) -> float:
        """torch images or tokens per second."""
        return self.torch_steps_per_s * self.items_per_step

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record with the rates and the ratio."""
        return {
            **dataclasses.asdict(self),
            "jaxlab_runs": list(self.jaxlab_runs),
            "torch_runs": list(self.torch_runs),
            "jaxlab_rate": self.jaxlab_rate,
            "torch_rate": self.torch_rate,
            "ratio": self.ratio,
        }


def alternate(
    first: Callable[[int], None],
    second: Callable[[int], None],
    steps: int,
    repeats: int,
) -> tuple[list[float], list[float]]:
    """Steps/s of `repeats` segments of `steps` steps per side, alternating which side goes
    first (against drifting load)."""

    def timed(run: Callable[[int], None]) -> float:
        t0 = time.perf_counter()
        run(steps)
        return steps / (time.perf_counter() - t0)

    a, b = [], []
    for r in range(repeats):
        if r % 2 == 0:
            a.append(timed(first))
            b.append(timed(second))
        else:
            b.append(timed(second))
            a.append(timed(first))
    return a, b


def set_torch_threads(threads: int | None = None) -> int:
    """Sets torch's intra-op threads (default: the machine's core count) and returns it."""
    torch = require_torch()
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def benchmark_vs_torch(
    name: str,
    *,
    batch_size: int | None = None,
    steps: int | None = None,
    repeats: int = 3,
    warmup: int = 3,
    threads: int | None = None,
) -> TorchBenchResult:
    """Times jaxlab's and torch's training step for the model `name` of `SPECS` (module
    docstring). Defaults: the spec's batch size and steps, torch threads = core count.

    Image models warm up for at least `default_warmup` of the loop (5 steps). Raises
    ConfigError for a bad name or count, TorchMissing without torch and
    ParamCountMismatch when the torch mirror's size differs from jaxlab's model.
    """
    (name,) = check_models([name])
    spec = SPECS[name]
    batch_size = batch_size or spec.batch_size
    steps = steps or spec.steps
    check_positive("batch_size", batch_size, integer=True)
    check_positive("steps", steps, integer=True)
    check_positive("repeats", repeats, integer=True)
    check_positive("warmup", warmup, allow_zero=True, integer=True)
    threads = set_torch_threads(threads)
    if spec.kind == "image":
        from jaxlab import data
        from jaxlab.analysis.bench import LoopDriver, default_warmup
        from jaxlab.train import build_experiment

        # The loop logs once per epoch of the 4 synthetic batches, as the digits config does;
        # warm-up crosses the first log and epoch boundaries (their functions compile there).
        config = image_config(spec, batch_size, log_every=4)
        config.num_epochs, config.num_train_steps = -1, warmup + steps * repeats
        warmup = max(warmup, default_warmup(build_experiment(config)))
        config.num_train_steps = warmup + steps * repeats
        exp = build_experiment(config)
        stream = data.create_train_iterator(exp.config, exp.info)
        host = [next(stream) for _ in range(exp.steps_per_epoch)]
        torch_driver = TorchDriver(spec, to_torch_batches(host))
        jax_driver: Any = LoopDriver(exp, config.num_train_steps, _cycle(host))
        jax_params = count_params(jax_driver.trainer.state.task.params)
        side = "loop"
    else:
        host = synthetic_batches(spec, batch_size, 4)
        torch_driver = TorchDriver(spec, to_torch_batches(host))
        jax_driver = MinimalLMDriver(spec, _cycle(host))
        jax_params = jax_driver.num_params
        side = "minimal"
    try:
        check_param_counts(name, jax_params, torch_driver.num_params)
        if warmup:
            jax_driver.run_steps(warmup)
            torch_driver.run_steps(warmup)
        jax_runs, torch_runs = alternate(
            jax_driver.run_steps, torch_driver.run_steps, steps, repeats
        )
    finally:
        jax_driver.close()
    return TorchBenchResult(
        model=name,
        unit=spec.unit,
        batch_size=batch_size,
        items_per_step=spec.items_per_step(batch_size),
        jaxlab_side=side,
        jaxlab_steps_per_s=statistics.median(jax_runs),
        torch_steps_per_s=statistics.median(torch_runs),
        jaxlab_runs=tuple(jax_runs),
        torch_runs=tuple(torch_runs),
        jaxlab_params=jax_params,
        torch_params=torch_driver.num_params,
        steps=steps,
        warmup=warmup,
        torch_threads=threads,
    )


def format_torch_table(results: Sequence[TorchBenchResult]) -> str:
    """The results as an aligned text table: rates in img/s or tokens/s and jaxlab/torch."""
    header = ("model", "batch", "params", "jaxlab side", "jaxlab", "torch", "unit", "ratio")
    rows = [
        (
            r.model,
            str(r.batch_size),
            f"{r.jaxlab_params:,}",
            r.jaxlab_side,
            f"{r.jaxlab_rate:,.0f}",
            f"{r.torch_rate:,.0f}",
            r.unit,
            f"{r.ratio:.2f}x",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )
