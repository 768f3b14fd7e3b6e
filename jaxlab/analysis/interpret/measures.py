"""The measured methods of `scripts/interpret.py`: accuracy under attack, nearest
neighbours and 2-d maps of the penultimate features, the deletion check and the
model-randomization sanity check. Each draws its figure and returns its numbers."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jaxlab.analysis import attacks as attack_lib
from jaxlab.analysis.interpret import checks
from jaxlab.analysis.interpret.figures import grid_figure, rescale
from jaxlab.analysis.interpret.methods import (
    Context,
    _cmap,
    grad_input_maps,
    ig_maps,
    occlusion_maps,
    saliency_maps,
    smoothgrad_maps,
)
from jaxlab.analysis.interpret.probe import Probe


def attacks(ctx: Context) -> dict[str, Any]:
    """Accuracy per epsilon (pixel scale) under FGSM, PGD and random sign noise; a plot of
    the curves and a grid of FGSM examples at `attack_eps`."""
    import matplotlib.pyplot as plt

    o, space = ctx.options, ctx.probe.space
    results = {}
    for name in attack_lib.ATTACKS:
        ctx.log(f"attack {name}: epsilons {list(o.epsilons)} (pixel scale [0, 1])")
        results[name] = attack_lib.accuracy_under_attack(
            ctx.probe.logits_fn,
            ctx.images,
            ctx.labels,
            o.epsilons,
            space,
            name,
            seed=o.seed,
            pgd_steps=o.pgd_steps,
        ).tolist()
    header = "eps      " + "  ".join(f"{e:7.3f}" for e in o.epsilons)
    ctx.log(header)
    for name, accs in results.items():
        ctx.log(f"{name:8s} " + "  ".join(f"{a:7.4f}" for a in accs))
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, accs in results.items():
        ax.plot(o.epsilons, accs, marker="o", label=name)
    ax.set_xlabel("epsilon (pixel scale [0, 1])")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    ctx.sink.save("attack_accuracy", fig)
    x, y = ctx.shown, ctx.labels[: len(ctx.shown)]
    run = attack_lib.make_attack("fgsm", ctx.probe.logits_fn, space)
    adv = np.asarray(run(x, y, np.float32(o.attack_eps), jax.random.key(o.seed)))
    clean_pred, adv_pred = ctx.predict(x), ctx.predict(adv)
    rows = [
        [
            (p, _cmap(p), f"{y_}: pred {c}")
            for p, y_, c in zip(ctx.pixels(x), y, clean_pred, strict=True)
        ],
        [(p, _cmap(p), f"pred {c}") for p, c in zip(ctx.pixels(adv), adv_pred, strict=True)],
        [
            (0.5 + 0.5 * d.mean(-1) / max(np.abs(d).max(), 1e-12), "RdBu_r", "x' - x")
            for d in adv - x
        ],
    ]
    ctx.sink.save(
        "fgsm_examples",
        grid_figure(rows, f"FGSM at eps {o.attack_eps}", ["clean", "FGSM", "delta"]),
    )
    ctx.sink.scalars(
        {
            f"attack/{n}_eps{e:g}": a
            for n, accs in results.items()
            for e, a in zip(o.epsilons, accs, strict=True)
        }
    )
    return {"epsilons": list(o.epsilons), **results}


def neighbours(ctx: Context) -> dict[str, Any]:
    """For the shown eval images, the nearest train images in penultimate-feature space."""
    o = ctx.options
    ctx.log("neighbours: embedding the train split")
    train_x, train_y = ctx.train_split()
    memory = np.concatenate(
        [
            np.asarray(ctx.probe.features(train_x[i : i + 1024]))
            for i in range(0, len(train_x), 1024)
        ]
    )
    queries = np.asarray(ctx.probe.features(ctx.shown))
    idx = checks.nearest_neighbours(queries, memory, o.neighbours, o.metric)
    agree = float(np.mean(train_y[idx] == ctx.labels[: len(ctx.shown), None]))
    rows = []
    for q, row in enumerate(idx):
        query = ctx.pixels(ctx.shown[q : q + 1])[0]
        cells = [(query, _cmap(query), f"query {ctx.labels[q]}")]
        cells += [
            (p, _cmap(p), f"{train_y[j]}")
            for p, j in zip(ctx.pixels(train_x[row]), row, strict=True)
        ]
        rows.append(cells)
    ctx.sink.save(
        "neighbours",
        grid_figure(
            rows, f"{o.neighbours} nearest train images ({o.metric}, penultimate features)"
        ),
    )
    return {"label_agreement": agree}


def embedding(ctx: Context) -> dict[str, Any]:
    """t-SNE and PCA of the eval images' penultimate features, coloured by class."""
    import matplotlib.pyplot as plt

    feats = np.concatenate(
        [
            np.asarray(ctx.probe.features(ctx.images[i : i + 1024]))
            for i in range(0, len(ctx.images), 1024)
        ]
    )
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, method in zip(axes, checks.EMBEDDINGS, strict=True):
        ctx.log(f"embedding: {method} of {feats.shape[0]} x {feats.shape[1]} features")
        xy = checks.embed_2d(feats, method, ctx.options.seed)
        points = ax.scatter(xy[:, 0], xy[:, 1], c=ctx.labels, cmap="tab10", s=6)
        ax.set_title(f"{method} of penultimate features")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=axes, label="class")
    ctx.sink.save("embedding", fig)
    return {"num_points": int(feats.shape[0])}


