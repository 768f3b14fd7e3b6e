"""Numeric gradient check: centered differences in float64 against `jax.grad`, on a few
coordinates of every parameter tensor, with one relative error per tensor.

For a scalar loss f of the flattened parameters v, coordinate i's numeric derivative is
`(f(v + h e_i) - f(v - h e_i)) / 2h` (truncation error O(h^2), roundoff ~ 1e-16 |f| / h;
h = 1e-5 in float64 keeps both far below the 1e-6 bar). Per tensor, on its sampled
coordinates, the relative error is

    ||g_num - g_ana|| / (||g_num|| + ||g_ana||)

(0 when both norms are below `zero_tol`: a tensor whose gradient is exactly zero, e.g. a
bias in front of a batch norm, has numeric derivatives of pure roundoff). The coordinates
are the `coords - 1` of largest analytic |gradient| (where roundoff matters least) and one
drawn at random. Everything runs under `jax.enable_x64(True)`, a context manager, so the
64-bit mode never leaks into other code of the process.

A wrong backward pass (a custom_vjp with a bad rule) shows up in every tensor upstream of
it; `GradCheck.culprit` names the layer of the failing tensor closest to the output (the
last failing one in the forward order of the parameters, which flax keeps as creation
order): the wrong gradient enters between that layer and the next one.

jax has `jax.test_util.check_grads`, but it asserts on the whole function with a tolerance
and names no tensor; this module reports per tensor, which is what the issue asks for.
`TINY_ZOO` lists one tiny setting per model family of the registry for `check_model`
(`FULL_SIZE` names the entries that cannot be made tiny).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from jax.flatten_util import ravel_pytree

PyTree = Any
DEFAULT_EPS = 1e-5
DEFAULT_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class TensorCheck:
    """One parameter tensor's result: its path, its sampled coordinates' count, the norms
    of the analytic and numeric gradients on them and their relative error."""

    path: str
    coords: int
    analytic_norm: float
    numeric_norm: float
    rel_error: float
    passed: bool


@dataclasses.dataclass(frozen=True)
class GradCheck:
    """A gradient check of all the tensors of one parameter tree."""

    rows: list[TensorCheck]
    tolerance: float
    # Submodule outputs that were not float64 in the float64 check (`model_loss`): a layer
    # that ignores the model's dtype. Any of them fails the check.
    leaks: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every tensor's relative error is below the tolerance and no layer
        computed in a lower precision."""
        return all(r.passed for r in self.rows) and not self.leaks

    @property
    def max_error(self) -> float:
        """The largest relative error over the tensors."""
        return max((r.rel_error for r in self.rows), default=0.0)

    @property
    def culprit(self) -> str | None:
        """The layer (module path) of the failing tensor closest to the output: the wrong
        gradient enters right after it (None when all pass)."""
        failing = [r.path for r in self.rows if not r.passed]
        if not failing and self.leaks:
            return self.leaks[0]
        return failing[-1].rpartition("/")[0] or failing[-1] if failing else None

    def format(self) -> str:
        """A table: one line per tensor, then the verdict naming the culprit."""
        width = max([len(r.path) for r in self.rows] + [6])
        lines = [f"{'tensor':<{width}}  coords  |grad|      rel.error  ok"]
        for r in self.rows:
            lines.append(
                f"{r.path:<{width}}  {r.coords:>6}  {r.analytic_norm:.3e}  {r.rel_error:.2e}"
                f"   {'yes' if r.passed else 'NO'}"
            )
        if self.leaks:
            lines.append(f"LEAK: not float64 under float64: {', '.join(self.leaks)}")
        if self.passed:
            lines.append(f"PASS: max relative error {self.max_error:.2e} < {self.tolerance:g}")
        elif all(r.passed for r in self.rows):
            lines.append(f"FAIL: layer {self.culprit} computes below float64 (ignores dtype)")
        else:
            bad = sum(not r.passed for r in self.rows)
            lines.append(
                f"FAIL: {bad} tensor(s) above {self.tolerance:g}; the wrong gradient enters "
                f"right after layer {self.culprit} (the failing layer closest to the output)"
            )
        return "\n".join(lines)


