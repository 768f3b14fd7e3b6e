"""`gen_digits`: scikit-learn's 8x8 digits with the split of Tomczak's "Deep Generative
Modeling" code, the offline benchmark of the generative models.

    gen_digits  {'image': image (8, 8, 1) float32, the pixel counts 0..16 divided by 16
                (so `round(16 * image)` gives the 17-way categories back exactly),
                'label': label () int32}, 10 classes. Splits, in scikit-learn's order of
                `load_digits()`: 'train' the first 1000 images, 'validation' the next 350,
                'test' the last 447. Served by `ArraySource` (a fresh permutation per epoch
                from (config.seed, epoch), padded eval passes).

The images are never standardized (`dataset.normalize` concerns the TFDS pipelines): the
generative models read either the [0, 1] values or the categories. The `digits` dataset
(jaxlab.data.digits) holds the same images with a stratified 80/20 split for classifiers.
"""

from __future__ import annotations

import functools

import ml_collections
import numpy as np

from jaxlab.data.features import Feature
from jaxlab.data.generated import ArraySource, _check_options, _frozen

GEN_DIGITS_SPLITS = {"train": (0, 1000), "validation": (1000, 1350), "test": (1350, 1797)}
GEN_DIGITS_LEVELS = 17  # pixel values 0..16
GEN_DIGITS_SHAPE = (8, 8, 1)


@functools.cache
def gen_digits_examples(split: str) -> dict[str, np.ndarray]:
    """All examples of a split: 'image' float32 [N, 8, 8, 1] in {0, 1/16, ..., 1} and
    'label' int32 [N]; KeyError for a split other than train, validation, test."""
    from sklearn.datasets import load_digits

    start, stop = GEN_DIGITS_SPLITS[split]
    digits = load_digits()
    images = digits.images[start:stop].astype(np.float32) / (GEN_DIGITS_LEVELS - 1)
    return _frozen(
        {
            "image": images[..., None],
            "label": digits.target[start:stop].astype(np.int32),
        }
    )


def to_levels(image: np.ndarray) -> np.ndarray:
    """[0, 1] gen_digits images -> their int32 pixel categories 0..16."""
    return np.rint(np.asarray(image) * (GEN_DIGITS_LEVELS - 1)).astype(np.int32)


class GenDigits(ArraySource):
    """scikit-learn's digits, split 1000 / 350 / 447 (see the module docstring)."""

    features = {
        "image": Feature(GEN_DIGITS_SHAPE, "float32", "image"),
        "label": Feature((), "int32", "label"),
    }
    num_classes = 10

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        _check_options(config, process_count, tuple(GEN_DIGITS_SPLITS))

    def examples(self, split: str) -> dict[str, np.ndarray]:
        return gen_digits_examples(split)


GEN_DIGITS_SOURCES = {"gen_digits": GenDigits()}
