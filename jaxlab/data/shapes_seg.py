"""The offline `shapes_seg` dataset: generated per-pixel segmentation as a TFDS builder.

16x16 RGB images of a grey background (class 0) with 1 to 3 rectangles or discs (4 to 9
pixels across) of classes 1..3, and their label maps with 255 (ignore) on a 1-pixel ring
around each shape (`jaxlab.data.generated.shapes_seg_examples` draws them with numpy from
fixed seeds): 400 train and 100 test examples, 4 classes.

Why a TFDS builder and not an in-memory numpy source like `toy2d`: segmentation is where
the joint augmentation ops matter (an image and its mask flipped and cropped together, the
mask padded with 255), and those are tf.data ops. As a builder, the dataset goes through the
same pipeline as every TFDS image dataset (and as a real segmentation set would): joint
augmentation, caching, 'interleave' and 'split' host sharding, padded eval. It costs a
preparation into the data dir on first use (well under a second, no network), like `digits`.

Importing this module registers the builder under the name 'shapes_seg'.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxlab.data import generated

SPLIT_SIZES = {"train": 400, "test": 100}
DATA_SEEDS = {"train": 11, "test": 12}


def load_shapes_seg_split(split: str) -> dict[str, np.ndarray]:
    """The examples of a split, in the builder's order: 'image' uint8 [N, 16, 16, 3], 'label'
    uint8 [N, 16, 16] (classes 0..3, 255 ignore)."""
    return generated.shapes_seg_examples(SPLIT_SIZES[split], DATA_SEEDS[split])


class ShapesSeg(tfds.core.GeneratorBasedBuilder):
    """Generated 16x16 segmentation: rectangles and discs of 3 classes on a background."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "jaxlab.data.generated.shapes_seg_examples, seeds 11 and 12."}

    def _info(self) -> tfds.core.DatasetInfo:
        size = generated.SHAPES_SIZE
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Generated segmentation: 16x16 RGB images of a grey background (class 0) "
                "with 1-3 rectangles or discs of classes 1..3 (reddish, greenish, bluish); "
                "label maps with 255 on a 1-pixel ring around each shape."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3), dtype=np.uint8),
                    "label": tfds.features.Tensor(shape=(size, size), dtype=np.uint8),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,  # keep the order of load_shapes_seg_split
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        del dl_manager  # generated
        return {split: self._generate_examples(split) for split in SPLIT_SIZES}

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
        examples = load_shapes_seg_split(split)
        for index, (image, label) in enumerate(
            zip(examples["image"], examples["label"], strict=True)
        ):
            yield index, {"image": image, "label": label}