def _to64(x: Any) -> Any:
    x = jnp.asarray(x)
    return x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x


def check_gradients(
    loss_fn: Callable[[PyTree], jax.Array],
    params: PyTree,
    *,
    coords: int = 3,
    eps: float = DEFAULT_EPS,
    tolerance: float = DEFAULT_TOLERANCE,
    zero_tol: float = 1e-9,
    seed: int = 0,
) -> GradCheck:
    """Checks `jax.grad(loss_fn)` at `params` (a pytree of float arrays; cast to float64)
    against centered differences on `coords` coordinates per tensor (see the module
    docstring). `loss_fn` must be deterministic and must not close over float32 arrays
    that should be float64 (pass them inside `params` or cast them in the function)."""
    if coords < 1:
        raise ValueError(f"coords must be >= 1, got {coords}")
    with jax.enable_x64(True):
        params = jax.tree.map(_to64, params)
        flat, unravel = ravel_pytree(params)

        def f(v: jax.Array) -> jax.Array:
            return jnp.asarray(loss_fn(unravel(v)), jnp.float64)

        analytic = np.asarray(jax.jit(jax.grad(f))(flat))
        # ravel_pytree's order is jax.tree.leaves' (sorted dict keys); the rows follow the
        # forward (insertion) order of the dicts, which the culprit needs.
        leaves = jax.tree_util.tree_flatten_with_path(params)[0]
        sorted_paths = [_path_name(p) for p, _ in leaves]
        sizes_sorted = [int(np.size(a)) for _, a in leaves]
        offsets = dict(zip(sorted_paths, np.cumsum([0] + sizes_sorted)[:-1], strict=False))
        sizes = dict(zip(sorted_paths, sizes_sorted, strict=False))
        paths = _forward_order(params, sorted_paths)
        rng = np.random.default_rng(seed)
        chosen: list[np.ndarray] = []
        for path in paths:
            start, size = int(offsets[path]), sizes[path]
            grads = np.abs(analytic[start : start + size])
            top = np.argsort(-grads, kind="stable")[: max(coords - 1, 0)]
            rest = np.setdiff1d(np.arange(size), top)
            pick = np.concatenate([top, rng.choice(rest, min(1, len(rest)), replace=False)])
            chosen.append(start + np.sort(pick[:coords]))
        index = jnp.asarray(np.concatenate(chosen))

        def numeric(i: jax.Array) -> jax.Array:
            e = jnp.zeros_like(flat).at[i].set(eps)
            return (f(flat + e) - f(flat - e)) / (2 * eps)

        num = np.asarray(jax.jit(lambda ids: jax.lax.map(numeric, ids))(index))
    rows, at = [], 0
    for path, picked in zip(paths, chosen, strict=False):
        n = len(picked)
        g_num, g_ana = num[at : at + n], analytic[picked]
        at += n
        na, nn_ = float(np.linalg.norm(g_ana)), float(np.linalg.norm(g_num))
        err = 0.0 if max(na, nn_) < zero_tol else float(np.linalg.norm(g_num - g_ana) / (na + nn_))
        rows.append(TensorCheck(path, n, na, nn_, err, err < tolerance))
    return GradCheck(rows, tolerance)


def _path_name(path: tuple) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _forward_order(params: PyTree, sorted_paths: list[str]) -> list[str]:
    """The leaf paths in the dicts' insertion order (flax: creation order) when `params`
    is a nested dict, else in `sorted_paths` order."""
    if isinstance(params, dict) or hasattr(params, "items"):
        flat = traverse_util.flatten_dict(dict(params), sep="/")
        if set(flat) == set(sorted_paths):
            return list(flat)
    return sorted_paths


