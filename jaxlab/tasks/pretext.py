"""Self-supervised pretext tasks: `rotation`, `jigsaw`, `inpainting`, `colorization`.

Each trains a backbone (`config.model`, any registry model built with `num_classes =
task.feature_dim`) under a small MLP head on a problem made from unlabelled images inside
the step (labels and masks are generated there, from the 'pretext' rng stream), and offers
the linear probe and kNN on the backbone's features (`PretextTask.embed`, inference mode):

- `rotation` (Gidaris et al., 2018): every image is shown at 0, 90, 180 and 270 degrees (all
  four, so the batch is 4B) and the head classifies the rotation (4-way cross entropy).
- `jigsaw` (Noroozi & Favaro, 2016): the image is cut into a `grid` x `grid` tile grid, the
  tiles are shuffled by one of a fixed set of `num_permutations` permutations, and the head
  classifies which one from the concatenated features of the tiles (one backbone, shared
  across tiles). The set is chosen greedily by maximal Hamming distance
  (`permutation_set`): from a first permutation drawn with `permutation_seed`, each next
  one maximizes its minimum Hamming distance to those chosen (ties: the largest total
  distance, then a seeded order), so that the classes are as far apart as possible. The
  backbone must accept the tile size (convolutional with global pooling: small_cnn, ResNets).
- `inpainting` (Pathak et al., 2016, context encoder without the adversarial term): a
  `mask_size` square at a random position is set to 0 (the dataset mean after
  normalization) and the head decodes the whole image; the loss is the mean squared error
  over the masked region only.
- `colorization` (Zhang et al., 2016; here regression of ab, Iizuka et al.'s and Larsson
  et al.'s simpler variant of Zhang's classification over quantized ab bins): the backbone
  sees the CIE L channel (scaled to [-1, 1]) of an sRGB image in [0, 1] and the head
  predicts its a and b channels (scaled by 1/110): mean squared error over all pixels.
  The Lab conversion (`rgb_to_lab`, `lab_to_rgb`: sRGB with the D65 white, as CIE
  defines it) is written here since scikit-image is not a dependency. Needs colour images in
  [0, 1]: `dataset.normalize=False`.

Metrics: `loss` (and `accuracy` for rotation and jigsaw), on train batches and, with labels
and masks drawn the same way, on the eval split (mask-weighted; padding never counts).

Options (`config.task`): `feature_dim` (default 128), `hidden_dim` (head width, default
256); jigsaw: `grid` (default 2), `num_permutations` (default 24), `permutation_seed`
(default 0); inpainting: `mask_size` (default half the image side).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.config import ConfigError, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.models.ssl_heads import MLPHead, PretextNetwork
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.distill_base import check_options
from jaxlab.tasks.generative import require_unit_images
from jaxlab.tasks.representation import RepresentationTask
from jaxlab.tasks.supervised import ApplyFn, SupervisedState, SupervisedTask

COMMON_OPTIONS = ("name", "feature_dim", "hidden_dim")
# make(images [B, H, W, C], example mask [B], key) -> (inputs, targets, weights): weights
# has the targets' shape (per example [N] for classes, per value for pixels).
MakeFn = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]

# --- rotation ---------------------------------------------------------------------------------


def rotations(images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(the 4 rotations of every image [4B, H, W, C] (counter-clockwise k * 90 degrees,
    rotation-major), their labels k [4B]). Needs square images."""
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"rotation needs square images, got {images.shape[1:3]}")
    rotated = jnp.concatenate([jnp.rot90(images, k, axes=(1, 2)) for k in range(4)])
    labels = jnp.repeat(jnp.arange(4, dtype=jnp.int32), images.shape[0])
    return rotated, labels


