"""The interpretability methods of `scripts/interpret.py`, each a function of a `Context`
that draws its figure (through the context's `FigureSink`) and returns its numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.analysis.interpret import attribution, checks, visualize
from jaxlab.analysis.interpret.figures import FigureSink, grid_figure, rescale, to_display
from jaxlab.analysis.interpret.probe import Probe, first_layer_filters
from jaxlab.config import ConfigError


@dataclasses.dataclass
class Options:
    """The methods' settings (scripts/interpret.py's flags). Budgets, noise levels and fill
    values are on the [0, 1] pixel scale."""

    num_images: int = 8  # images shown per figure
    seed: int = 0
    saliency_mode: str = "abs"  # 'abs' or 'negative'
    smoothgrad_samples: int = 25
    smoothgrad_noise: float = 0.15  # noise std, fraction of the pixel range
    ig_steps: int = 32
    patch: int = 2  # occlusion square side
    stride: int = 1
    fill: float = 0.0  # pixel value of occluded / deleted pixels (0: black background)
    layer: int = 0  # index among the conv layers (activations, patches)
    channel: int = 0
    top_k: int = 8
    class_steps: int = 200
    class_learning_rate: float = 0.05
    class_l2: float = 1e-3
    blur_every: int = 10
    blur_sigma: float = 0.5
    jitter: int = 1
    epsilons: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3)
    attack_eps: float = 0.2  # the epsilon of the example grid
    pgd_steps: int = 10
    neighbours: int = 5
    metric: str = "l2"
    delete: int = 8  # pixels removed per image in the deletion check

    def validate(self) -> None:
        """ConfigError (one line, the valid values) for a bad setting."""
        from jaxlab.config import check_choice

        for name in (
            "num_images",
            "smoothgrad_samples",
            "ig_steps",
            "patch",
            "stride",
            "top_k",
            "class_steps",
            "pgd_steps",
            "neighbours",
            "delete",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        for name in ("layer", "channel", "blur_every", "jitter", "class_l2", "smoothgrad_noise"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} must be >= 0, got {getattr(self, name)}")
        check_choice("saliency_mode", self.saliency_mode, list(attribution.SALIENCY_MODES))
        check_choice("metric", self.metric, list(checks.NEIGHBOUR_METRICS))
        for name in ("fill", "attack_eps", *(["epsilons"] * len(self.epsilons))):
            values = self.epsilons if name == "epsilons" else (getattr(self, name),)
            if any(not 0.0 <= v <= 1.0 for v in values):
                raise ConfigError(f"--{name} must lie in [0, 1] (the pixel scale), got {values}")
        if not self.epsilons:
            raise ConfigError("--epsilons must list at least one value")
        if self.blur_sigma <= 0 or self.class_learning_rate <= 0:
            raise ConfigError("--blur_sigma and --class_learning_rate must be > 0")


@dataclasses.dataclass
class Context:
    """What the methods work on: a classifier, its eval images (model inputs) and labels, a
    loader of its train split (for neighbours), the options and the figure sink."""

    probe: Probe
    images: np.ndarray
    labels: np.ndarray
    options: Options
    sink: FigureSink
    train_split: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    log: Callable[[str], None] = print

    @property
    def shown(self) -> np.ndarray:
        """The images the figures show (the first `num_images`)."""
        return self.images[: self.options.num_images]

    def pixels(self, x: np.ndarray) -> np.ndarray:
        """Model inputs -> displayable images."""
        return np.stack([to_display(p) for p in np.asarray(self.probe.space.to_pixels(x))])

    def predict(self, x: np.ndarray, batch: int = 1024) -> np.ndarray:
        """Predicted classes of model inputs, in batches."""
        return np.concatenate(
            [
                np.asarray(jnp.argmax(self.probe.logits(x[i : i + batch]), -1))
                for i in range(0, len(x), batch)
            ]
        )


def _cmap(image: np.ndarray) -> str | None:
    return "gray" if image.ndim == 2 else None


def _map_rows(ctx: Context, maps: np.ndarray, name: str, cmap: str = "hot") -> list:
    shown = ctx.pixels(ctx.shown)
    return [
        [(p, _cmap(p), f"label {y}") for p, y in zip(shown, ctx.labels, strict=False)],
        [(rescale(m), cmap, name) for m in np.asarray(maps)],
    ]


def filters(ctx: Context) -> dict[str, Any]:
    """The first layer's filters (a linear model's class templates), min-max scaled each."""
    kernels = first_layer_filters(ctx.probe, ctx.images[:1])[:64]
    cells = [
        (to_display(rescale(k)), "gray" if k.shape[-1] != 3 else None, f"{i}")
        for i, k in enumerate(kernels)
    ]
    rows = [cells[i : i + 8] for i in range(0, len(cells), 8)]
    ctx.sink.save("filters", grid_figure(rows, f"first-layer filters {kernels.shape[1:]}"))
    return {"num_filters": len(kernels)}


def _conv_layers(ctx: Context) -> list:
    convs = ctx.probe.conv_layers(ctx.images[:1])
    if not convs:
        raise ConfigError("the model has no conv layer (activations and patches need one)")
    return convs


def _patch_layer(ctx: Context) -> tuple[int, Any]:
    """(layer index, info) of `--layer`, with `--channel` checked against its width."""
    o = ctx.options
    convs = _conv_layers(ctx)
    if not 0 <= o.layer < len(convs):
        raise ConfigError(
            f"--layer must be in 0..{len(convs) - 1} (the conv layers), got {o.layer}"
        )
    index, info = convs[o.layer]
    if not 0 <= o.channel < info.output_shape[-1]:
        raise ConfigError(f"--channel must be in 0..{info.output_shape[-1] - 1}, got {o.channel}")
    return index, info


def preflight(ctx: Context, names: list[str]) -> None:
    """ConfigError, before any figure is written, where the model cannot serve a method:
    no conv layer for activations / patches, `--layer` / `--channel` out of range."""
    if "activations" in names:
        _conv_layers(ctx)
    if "patches" in names:
        _patch_layer(ctx)


def activations(ctx: Context) -> dict[str, Any]:
    """The first eval image's activation maps: a row per conv layer, up to 16 channels."""
    rows, labels = [], []
    for index, info in _conv_layers(ctx):
        out = np.asarray(ctx.probe.layer_output(ctx.images[:1], index))[0]
        rows.append(
            [(rescale(out[..., c]), "viridis", f"ch {c}") for c in range(min(16, out.shape[-1]))]
        )
        labels.append("/".join(info.path))
    image = ctx.pixels(ctx.images[:1])[0]
    rows.insert(0, [(image, _cmap(image), f"label {ctx.labels[0]}")])
    ctx.sink.save("activations", grid_figure(rows, "activation maps", ["input", *labels]))
    return {"layers": labels}