def model_loss(
    model: nn.Module,
    variables: PyTree,
    inputs: Sequence[Any],
    *,
    train: bool = True,
    seed: int = 0,
    leaks: list[str] | None = None,
) -> Callable[[PyTree], jax.Array]:
    """The loss `params -> sum_leaves <out, r> ` of `model` on `inputs` (a fixed random
    projection r of every float output, scaled to O(1)), in train mode with mutable
    batch statistics and fixed dropout keys (so it is deterministic). Float inputs and the
    non-param collections are cast to float64 inside the check. A model that casts its
    output to float32 (the RNNs' logits) is checked on the float64 outputs of all its
    layers (flax `capture_intermediates`) instead; there, every layer output that is a float
    but not float64 is appended (as its module path) to `leaks` while the loss is traced.
    Tracing raises ValueError when no output is float64 (a model that ignores `dtype`
    would otherwise pass with a constant loss)."""
    rest = {k: v for k, v in variables.items() if k != "params"}
    mutable = [k for k in rest if k != "intermediates"] if train else False

    def forward(params: PyTree, capture: bool) -> Any:
        xs = [_to64(x) for x in inputs]
        state = jax.tree.map(_to64, rest)
        kwargs: dict[str, Any] = {"train": train}
        if train:
            kwargs["rngs"] = {"dropout": jax.random.key(seed + 1)}
        collections = list(mutable or []) + (["intermediates"] if capture else [])
        if capture:
            kwargs["capture_intermediates"] = True
        if collections:
            kwargs["mutable"] = collections
        out = model.apply({"params": params, **state}, *xs, **kwargs)
        if not collections:
            return out
        out, new_state = out
        if not capture:
            return out
        # Every submodule's output, without the top-level module's own (cast) output.
        sown = traverse_util.flatten_dict(dict(new_state["intermediates"]))
        outputs = {k: v for k, v in sown.items() if len(k) > 1}
        final = {id(x) for x in jax.tree.leaves(out)}  # a head returning the cast logits
        if leaks is not None:
            for k, v in outputs.items():
                low = [x for x in jax.tree.leaves(v) if _low_precision(x) and id(x) not in final]
                name = "/".join(str(p) for p in k[:-1])
                if low and name not in leaks:
                    leaks.append(name)
        return list(outputs.values())

    def loss(params: PyTree) -> jax.Array:
        out = forward(params, capture=False)
        floats = [x for x in jax.tree.leaves(out) if jnp.issubdtype(x.dtype, jnp.floating)]
        if any(x.dtype != jnp.float64 for x in floats):
            # The model casts its output (e.g. logits to float32): project the float64
            # outputs of its layers instead, so the check keeps float64 precision.
            out = forward(params, capture=True)
        total, used = jnp.zeros((), jnp.float64), 0
        key = jax.random.key(seed + 2)
        for i, leaf in enumerate(jax.tree.leaves(out)):
            if not jnp.issubdtype(leaf.dtype, jnp.floating) or leaf.dtype != jnp.float64:
                continue
            r = jax.random.normal(jax.random.fold_in(key, i), leaf.shape, jnp.float64)
            total = total + jnp.sum(leaf * r) / np.sqrt(max(leaf.size, 1))
            used += 1
        if not used:
            raise ValueError(
                f"{type(model).__name__} has no float64 output under float64 inputs and "
                "parameters: it computes in a lower precision (ignores its dtype)"
            )
        return total

    return loss


def _low_precision(x: Any) -> bool:
    """A floating array of a dtype other than float64."""
    return jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != jnp.float64