# --- jigsaw -----------------------------------------------------------------------------------


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances [len(a), len(b)] between the rows of two permutation arrays."""
    return np.sum(a[:, None, :] != b[None, :, :], axis=-1)


def permutation_set(num_tiles: int, num: int, seed: int = 0) -> np.ndarray:
    """int32 [num, num_tiles]: `num` distinct permutations chosen greedily by maximal
    Hamming distance (module docstring). All num_tiles! permutations are enumerated, so
    num_tiles <= 9."""
    if num_tiles > 9:
        raise ConfigError(f"jigsaw enumerates all permutations: at most 9 tiles, got {num_tiles}")
    total = math.factorial(num_tiles)
    if not 2 <= num <= total:
        raise ConfigError(
            f"task.num_permutations must be in [2, {total}] for {num_tiles} tiles, got {num}"
        )
    rng = np.random.default_rng(seed)
    candidates = np.array(list(itertools.permutations(range(num_tiles))), np.int8)
    candidates = candidates[rng.permutation(total)]  # the seeded tie-breaking order
    chosen = [0]
    min_dist = hamming(candidates, candidates[:1])[:, 0].astype(np.int32)
    sum_dist = min_dist.copy()
    for _ in range(num - 1):
        score = min_dist.astype(np.int64) * (num_tiles * num + 1) + sum_dist
        score[chosen] = -1
        best = int(np.argmax(score))
        chosen.append(best)
        d = hamming(candidates, candidates[best : best + 1])[:, 0]
        min_dist = np.minimum(min_dist, d)
        sum_dist += d
    return candidates[chosen].astype(np.int32)


def to_tiles(images: jax.Array, grid: int) -> jax.Array:
    """[B, H, W, C] -> [B, grid * grid, H / grid, W / grid, C], tiles in row-major order."""
    b, h, w, c = images.shape
    th, tw = h // grid, w // grid
    x = images[:, : th * grid, : tw * grid].reshape(b, grid, th, grid, tw, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, grid * grid, th, tw, c)


def shuffle_tiles(tiles: jax.Array, permutations: jax.Array, labels: jax.Array) -> jax.Array:
    """Position i of example n shows tile `permutations[labels[n], i]` of [B, T, ...]."""
    order = permutations[labels]  # [B, T]
    return jnp.take_along_axis(tiles, order.reshape(*order.shape, 1, 1, 1), axis=1)


# --- inpainting -------------------------------------------------------------------------------


def square_masks(key: jax.Array, num: int, height: int, width: int, size: int) -> jax.Array:
    """bool [num, H, W]: a size x size square (clipped to the image) at a uniform top-left
    corner in [0, H - size] x [0, W - size] per example."""
    ky, kx = jax.random.split(key)
    y0 = jax.random.randint(ky, (num, 1, 1), 0, max(height - size, 0) + 1)
    x0 = jax.random.randint(kx, (num, 1, 1), 0, max(width - size, 0) + 1)
    ys, xs = jnp.arange(height)[None, :, None], jnp.arange(width)[None, None, :]
    return (ys >= y0) & (ys < y0 + size) & (xs >= x0) & (xs < x0 + size)


# --- colorization -----------------------------------------------------------------------------

_RGB_TO_XYZ = np.array(  # sRGB (linear) -> CIE XYZ, D65 (IEC 61966-2-1)
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    np.float32,
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883], np.float32)
_DELTA = 6.0 / 29.0
AB_SCALE = 110.0  # |a|, |b| of sRGB colours stay below about 108


def rgb_to_lab(rgb: jax.Array) -> jax.Array:
    """CIE L*a*b* [..., 3] (L in [0, 100]) of sRGB values in [0, 1] [..., 3] (D65 white)."""
    rgb = jnp.asarray(rgb, jnp.float32)
    linear = jnp.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ jnp.asarray(_RGB_TO_XYZ.T) / jnp.asarray(_D65_WHITE)
    f = jnp.where(
        xyz > _DELTA**3, jnp.cbrt(jnp.maximum(xyz, _DELTA**3)), xyz / (3 * _DELTA**2) + 4 / 29
    )
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return jnp.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], axis=-1)


def lab_to_rgb(lab: jax.Array) -> jax.Array:
    """sRGB in [0, 1] [..., 3] of CIE L*a*b* [..., 3] (D65; out-of-gamut values clipped)."""
    lab = jnp.asarray(lab, jnp.float32)
    fy = (lab[..., 0] + 16) / 116
    f = jnp.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = jnp.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4 / 29)) * jnp.asarray(_D65_WHITE)
    linear = jnp.clip(xyz @ jnp.asarray(np.linalg.inv(_RGB_TO_XYZ).T), 0.0, 1.0)
    return jnp.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def lightness_input(images: jax.Array) -> jax.Array:
    """The backbone's input of colorization: L / 50 - 1 in [-1, 1], [B, H, W, 1]."""
    return rgb_to_lab(images)[..., :1] / 50.0 - 1.0


# --- the task ---------------------------------------------------------------------------------


