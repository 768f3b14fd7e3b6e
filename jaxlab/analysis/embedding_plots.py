"""Pictures and projector files of image embeddings: a 2-D scatter by class (t-SNE, PCA, or
the features themselves when they are 2-D) and the TensorBoard projector's files with a
sprite image.

- `project_2d` reduces [N, D] features with scikit-learn's `TSNE` (perplexity
  min(30, (N - 1) / 3), PCA initialization, a fixed random_state) or `PCA`; 'none' keeps
  2-D features as they are.
- `scatter_2d` draws the projection with matplotlib (Agg), one colour per label, and writes
  a PNG.
- `export_image_projector`: `vectors.tsv`, `metadata.tsv` (header `label`, one row per
  point), `sprite.png` (the images as one grid of thumbnails, row-major, in the points'
  order, on a square grid as the projector expects) and `projector_config.pbtxt` naming the
  three with the thumbnail size, written with TensorBoard's own message class.
  `jaxlab.analysis.embeddings.export_projector` writes words without a sprite, hence this
  function for images.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

METHODS = ("tsne", "pca", "none")
PROJECTOR_CONFIG = "projector_config.pbtxt"


def project_2d(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """float [N, 2]: `features` [N, D] reduced by `method` ('tsne' | 'pca' | 'none', the
    latter for 2-D features only); ValueError for another method or shape."""
    x = np.asarray(features, np.float64).reshape(len(features), -1)
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; valid choices: {', '.join(METHODS)}")
    if method == "none" or x.shape[1] == 2 and method != "tsne":
        if x.shape[1] != 2:
            raise ValueError(f"method 'none' needs 2-D features, got {x.shape[1]}-D")
        return x
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max((len(x) - 1) / 3.0, 1.0))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        x
    )


def scatter_2d(
    features: np.ndarray,
    labels: np.ndarray,
    path: str,
    method: str = "tsne",
    title: str | None = None,
) -> np.ndarray:
    """Writes a PNG at `path` of the 2-D projection (`project_2d`) of `features` [N, D],
    coloured by `labels` [N], and returns the projected points [N, 2]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} features for {len(labels)} labels")
    points = project_2d(features, method)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, cls in enumerate(classes):
        sel = labels == cls
        ax.scatter(points[sel, 0], points[sel, 1], s=6, color=cmap(i % cmap.N), label=str(cls))
    ax.legend(markerscale=2, fontsize=7, loc="best", ncols=2)
    dim = np.asarray(features).reshape(len(labels), -1).shape[1]
    ax.set_title(title or (f"{dim}-D features" if method == "none" else f"{method} of {dim}-D"))
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return points


def sprite_image(images: np.ndarray) -> np.ndarray:
    """uint8 [S h, S w, C] (C 1 or 3): the images [N, h, w, C] (values in [0, 1]) tiled
    row-major on an S x S grid, S = ceil(sqrt(N)), the unused cells black."""
    images = np.asarray(images, np.float64)
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    side = math.ceil(math.sqrt(n))
    grid = np.zeros((side * h, side * w, c), np.uint8)
    pixels = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    for i in range(n):
        r, col = divmod(i, side)
        grid[r * h : (r + 1) * h, col * w : (col + 1) * w] = pixels[i]
    return grid


def export_image_projector(
    logdir: str,
    vectors: np.ndarray,
    labels: Sequence[int],
    images: np.ndarray | None = None,
    tensor_name: str = "embeddings",
) -> dict[str, str]:
    """Writes the projector's files into `logdir` (see the module docstring; the sprite only
    when `images` [N, h, w, C] in [0, 1] are given) and returns their paths by name. Open
    with `tensorboard --logdir LOGDIR`, tab 'Projector'."""
    from google.protobuf import text_format
    from PIL import Image
    from tensorboard.plugins.projector import projector_config_pb2

    vectors = np.asarray(vectors)
    if len(vectors) != len(labels) or (images is not None and len(images) != len(labels)):
        raise ValueError(
            f"{len(vectors)} vectors, {len(labels)} labels and "
            f"{'no' if images is None else len(images)} images must match"
        )
    os.makedirs(logdir, exist_ok=True)
    paths = {
        "vectors": os.path.join(logdir, "vectors.tsv"),
        "metadata": os.path.join(logdir, "metadata.tsv"),
        "config": os.path.join(logdir, PROJECTOR_CONFIG),
    }
    np.savetxt(paths["vectors"], vectors.reshape(len(vectors), -1), fmt="%.6g", delimiter="\t")
    with open(paths["metadata"], "w", encoding="utf-8") as f:
        f.writelines(f"{int(label)}\n" for label in labels)
    config = projector_config_pb2.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = tensor_name
    embedding.tensor_path = os.path.basename(paths["vectors"])
    embedding.metadata_path = os.path.basename(paths["metadata"])
    if images is not None:
        paths["sprite"] = os.path.join(logdir, "sprite.png")
        grid = sprite_image(images)
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(paths["sprite"])
        embedding.sprite.image_path = os.path.basename(paths["sprite"])
        embedding.sprite.single_image_dim.extend([int(images.shape[2]), int(images.shape[1])])
    with open(paths["config"], "w", encoding="utf-8") as f:
        f.write(text_format.MessageToString(config))
    return paths


def workdir_embeddings(
    workdir: str, split: str = "eval"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings [N, D], labels [N], images [N, H, W, C]) of every example of `split`
    ('train' or 'eval') from the latest checkpoint of a representation run's workdir
    (its task's `embed`, in inference mode); ConfigError for a workdir whose task has no
    `embed`, or without a checkpoint."""
    import jax

    from jaxlab import data
    from jaxlab.analysis.ensemble import load_config
    from jaxlab.config import ConfigError
    from jaxlab.tasks.representation import RepresentationTask, embed_split, split_config
    from jaxlab.train.setup import build_experiment
    from jaxlab.train.state import init_context
    from jaxlab.train.transfer import load_pretrained

    config = load_config(workdir)
    experiment = build_experiment(config)
    task = experiment.task
    if not isinstance(task, RepresentationTask):
        raise ConfigError(
            f"{workdir!r} is a {config.task.name!r} run, whose task has no embedding (embed)"
        )
    pretrained = load_pretrained(workdir)
    state = task.init_state(experiment.example_batch, init_context(task, config.seed))
    try:
        state = task.with_variables(
            state, {"params": pretrained["params"], **pretrained["model_state"]}
        )
    except NotImplementedError as e:
        raise ConfigError(f"cannot load the embedding of {workdir!r}: {e}") from None
    features, labels = embed_split(task, state, config, split, embed_fn=jax.jit(task.embed))
    cfg = split_config(config, split)
    info = data.get_dataset_info(cfg)
    images = np.concatenate(
        [
            np.asarray(b["image"])[np.asarray(b["mask"]) > 0]
            for b in data.create_eval_iterator(cfg, info)
        ]
    )
    return features, labels, images