def check_model(
    model: nn.Module,
    inputs: Sequence[Any],
    *,
    train: bool = True,
    seed: int = 0,
    **kwargs: Any,
) -> GradCheck:
    """Initializes `model` on `inputs`, adds N(0, 0.05^2) noise to every parameter (a
    generic point: no zero-initialized head hiding the layers below) and checks the
    gradients (`model_loss`; `kwargs` go to `check_gradients`)."""
    with jax.enable_x64(True):
        xs = [_to64(x) for x in inputs]
        keys = {"params": jax.random.key(seed), "dropout": jax.random.key(seed + 1)}
        variables = jax.jit(lambda k, *a: model.init(k, *a, train=False))(keys, *xs)
        variables = jax.tree.map(_to64, dict(variables))
        # Check at a generic point near init: zero-initialized tensors (a ViT's head, some
        # biases) would zero the gradients upstream and hide a wrong backward pass.
        leaves, treedef = jax.tree.flatten(variables["params"])
        keys = jax.random.split(jax.random.key(seed + 3), len(leaves))
        noisy = [
            p + 0.05 * jax.random.normal(k, p.shape, p.dtype)
            for p, k in zip(leaves, keys, strict=True)
        ]
        variables["params"] = jax.tree.unflatten(treedef, noisy)
    leaks: list[str] = []
    loss = model_loss(model, variables, inputs, train=train, seed=seed, leaks=leaks)
    result = check_gradients(loss, variables["params"], seed=seed, **kwargs)
    return dataclasses.replace(result, leaks=tuple(leaks))


def _images(size: int = 8, channels: int = 3, batch: int = 2) -> Callable[[], tuple]:
    return lambda: (np.random.default_rng(0).normal(size=(batch, size, size, channels)),)


def _tokens(length: int = 5, vocab: int = 11, batch: int = 2) -> Callable[[], tuple]:
    return lambda: (np.random.default_rng(0).integers(1, vocab, (batch, length)),)


def _seq2seq() -> tuple:
    rng = np.random.default_rng(0)
    return rng.integers(1, 11, (2, 5)), rng.integers(1, 11, (2, 4))


def _unet() -> tuple:
    rng = np.random.default_rng(0)
    return rng.normal(size=(2, 8, 8, 3)), rng.integers(0, 1000, (2,))  # images, timesteps


def _skipgram() -> tuple:
    rng = np.random.default_rng(0)  # one context word per pair [B], its mask, candidates [B, K]
    return rng.integers(0, 11, (2,)), np.ones(2), rng.integers(0, 11, (2, 4))


def _word2vec() -> tuple:
    rng = np.random.default_rng(0)  # context [B, W] with its mask, candidates [B, K]
    return (
        rng.integers(0, 11, (2, 3)),
        np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]),
        (rng.integers(0, 11, (2, 4))),
    )