class PretextTask(RepresentationTask, SupervisedTask):
    """A backbone and head trained by `SupervisedTask`'s step on a pretext problem made by
    `make` in the step; `kind` 'classes' (cross entropy, accuracy) or 'pixels' (weighted
    squared error). `embed_input` maps dataset images to the backbone's input."""

    def __init__(
        self,
        setup: TaskSetup,
        *,
        name: str,
        network: PretextNetwork,
        make: MakeFn,
        kind: str,
        embed_input: Callable[[jax.Array], jax.Array] = lambda x: x,
    ) -> None:
        self.make, self.kind, self.embed_input = make, kind, embed_input
        names = ("loss", "accuracy") if kind == "classes" else ("loss",)
        SupervisedTask.__init__(
            self,
            name=name,
            model=network,
            loss_fn=self._loss_fn,
            eval_fn=self._eval_fn,
            optimizer=setup.optimizer(),
            train_metric_names=names,
            eval_metric_names=names,
            rng_streams=("params", "dropout", "pretext"),
        )

    def init_state(self, batch: Batch, ctx: StepContext) -> SupervisedState:
        """The network initialized on the pretext input of one example."""
        images = batch["image"][:1]
        inputs, _, _ = self.make(images, jnp.ones((1,)), ctx.rng("pretext"))
        variables = self.model.init(
            {"params": ctx.rng("params"), "dropout": ctx.rng("dropout")}, inputs, train=False
        )
        return self.from_variables(variables)

    def embed(self, task_state: SupervisedState, images: jax.Array) -> jax.Array:
        """The backbone's features of whole images in inference mode."""
        return self.model.apply(
            self.variables(task_state), self.embed_input(images), method=PretextNetwork.embed
        )

    def _outputs(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, jax.Array, jax.Array, PyTree]:
        images = batch["image"]
        mask = batch.get("mask", jnp.ones(images.shape[:1]))
        inputs, targets, weights = self.make(images, mask, ctx.rng("pretext"))
        variables = {"params": params, **model_state}
        if train and model_state:
            out, model_state = apply_fn(
                variables,
                inputs,
                train=True,
                rngs={"dropout": ctx.rng("dropout")},
                mutable=list(model_state),
            )
        else:
            out = apply_fn(variables, inputs, train=train, rngs={"dropout": ctx.rng("dropout")})
        return out, targets, weights, model_state

    def _values(
        self, out: jax.Array, targets: jax.Array, weights: jax.Array
    ) -> tuple[jax.Array, Metrics]:
        if self.kind == "classes":
            ce = optax.softmax_cross_entropy_with_integer_labels(out, targets)
            loss = jnp.sum(ce * weights) / jnp.maximum(jnp.sum(weights), 1.0)
            correct = jnp.argmax(out, -1) == targets
            return loss, {"loss": average(ce, weights), "accuracy": average(correct, weights)}
        se = (out.reshape(targets.shape) - targets) ** 2
        loss = jnp.sum(se * weights) / jnp.maximum(jnp.sum(weights), 1.0)
        return loss, {"loss": average(se, weights)}

    def _loss_fn(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        out, targets, weights, model_state = self._outputs(
            apply_fn, params, model_state, batch, ctx, train
        )
        loss, metrics = self._values(out, targets, weights)
        return loss, (model_state, metrics)

    def _eval_fn(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
    ) -> Metrics:
        out, targets, weights, _ = self._outputs(apply_fn, params, model_state, batch, ctx, False)
        return self._values(out, targets, weights)[1]


def _backbone_and_dims(setup: TaskSetup, valid: tuple[str, ...]) -> tuple[Any, int, int]:
    """(backbone, feature_dim, hidden_dim) after checking the task's option names."""
    options = setup.config.task
    check_options(options.name, options, (*COMMON_OPTIONS, *valid))
    feature_dim = options.get("feature_dim", 128)
    hidden_dim = options.get("hidden_dim", 256)
    check_positive("task.feature_dim", feature_dim, integer=True)
    check_positive("task.hidden_dim", hidden_dim, integer=True)
    backbone = build_model(
        setup.config.model.name,
        {k: v for k, v in setup.config.model.to_dict().items() if k != "name"},
        num_classes=feature_dim,
        bn_axis_name=setup.axis_name,
    )
    return backbone, feature_dim, hidden_dim


def _image_shape(setup: TaskSetup) -> tuple[int, int, int]:
    if "image" not in setup.info.features:
        raise ConfigError(f"task {setup.config.task.name!r} needs a dataset of images")
    return tuple(setup.info.features["image"].shape)


def make_rotation_task(setup: TaskSetup) -> PretextTask:
    """The task `rotation` (module docstring)."""
    backbone, _, hidden = _backbone_and_dims(setup, ())
    h, w, _ = _image_shape(setup)
    if h != w:
        raise ConfigError(f"task 'rotation' needs square images, got {h}x{w}")

    def make(images: jax.Array, mask: jax.Array, key: jax.Array) -> tuple[jax.Array, ...]:
        inputs, labels = rotations(images)
        return inputs, labels, jnp.tile(mask.astype(jnp.float32), 4)

    network = PretextNetwork(backbone, MLPHead(hidden, 4, 2, "none"))
    return PretextTask(setup, name="rotation", network=network, make=make, kind="classes")


def make_jigsaw_task(setup: TaskSetup) -> PretextTask:
    """The task `jigsaw` (module docstring)."""
    backbone, _, hidden = _backbone_and_dims(
        setup, ("grid", "num_permutations", "permutation_seed")
    )
    options = setup.config.task
    grid = options.get("grid", 2)
    check_positive("task.grid", grid, integer=True)
    h, w, _ = _image_shape(setup)
    if grid < 2 or h // grid < 1 or w // grid < 1:
        raise ConfigError(f"task.grid must be in [2, {min(h, w)}] for {h}x{w} images, got {grid}")
    num = options.get("num_permutations", 24)
    seed = options.get("permutation_seed", 0)
    check_positive("task.num_permutations", num, integer=True)
    check_positive("task.permutation_seed", seed, allow_zero=True, integer=True)
    permutations = permutation_set(grid * grid, num, seed)

    def make(images: jax.Array, mask: jax.Array, key: jax.Array) -> tuple[jax.Array, ...]:
        labels = jax.random.randint(key, images.shape[:1], 0, num)
        tiles = shuffle_tiles(to_tiles(images, grid), jnp.asarray(permutations), labels)
        return tiles, labels, mask.astype(jnp.float32)

    network = PretextNetwork(backbone, MLPHead(hidden, num, 2, "none"), tiles=grid * grid)
    task = PretextTask(setup, name="jigsaw", network=network, make=make, kind="classes")
    task.permutations = permutations
    return task


def make_inpainting_task(setup: TaskSetup) -> PretextTask:
    """The task `inpainting` (module docstring)."""
    backbone, _, hidden = _backbone_and_dims(setup, ("mask_size",))
    h, w, c = _image_shape(setup)
    size = setup.config.task.get("mask_size", max(min(h, w) // 2, 1))
    check_positive("task.mask_size", size, integer=True)
    if size > min(h, w):
        raise ConfigError(f"task.mask_size must be in [1, {min(h, w)}], got {size}")

    def make(images: jax.Array, mask: jax.Array, key: jax.Array) -> tuple[jax.Array, ...]:
        hole = square_masks(key, images.shape[0], h, w, size)[..., None]  # [B, H, W, 1]
        inputs = jnp.where(hole, 0.0, images)
        weights = hole * mask.reshape(-1, 1, 1, 1).astype(jnp.float32)
        return inputs, images, jnp.broadcast_to(weights, images.shape)

    network = PretextNetwork(backbone, MLPHead(hidden, h * w * c, 2, "none"))
    return PretextTask(setup, name="inpainting", network=network, make=make, kind="pixels")


def make_colorization_task(setup: TaskSetup) -> PretextTask:
    """The task `colorization` (module docstring)."""
    backbone, _, hidden = _backbone_and_dims(setup, ())
    require_unit_images(setup, "colorization")
    h, w, c = _image_shape(setup)
    if c != 3:
        raise ConfigError(f"task 'colorization' needs RGB images, got {c} channel(s)")

    def make(images: jax.Array, mask: jax.Array, key: jax.Array) -> tuple[jax.Array, ...]:
        lab = rgb_to_lab(images)
        inputs = lab[..., :1] / 50.0 - 1.0
        targets = lab[..., 1:] / AB_SCALE
        weights = jnp.broadcast_to(mask.reshape(-1, 1, 1, 1).astype(jnp.float32), targets.shape)
        return inputs, targets, weights

    network = PretextNetwork(backbone, MLPHead(hidden, h * w * 2, 2, "none"))
    return PretextTask(
        setup,
        name="colorization",
        network=network,
        make=make,
        kind="pixels",
        embed_input=lightness_input,
    )