def _ink(ctx: Context, images: np.ndarray) -> np.ndarray:
    """Pixels that removal changes: pixel value (channel max) differs from the fill."""
    return np.abs(np.asarray(ctx.probe.space.to_pixels(images)) - ctx.options.fill).max(-1) > 1e-6


def deletion(ctx: Context) -> dict[str, Any]:
    """Accuracy after removing the `delete` ink pixels that each map ranks highest, against
    as many random ink pixels (the mean of 5 draws). The maps: vanilla |gradient|,
    SmoothGrad |gradient|, gradient x input and SmoothGrad x input (signed, input measured
    from the black image), integrated gradients (signed: the pixels that most support the
    class) and occlusion."""
    o = ctx.options
    fill = np.asarray(
        ctx.probe.space.from_pixels(np.full(ctx.images.shape[-1], o.fill, np.float32))
    )
    ctx.log(f"deletion: saliency and occlusion maps of {len(ctx.images)} images")
    maps = {
        "saliency": saliency_maps(ctx, ctx.images, ctx.labels, "abs"),
        "smoothgrad": smoothgrad_maps(ctx, ctx.images, ctx.labels),
        "gradient_x_input": grad_input_maps(ctx, ctx.images, ctx.labels),
        "smoothgrad_x_input": smoothgrad_maps(ctx, ctx.images, ctx.labels, times_input=True),
        "integrated_gradients": ig_maps(ctx, ctx.images, ctx.labels),
        "occlusion": occlusion_maps(ctx, ctx.images, ctx.labels),
    }
    ink = _ink(ctx, ctx.images)
    out = checks.deletion_check(
        ctx.predict, ctx.images, ctx.labels, maps, ink, fill, o.delete, seed=o.seed
    )
    ctx.log(
        f"deletion of {o.delete} ink pixels: accuracy clean {out['clean']:.4f}, "
        f"random {out['random']:.4f}; "
        + ", ".join(
            f"{m} {out[m]:.4f} (drop x{out['ratio_' + m]:.2f} the random drop)" for m in maps
        )
    )
    x = ctx.shown
    n = len(x)
    rng = np.random.default_rng(o.seed)
    rows = [[(p, _cmap(p), f"label {y}") for p, y in zip(ctx.pixels(x), ctx.labels, strict=False)]]
    labels = ["clean"]
    for name, masks in (
        ("saliency", checks.top_ink_masks(maps["saliency"][:n], ink[:n], o.delete)),
        ("grad x input", checks.top_ink_masks(maps["gradient_x_input"][:n], ink[:n], o.delete)),
        ("occlusion", checks.top_ink_masks(maps["occlusion"][:n], ink[:n], o.delete)),
        ("random", checks.random_ink_masks(rng, ink[:n], o.delete)),
    ):
        removed = checks.remove_pixels(x, masks, fill)
        rows.append(
            [
                (p, _cmap(p), f"pred {c}")
                for p, c in zip(ctx.pixels(removed), ctx.predict(removed), strict=True)
            ]
        )
        labels.append(f"-{name}")
    ctx.sink.save("deletion", grid_figure(rows, f"deletion of {o.delete} ink pixels", labels))
    ctx.sink.scalars({f"deletion/{k}": v for k, v in out.items()})
    return out


def reinitialized(probe: Probe, example: np.ndarray, seed: int) -> Probe:
    """The same architecture with freshly initialized variables (same pixel space)."""
    init = jax.jit(lambda key, x: probe.model.init(key, x, train=False))
    variables = init(jax.random.key(seed), jax.numpy.asarray(example))
    return Probe(probe.model, variables, probe.space)


def sanity(ctx: Context) -> dict[str, Any]:
    """Adebayo et al.'s model-randomization test: Spearman rank correlation between the
    vanilla-gradient saliency (abs) of the trained and of a re-initialized model."""
    o = ctx.options
    random_ctx = Context(
        reinitialized(ctx.probe, ctx.images[:1], o.seed + 1), ctx.images, ctx.labels, o, ctx.sink
    )
    trained = saliency_maps(ctx, ctx.images, ctx.labels, "abs")
    rand = saliency_maps(random_ctx, ctx.images, ctx.labels, "abs")
    rho = checks.rank_correlation(trained, rand)
    # The reference: how much two maps agree merely by following the image (rank
    # correlation of the trained saliency with the pixel intensities).
    pix = np.asarray(ctx.probe.space.to_pixels(ctx.images)).max(-1)
    rho_pixels = checks.rank_correlation(trained, pix)
    out = {
        "spearman_mean": float(rho.mean()),
        "spearman_median": float(np.median(rho)),
        "spearman_trained_vs_pixels": float(rho_pixels.mean()),
    }
    ctx.log(
        "sanity: Spearman(trained saliency, re-initialized saliency) "
        f"mean {out['spearman_mean']:.3f} "
        f"median {out['spearman_median']:.3f} over {len(rho)} images "
        f"(trained saliency vs pixel intensity: {out['spearman_trained_vs_pixels']:.3f})"
    )
    n = len(ctx.shown)
    rows = [
        [
            (p, _cmap(p), f"label {y}")
            for p, y in zip(ctx.pixels(ctx.shown), ctx.labels, strict=False)
        ],
        [(rescale(m), "hot", "trained") for m in trained[:n]],
        [(rescale(m), "hot", f"rho {r:.2f}") for m, r in zip(rand[:n], rho[:n], strict=True)],
    ]
    ctx.sink.save(
        "sanity",
        grid_figure(
            rows, "saliency: trained vs re-initialized model", ["input", "trained", "random"]
        ),
    )
    ctx.sink.scalars({f"sanity/{k}": v for k, v in out.items()})
    return out