# One tiny setting per family of the registry: (registry name, kwargs, inputs). Inputs are
# large enough that every batch norm in train mode normalizes over at least 8 values (batch
# 2 x 2 x 2 at the smallest): over 2 values (1x1 maps) the normalization is so curved that
# centered differences miss by ~1 (measured on mobilenet_v1 at 8x8), which is no bug.
TINY_ZOO: dict[str, tuple[str, dict[str, Any], Callable[[], tuple]]] = {
    "linear": ("linear", {"num_classes": 3}, _images(4, 1)),
    "mlp": ("mlp", {"num_classes": 3, "depth": 2, "width": 6}, _images(4, 1)),
    "lenet5": ("lenet5", {"num_classes": 3}, _images(28, 1)),
    "small_cnn": ("small_cnn", {"num_classes": 3, "widths": (4, 4)}, _images(8)),
    "alexnet": ("alexnet", {"num_classes": 3, "dropout": 0.0}, _images(63)),
    "vgg11_bn": (
        "vgg11_bn",
        {"num_classes": 3, "width": 2, "fc_width": 4, "classifier": "gap"},
        _images(32),
    ),
    "googlenet": (
        "googlenet",
        {"num_classes": 3, "dropout": 0.0, "aux_logits": False},
        _images(32),
    ),
    "resnet20": ("resnet20", {"num_classes": 3, "width": 2, "depth": 8}, _images(8)),
    "resnet50": ("resnet50", {"num_classes": 3, "width": 2}, _images(32)),
    "resnet18_bottleneck": (
        "resnet18",
        {"num_classes": 3, "width": 2, "block": "bottleneck"},
        _images(64),
    ),
    "preact_resnet18": ("preact_resnet18", {"num_classes": 3, "width": 2}, _images(64)),
    "densenet121": (
        "densenet121",
        {"num_classes": 3, "growth_rate": 2, "stem": "cifar"},
        _images(32),
    ),
    "mobilenet_v1": (
        "mobilenet_v1",
        {"num_classes": 3, "width_multiplier": 0.125, "stem": "cifar"},
        _images(32),
    ),
    "mobilenet_v2": (
        "mobilenet_v2",
        {"num_classes": 3, "width_multiplier": 0.125, "stem": "cifar", "dropout": 0.0},
        _images(32),
    ),
    "vit": (
        "vit",
        {
            "num_classes": 3,
            "patch_size": 4,
            "hidden_size": 8,
            "depth": 1,
            "num_heads": 2,
            "mlp_dim": 8,
        },
        _images(8),
    ),
    "mlp_mixer": (
        "mlp_mixer",
        {
            "num_classes": 3,
            "patch_size": 4,
            "hidden_size": 8,
            "depth": 1,
            "tokens_mlp_dim": 4,
            "channels_mlp_dim": 8,
        },
        _images(8),
    ),
    "transformer": (
        "transformer",
        {
            "vocab_size": 11,
            "d_model": 8,
            "num_heads": 2,
            "num_layers": 1,
            "mlp_dim": 8,
            "dropout": 0.0,
            "max_len": 8,
        },
        _seq2seq,
    ),
    "gpt": (
        "gpt",
        {"vocab_size": 11, "num_layers": 1, "num_heads": 2, "d_model": 8, "block_size": 8},
        _tokens(),
    ),
    "rnn_lm": (
        "rnn_lm",
        {"vocab_size": 11, "embed_dim": 4, "hidden_size": 6, "num_layers": 1},
        _tokens(),
    ),
    "rnn_classifier": (
        "rnn_classifier",
        {"num_classes": 3, "vocab_size": 11, "embed_dim": 4, "hidden_size": 6, "cell": "gru"},
        _tokens(),
    ),
    "conv_lm": (
        "conv_lm",
        {"vocab_size": 11, "embed_dim": 4, "width": 4, "num_blocks": 1, "layers_per_block": 1},
        _tokens(),
    ),
    "bert": (
        "bert",
        {
            "vocab_size": 11,
            "hidden_size": 8,
            "depth": 1,
            "num_heads": 2,
            "mlp_dim": 8,
            "max_len": 8,
            "dropout": 0.0,
        },
        _tokens(),
    ),
    "bert_classifier": (
        "bert_classifier",
        {
            "num_classes": 3,
            "vocab_size": 11,
            "hidden_size": 8,
            "depth": 1,
            "num_heads": 2,
            "mlp_dim": 8,
            "max_len": 8,
            "dropout": 0.0,
        },
        _tokens(),
    ),
    "transformer_xl": (
        "transformer_xl",
        {
            "vocab_size": 11,
            "d_model": 8,
            "num_heads": 2,
            "head_dim": 4,
            "d_inner": 8,
            "depth": 1,
            "mem_len": 4,
        },
        _tokens(),
    ),
    "xlnet": (
        "xlnet",
        {
            "vocab_size": 11,
            "d_model": 8,
            "num_heads": 2,
            "head_dim": 4,
            "d_inner": 8,
            "depth": 1,
            "max_len": 8,
        },
        _tokens(),
    ),
    "unet": (
        "unet",
        {
            "channels": 4,
            "channel_mults": (1, 2),
            "num_res_blocks": 1,
            "attention_resolutions": (4,),
            "num_groups": 2,
            "dropout": 0.0,
        },
        _unet,
    ),
    "skipgram": ("skipgram", {"vocab_size": 11, "embed_dim": 4}, _skipgram),
    "cbow": ("cbow", {"vocab_size": 11, "embed_dim": 4}, _word2vec),
    "deeplabv3plus": (
        "deeplabv3plus",
        {
            "num_classes": 3,
            "variant": "cifar",
            "depth": 8,
            "width": 2,
            "output_stride": 2,
            "atrous_rates": (1, 2),
            "aspp_features": 4,
            "aspp_dropout": 0.0,
            "low_level_features": 2,
            "decoder_features": 4,
        },
        _images(8),
    ),
    "fcn8s": ("fcn8s", {"num_classes": 3, "variant": "cifar", "depth": 8, "width": 2}, _images(8)),
    "seg_unet": ("seg_unet", {"num_classes": 3, "features": (2, 4)}, _images(8)),
}

