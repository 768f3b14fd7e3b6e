"""The offline `seg_digits` dataset: digit glyphs pasted on natural-image crops, per-pixel
labels (a TFDS builder, like `shapes_seg`).

32x32 RGB images: a background cut from one of scikit-learn's bundled photographs
(`sklearn.datasets.load_sample_images`: china.jpg, flower.jpg; a random square of 48 to
160 pixels, resized nearest-neighbour to 32x32) with one or two scikit-learn digit glyphs
of the digits 0..3 (8x8, upscaled 2x to 16x16) alpha-blended on it at random positions, each
in a random colour. Labels: 0 background, 1 + digit where the glyph's ink (intensity / 16)
is >= 0.5, 255 (ignore) on its faint rim (0.1 <= ink < 0.5); a later glyph covers an
earlier one. Classes: 5.

Why: `shapes_seg` (16x16, classes given by colour) is solved by colour alone, and its maps
are too small for output strides 8/16. Here the class is the glyph's shape, not its colour
(the colour is drawn independently of the class), so a per-pixel colour classifier can find
ink at best, never its digit: a network has to use context. Train glyphs come from the
first 1200 scikit-learn digits, test glyphs from the rest (unseen writers' samples).
Split sizes: 1000 train, 200 test. Deterministic for the fixed seeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

SIZE = 32
GLYPH_SCALE = 2
DIGITS = (0, 1, 2, 3)
NUM_CLASSES = 1 + len(DIGITS)
IGNORE = 255
INK, RIM = 0.5, 0.1
SPLIT_SIZES = {"train": 1000, "test": 200}
DATA_SEEDS = {"train": 21, "test": 22}
GLYPH_SPLIT = 1200  # train glyphs from digits[:1200], test from digits[1200:]


def seg_digits_examples(num_examples: int, seed: int, train_glyphs: bool) -> dict[str, np.ndarray]:
    """'image' uint8 [N, 32, 32, 3] and 'label' uint8 [N, 32, 32] (see the module doc)."""
    from sklearn.datasets import load_digits, load_sample_images

    photos = [np.asarray(p, np.float32) / 255.0 for p in load_sample_images().images]
    digits = load_digits()
    keep = np.isin(digits.target, DIGITS)
    index = np.arange(len(digits.target))
    part = index < GLYPH_SPLIT if train_glyphs else index >= GLYPH_SPLIT
    glyphs = digits.images[keep & part] / 16.0
    classes = 1 + np.searchsorted(DIGITS, digits.target[keep & part])
    rng = np.random.default_rng(seed)
    images = np.empty((num_examples, SIZE, SIZE, 3), np.uint8)
    labels = np.empty((num_examples, SIZE, SIZE), np.uint8)
    g = 8 * GLYPH_SCALE
    for n in range(num_examples):
        photo = photos[rng.integers(len(photos))]
        side = int(rng.integers(48, 161))
        y0 = rng.integers(0, photo.shape[0] - side + 1)
        x0 = rng.integers(0, photo.shape[1] - side + 1)
        grid = (np.arange(SIZE) * side) // SIZE
        image = photo[y0 + grid][:, x0 + grid].copy()
        label = np.zeros((SIZE, SIZE), np.uint8)
        for _ in range(rng.integers(1, 3)):
            k = rng.integers(len(glyphs))
            ink = np.kron(glyphs[k], np.ones((GLYPH_SCALE, GLYPH_SCALE)))
            colour = rng.uniform(0.0, 1.0, 3)
            gy, gx = rng.integers(0, SIZE - g + 1, 2)
            window = (slice(gy, gy + g), slice(gx, gx + g))
            image[window] = (1 - ink[..., None]) * image[window] + ink[..., None] * colour
            patch = label[window]
            patch[ink >= RIM] = IGNORE
            patch[ink >= INK] = classes[k]
        images[n] = np.round(np.clip(image, 0.0, 1.0) * 255)
        labels[n] = label
    return {"image": images, "label": labels}


def load_seg_digits_split(split: str) -> dict[str, np.ndarray]:
    """The examples of a split ('train' or 'test'), in the builder's order."""
    return seg_digits_examples(SPLIT_SIZES[split], DATA_SEEDS[split], split == "train")


class SegDigits(tfds.core.GeneratorBasedBuilder):
    """Generated 32x32 segmentation: digit glyphs 0..3 on crops of photographs."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "jaxlab.data.seg_digits.seg_digits_examples, seeds 21 and 22."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Digit glyphs 0..3 of scikit-learn's digits pasted in random colours on "
                "crops of scikit-learn's sample photographs; 255 on the glyphs' faint rim."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(SIZE, SIZE, 3), dtype=np.uint8),
                    "label": tfds.features.Tensor(shape=(SIZE, SIZE), dtype=np.uint8),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        del dl_manager  # generated
        return {split: self._generate_examples(split) for split in SPLIT_SIZES}

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
        examples = load_seg_digits_split(split)
        for index, (image, label) in enumerate(
            zip(examples["image"], examples["label"], strict=True)
        ):
            yield index, {"image": image, "label": label}