def patches(ctx: Context) -> dict[str, Any]:
    """The eval images where channel `channel` of conv layer `layer` is largest, with the
    receptive field outlined."""
    import matplotlib.patches

    o = ctx.options
    convs = _conv_layers(ctx)
    if not 0 <= o.layer < len(convs):
        raise ConfigError(
            f"--layer must be in 0..{len(convs) - 1} (the conv layers), got {o.layer}"
        )
    index, info = convs[o.layer]
    if not 0 <= o.channel < info.output_shape[-1]:
        raise ConfigError(f"--channel must be in 0..{info.output_shape[-1] - 1}, got {o.channel}")
    tops = visualize.max_activating_patches(
        ctx.probe.layer_output_fn(index), ctx.images, o.channel, o.top_k
    )
    images = ctx.pixels(ctx.images[[t.image for t in tops]])
    cells = [(p, _cmap(p), f"{t.value:.2f}") for p, t in zip(images, tops, strict=True)]
    fig = grid_figure([cells], f"top {o.top_k} of {'/'.join(info.path)} channel {o.channel}")
    for ax, t in zip(fig.axes, tops, strict=False):
        r0, r1, c0, c1 = t.box
        ax.add_patch(
            matplotlib.patches.Rectangle(
                (c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, color="red"
            )
        )
    ctx.sink.save("patches", fig)
    return {"boxes": [t.box for t in tops], "values": [t.value for t in tops]}


def _targets(ctx: Context, n: int | None = None) -> jax.Array:
    return jnp.asarray(ctx.labels[:n] if n else ctx.labels)


def saliency_maps(ctx: Context, images: np.ndarray, labels: np.ndarray, mode: str) -> np.ndarray:
    """Vanilla-gradient saliency [N, H, W] of the labels' classes."""
    grad = jax.jit(lambda x, y: attribution.class_gradient(ctx.probe.logits_fn, x, y))
    return np.asarray(
        attribution.saliency_map(grad(jnp.asarray(images), jnp.asarray(labels)), mode)
    )


def occlusion_maps(ctx: Context, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Occlusion sensitivity [N, H, W] of the labels' classes."""
    o = ctx.options
    h, w = images.shape[1:3]
    windows = attribution.occlusion_windows(h, w, o.patch, o.stride)
    fill = jnp.asarray(ctx.probe.space.from_pixels(np.full(images.shape[-1], o.fill, np.float32)))
    run = jax.jit(lambda x, y: attribution.occlusion_map(ctx.probe.logits_fn, x, y, fill, windows))
    return np.concatenate(
        [
            np.asarray(run(jnp.asarray(images[i : i + 256]), jnp.asarray(labels[i : i + 256])))
            for i in range(0, len(images), 256)
        ]
    )


def saliency(ctx: Context) -> dict[str, Any]:
    """Vanilla-gradient saliency of the true class ('abs' or 'negative' part)."""
    mode = ctx.options.saliency_mode
    maps = saliency_maps(ctx, ctx.shown, ctx.labels[: len(ctx.shown)], mode)
    ctx.sink.save("saliency", grid_figure(_map_rows(ctx, maps, mode), f"vanilla gradient ({mode})"))
    return {}


def _batched(fn: Callable, images: np.ndarray, labels: np.ndarray, size: int = 128) -> np.ndarray:
    return np.concatenate(
        [
            np.asarray(fn(jnp.asarray(images[i : i + size]), jnp.asarray(labels[i : i + size])))
            for i in range(0, len(images), size)
        ]
    )


def smoothgrad_maps(
    ctx: Context, images: np.ndarray, labels: np.ndarray, times_input: bool = False
) -> np.ndarray:
    """SmoothGrad [N, H, W] of the labels' classes: the absolute value's channel maximum,
    or (`times_input`) the signed mean gradient times the input measured from the black
    image, summed over channels (SmoothGrad x input)."""
    o = ctx.options
    sigma = jnp.asarray(ctx.probe.space.scale(o.smoothgrad_noise))
    key = jax.random.key(o.seed)
    baseline = jnp.asarray(ctx.probe.space.lo)

    def run(x: jax.Array, y: jax.Array) -> jax.Array:
        g = attribution.smoothgrad(
            ctx.probe.logits_fn, x, y, key, sigma=sigma, samples=o.smoothgrad_samples
        )
        return ((x - baseline) * g).sum(-1) if times_input else attribution.saliency_map(g, "abs")

    return _batched(jax.jit(run), images, labels)


def ig_maps(ctx: Context, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Integrated gradients [N, H, W, C] of the labels' classes from the black image."""
    baseline = jnp.asarray(ctx.probe.space.lo)
    steps = ctx.options.ig_steps
    run = jax.jit(
        lambda x, y: attribution.integrated_gradients(
            ctx.probe.logits_fn, x, y, baseline, steps=steps
        ).sum(-1)
    )
    return _batched(run, images, labels)


def grad_input_maps(ctx: Context, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Gradient x input [N, H, W] of the labels' classes, input measured from the black
    image (summed over channels, signed: positive where a pixel supports the class)."""
    baseline = jnp.asarray(ctx.probe.space.lo)
    run = jax.jit(
        lambda x, y: attribution.gradient_times_input(ctx.probe.logits_fn, x, y, baseline).sum(-1)
    )
    return _batched(run, images, labels)


def smoothgrad(ctx: Context) -> dict[str, Any]:
    """SmoothGrad of the true class (absolute value, channel maximum)."""
    o = ctx.options
    maps = smoothgrad_maps(ctx, ctx.shown, ctx.labels[: len(ctx.shown)])
    title = f"SmoothGrad ({o.smoothgrad_samples} samples, noise {o.smoothgrad_noise})"
    ctx.sink.save("smoothgrad", grid_figure(_map_rows(ctx, maps, "smoothgrad"), title))
    return {}


def integrated_gradients(ctx: Context) -> dict[str, Any]:
    """Integrated gradients of the true class from the black image (summed over channels);
    reports the mean completeness gap |sum IG - (logit(x) - logit(black))|."""
    o = ctx.options
    x, y = jnp.asarray(ctx.shown), _targets(ctx, len(ctx.shown))
    ig = ig_maps(ctx, ctx.shown, ctx.labels[: len(ctx.shown)])
    baseline = jnp.broadcast_to(jnp.asarray(ctx.probe.space.lo), x.shape)
    gain = np.asarray(
        jnp.take_along_axis(ctx.probe.logits(x) - ctx.probe.logits(baseline), y[:, None], -1)[:, 0]
    )
    gap = float(np.mean(np.abs(ig.reshape(len(ig), -1).sum(1) - gain)))
    ctx.sink.save(
        "integrated_gradients",
        grid_figure(
            _map_rows(ctx, ig, "IG", "RdBu_r"),
            f"integrated gradients ({o.ig_steps} steps, black baseline)",
        ),
    )
    ctx.log(
        f"integrated gradients: mean completeness gap {gap:.4f} "
        f"(mean logit gain {np.mean(gain):.3f})"
    )
    return {"completeness_gap": gap}


def occlusion(ctx: Context) -> dict[str, Any]:
    """Occlusion sensitivity of the true class."""
    o = ctx.options
    maps = occlusion_maps(ctx, ctx.shown, ctx.labels[: len(ctx.shown)])
    title = f"occlusion (patch {o.patch}, stride {o.stride}, fill {o.fill})"
    ctx.sink.save("occlusion", grid_figure(_map_rows(ctx, maps, "p drop", "RdBu_r"), title))
    return {}


def class_vis(ctx: Context) -> dict[str, Any]:
    """One image per class by regularized gradient ascent from gray."""
    o = ctx.options
    num_classes = int(ctx.probe.logits(ctx.images[:1]).shape[-1])
    classes = jnp.arange(min(num_classes, 64))
    run = jax.jit(
        lambda k: visualize.class_visualization(
            ctx.probe.logits_fn,
            classes,
            ctx.images.shape[1:],
            ctx.probe.space,
            k,
            steps=o.class_steps,
            learning_rate=o.class_learning_rate,
            l2=o.class_l2,
            blur_every=o.blur_every,
            blur_sigma=o.blur_sigma,
            jitter=o.jitter,
        )
    )
    x = run(jax.random.key(o.seed))
    probs = np.asarray(jax.nn.softmax(ctx.probe.logits(x), -1))
    own = probs[np.arange(len(classes)), np.asarray(classes)]
    cells = [
        (p, _cmap(p), f"{c}: p={q:.2f}")
        for c, (p, q) in enumerate(zip(ctx.pixels(np.asarray(x)), own, strict=True))
    ]
    rows = [cells[i : i + 10] for i in range(0, len(cells), 10)]
    ctx.sink.save("class_vis", grid_figure(rows, f"class visualization ({o.class_steps} steps)"))
    return {"own_class_probability": own.tolist()}