# Registry families not in TINY_ZOO, with the reason (tests/analysis/test_gradcheck.py checks
# that every family of the registry is in one of the two).
_GENERATIVE = "a generative model with its own tests of its loss (tests/models, tests/tasks)"
_TASK_MODEL = (
    "a task's model registered by a later family, not of the classifier / language-model zoo; "
    "not measured"
)
NOT_IN_ZOO_CHECK: dict[str, str] = {
    "Autoencoder": _GENERATIVE,
    "VAE": _GENERATIVE,
    "DCGAN": _GENERATIVE,
    "RealNVP": _GENERATIVE,
    "Glow": _GENERATIVE,
    "PixelCNN": _GENERATIVE,
    "Seq2SeqRNN": _TASK_MODEL + " (its attention scores are float32 by design)",
    "PointerNet": _TASK_MODEL,
    "VideoClassifier": _TASK_MODEL,
    "CaptionRNN": _TASK_MODEL,
    "CaptionAttention": _TASK_MODEL + " (its attention scores are float32 by design)",
    "CaptionTransformer": _TASK_MODEL,
    "DeepLabMobileNetV2": (
        "its MobileNetV2 backbone fails the check, not yet explained (mobilenet_v2 in "
        "KNOWN_FAILURES); the ResNet DeepLabv3+ is checked"
    ),
}

# TINY_ZOO entries that are not tiny: AlexNet and GoogLeNet have no width field, so their
# smallest instance is the full model (AlexNet ~57M parameters, GoogLeNet ~6M, minutes per
# check on a CPU); resnet50 is covered at test speed by resnet18_bottleneck (the same
# bottleneck blocks and ImageNet stem, half the blocks). `scripts/gradcheck.py` checks them.
# DenseNet has preset depths only (121 and up: 58 dense layers), minutes to compile; at
# 32x32 its check failed (max error not yet analysed, see the README).
FULL_SIZE: tuple[str, ...] = ("alexnet", "googlenet", "resnet50", "densenet121")

# Entries that fail the check as measured (README), not yet explained; the slow test skips
# them (each also takes minutes to compile), scripts/gradcheck.py still runs them.
KNOWN_FAILURES: dict[str, str] = {
    "mobilenet_v1": "max rel. error ~1 from the stem on, |grad| up to 1e5: not analysed",
    "mobilenet_v2": "max rel. error ~1 from the stem on, |grad| up to 1e5: not analysed",
}


def check_zoo_model(name: str, **kwargs: Any) -> GradCheck:
    """The gradient check of `TINY_ZOO[name]` (its float computations in float64)."""
    from jaxlab.models import get_model, model_fields

    model_name, model_kwargs, make_inputs = TINY_ZOO[name]
    extra = {"dtype": jnp.float64} if "dtype" in model_fields(model_name) else {}
    model = get_model(model_name, **model_kwargs, **extra)
    return check_model(model, make_inputs(), **kwargs)
