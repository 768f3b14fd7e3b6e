"""Per-dataset preprocessing and the registry of train-only augmentation ops (tf ops only).

An example goes through `scale` (uint8 -> float32 in [0, 1]), then, for training only, the
augmentation ops named by `config.dataset.augment` in order, then `normalize` with the
dataset's mean and std. Augmenting before normalizing lets padding be black (0), as the
usual recipes do.

Every augmentation op is `(image, seed) -> image` with `image` float32 [H, W, C] and `seed`
an int32 [2] tensor, built on `tf.image.stateless_*` ops: the result is a pure function of
the seed, which the pipeline derives from (config.seed, epoch, index of the example in the
epoch), so it depends neither on the process count nor on where a run resumed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import tensorflow as tf

from jaxlab.config import ConfigError


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std of a dataset's pixels, on the [0, 1] scale."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


# The usual published statistics of each train split.
NORMALIZATION: dict[str, Normalization] = {
    "cifar10": Normalization(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "cifar100": Normalization(mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
    # Computed once over all pixels of the digits train split (jaxlab.data.digits: the
    # uint8 images / 255): mean 0.305434, std 0.375957.
    "digits": Normalization(mean=(0.3054,), std=(0.3760,)),
    "fashion_mnist": Normalization(mean=(0.2860,), std=(0.3530,)),
    "mnist": Normalization(mean=(0.1307,), std=(0.3081,)),
}

AugmentOp = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

PAD_CROP_PIXELS = 4


def flip_lr(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Flips the image left-right with probability 1/2 (stateless in `seed`)."""
    return tf.image.stateless_random_flip_left_right(image, seed)


def pad_crop(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Pads 4 black pixels on each side, then crops a random window of the original size."""
    padded = tf.pad(
        image, [[PAD_CROP_PIXELS, PAD_CROP_PIXELS], [PAD_CROP_PIXELS, PAD_CROP_PIXELS], [0, 0]]
    )
    return tf.image.stateless_random_crop(padded, tf.shape(image), seed)


AUGMENT_OPS: dict[str, AugmentOp] = {
    "flip_lr": flip_lr,
    "pad_crop": pad_crop,
}


def parse_augment(spec: str) -> list[str]:
    """Splits a comma-separated `config.dataset.augment` into op names, checking each.

    Empty entries are ignored ("" means no augmentation). Raises ConfigError naming the
    unknown op and the valid ones.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"dataset.augment must be a comma-separated string, got {spec!r}")
    names = [name.strip() for name in spec.split(",") if name.strip()]
    for name in names:
        if name not in AUGMENT_OPS:
            raise ConfigError(
                f"unknown augment op {name!r} in dataset.augment; "
                f"valid ops: {', '.join(sorted(AUGMENT_OPS))}"
            )
    return names


def scale(image: tf.Tensor) -> tf.Tensor:
    """Maps a uint8 image to float32 in [0, 1]."""
    return tf.cast(image, tf.float32) / 255.0


def normalize(image: tf.Tensor, dataset: str) -> tf.Tensor:
    """Subtracts the dataset's per-channel mean and divides by its std."""
    norm = NORMALIZATION[dataset]
    return (image - tf.constant(norm.mean, tf.float32)) / tf.constant(norm.std, tf.float32)


def augment(image: tf.Tensor, ops: Sequence[str], seed: tf.Tensor) -> tf.Tensor:
    """Applies the named ops in order, each with its own seed folded from `seed`."""
    for position, name in enumerate(ops):
        op_seed = tf.random.experimental.stateless_fold_in(seed, position)
        image = AUGMENT_OPS[name](image, op_seed)
    return image


def preprocess_image(
    image: tf.Tensor,
    dataset: str,
    ops: Sequence[str] = (),
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """uint8 [H, W, C] -> normalized float32 [H, W, C]; augmented first when `ops` are given.

    `seed` (int32 [2]) is required with `ops`; eval passes no ops and so is never augmented.
    """
    image = scale(image)
    if ops:
        if seed is None:
            raise ValueError("augmentation needs a seed")
        image = augment(image, ops, seed)
    return normalize(image, dataset)
