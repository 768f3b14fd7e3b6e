"""The offline `digits` dataset: scikit-learn's bundled 8x8 handwritten digits as a TFDS builder.

scikit-learn ships the 1797 images of the UCI "optical recognition of handwritten digits"
test set inside its wheel, so this builder prepares a real dataset without any network.
The split is fixed and stratified, 80/20: 1437 train and 360 test examples, the same
examples in the same order as `load_digits_split()`, which scikit-learn baselines use.

Importing this module registers the builder under the name 'digits' (TFDS registers every
`DatasetBuilder` subclass by its snake-cased class name); nothing else happens on import.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

NUM_CLASSES = 10
IMAGE_SHAPE = (8, 8, 1)
MAX_PIXEL = 16  # scikit-learn's digits are counts of set pixels in 4x4 blocks: 0..16
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns scikit-learn's digits with jaxlab's fixed stratified 80/20 split.

    Returns `(x_train, y_train, x_test, y_test)`: images of shape (N, 8, 8) as float64 in
    0..16 (scikit-learn's own scale) and int labels, N = 1437 train and 360 test. The
    `digits` TFDS builder yields exactly these examples, in this order, mapped to uint8.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images,
        digits.target,
        test_size=TEST_FRACTION,
        stratify=digits.target,
        random_state=SPLIT_SEED,
    )
    return x_train, y_train, x_test, y_test


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Maps scikit-learn's 0..16 digit images to uint8 0..255 as round(v * 255 / 16)."""
    return np.round(np.asarray(images, np.float64) * 255.0 / MAX_PIXEL).astype(np.uint8)


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's handwritten digits (8x8 grey images, 10 classes), fixed 80/20 split."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Stratified 80/20 split of sklearn.datasets.load_digits()."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "scikit-learn's bundled handwritten digits (UCI optical recognition of "
                "handwritten digits, test part): 1797 images of 8x8 pixels in 0..16, mapped "
                "to uint8 by round(v * 255 / 16). Split with train_test_split(test_size=0.2, "
                "stratify=y, random_state=0)."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=IMAGE_SHAPE, dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
            # Keep the order of load_digits_split(), so TFDS and scikit-learn see the same list.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        del dl_manager  # the data ships with scikit-learn
        x_train, y_train, x_test, y_test = load_digits_split()
        return {
            "train": self._generate_examples(x_train, y_train),
            "test": self._generate_examples(x_test, y_test),
        }

    def _generate_examples(
        self, images: np.ndarray, labels: np.ndarray
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, (image, label) in enumerate(zip(to_uint8(images), labels, strict=True)):
            yield index, {"image": image[..., None], "label": int(label)}
