"""Activation and gradient statistics per layer at initialization (the "good init" check):
for every Dense / Conv layer (any module with a 'kernel'), the mean and std of its output
on a batch, the fraction of its units that are dead after a ReLU (output <= 0 for every
example of the batch), and the std of the loss gradient with respect to its output and to
its kernel.

Outputs come from flax's `capture_intermediates` (a filter keeps the kernel layers); the
gradients with respect to them from `nn.Module.perturb`-style zero perturbations added
through `nn.intercept_methods` (the model needs no change): the gradient of the loss with
respect to a zero added to a layer's output is the gradient with respect to that output.
A healthy init keeps the activation std roughly constant from layer to layer (neither
vanishing towards 0 nor exploding) and few dead units; the plot shows it per layer.
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

PyTree = Any


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """One layer's statistics at init."""

    name: str
    act_mean: float
    act_std: float
    dead_fraction: float
    grad_std: float  # std of d loss / d output
    kernel_grad_std: float


def _is_kernel_layer(module: nn.Module) -> bool:
    return isinstance(module, (nn.Dense, nn.Conv, nn.ConvTranspose, nn.DenseGeneral))


def layer_statistics(
    model: nn.Module,
    variables: PyTree,
    x: jax.Array,
    labels: jax.Array | None = None,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> list[LayerStats]:
    """Per kernel layer (Dense/Conv), in call order: output mean/std, dead-ReLU fraction
    and gradient stds of `loss_fn(model(x), labels)` (softmax cross entropy with `labels`,
    random ones by default) in eval mode."""
    _, state = model.apply(
        variables,
        x,
        train=False,
        capture_intermediates=lambda m, name: _is_kernel_layer(m) and name == "__call__",
        mutable=["intermediates"],
    )
    # flatten_dict keeps the dicts' insertion order: the order of the calls.
    captured = traverse_util.flatten_dict(dict(state["intermediates"]))
    flat = {"/".join(k[:-1]): v[0] for k, v in captured.items()}
    names = list(flat)
    if labels is None:
        out = model.apply(variables, x, train=False)
        labels = jax.random.randint(jax.random.key(0), out.shape[:-1], 0, out.shape[-1])
    if loss_fn is None:

        def loss_fn(logits: jax.Array, y: jax.Array) -> jax.Array:
            logp = jax.nn.log_softmax(logits)
            return -jnp.mean(jnp.take_along_axis(logp, y[..., None], -1))

    def loss_of(params: PyTree, deltas: dict[str, jax.Array]) -> jax.Array:
        def add(next_fun, args, kwargs, context):
            y = next_fun(*args, **kwargs)
            name = "/".join(context.module.path)
            if context.method_name == "__call__" and name in deltas:
                y = y + deltas[name]
            return y

        with nn.intercept_methods(add):
            logits = model.apply({**variables, "params": params}, x, train=False)
        return loss_fn(logits, labels)

    deltas = {n: jnp.zeros_like(flat[n]) for n in names}
    g_params, g_out = jax.jit(jax.grad(loss_of, argnums=(0, 1)))(variables["params"], deltas)
    rows = []
    for n in names:
        a = np.asarray(flat[n], np.float64)
        dead = float(np.mean(np.all(a.reshape(-1, a.shape[-1]) <= 0, axis=0)))
        node = g_params
        for part in n.split("/"):
            node = node[part]
        rows.append(
            LayerStats(
                n,
                float(a.mean()),
                float(a.std()),
                dead,
                float(np.std(np.asarray(g_out[n]))),
                float(np.std(np.asarray(node["kernel"]))),
            )
        )
    return rows


def format_stats(rows: Sequence[LayerStats]) -> str:
    """A table of the statistics, one line per layer."""
    width = max([len(r.name) for r in rows] + [5])
    lines = [f"{'layer':<{width}}  act.mean   act.std   dead   grad.std   kernel.grad.std"]
    for r in rows:
        lines.append(
            f"{r.name:<{width}}  {r.act_mean:+.4f}  {r.act_std:8.4f}  {r.dead_fraction:5.1%}  "
            f"{r.grad_std:.3e}  {r.kernel_grad_std:.3e}"
        )
    return "\n".join(lines)


def plot_stats(rows: Sequence[LayerStats], path: str, title: str = "") -> None:
    """Three panels per layer index: activation std (with mean), dead fraction, gradient
    std (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = np.arange(len(rows))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    axes[0].plot(idx, [r.act_std for r in rows], "o-", label="std")
    axes[0].plot(idx, [r.act_mean for r in rows], "s--", label="mean")
    axes[0].set_title("activations")
    axes[0].legend(fontsize=8)
    axes[1].bar(idx, [r.dead_fraction for r in rows])
    axes[1].set_title("dead-ReLU fraction")
    axes[1].set_ylim(0, 1)
    axes[2].semilogy(idx, [r.grad_std for r in rows], "o-", label="d loss / d output")
    axes[2].semilogy(idx, [r.kernel_grad_std for r in rows], "s--", label="d loss / d kernel")
    axes[2].set_title("gradient std")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("layer")
        ax.set_xticks(idx)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
