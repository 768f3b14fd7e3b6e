"""Feature specs: what one example of a dataset holds, and `DatasetInfo`, which the loop reads.

A dataset declares its examples as a dict of named features. Each `Feature` gives the
per-example shape, the numpy dtype name and a kind, which tells the augmentation ops
(`jaxlab.data.augment`) how to handle the feature:

    image   float32 [H, W, C]     pixels; geometric and colour ops, cutout
    mask    int32 [H, W]          per-pixel labels moved with the image (same flip / crop,
                                  nearest-neighbour resize, padding with `ignore_value`)
    clip    float32 [T, H, W, C]  frames sharing one draw of every op
    tokens  int32 [T]             token ids (never augmented)
    label   int32 []              a class index (never augmented)
    vector  float32 [D]           anything else per example (never augmented)

Batches are dicts of numpy arrays with a leading batch axis. Eval batches also hold 'mask'
float32 [B]: 1 for a real example, 0 for padding (`padding_example`, `pad_batch`).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxlab.config import ConfigError

KINDS = ("image", "mask", "clip", "tokens", "label", "vector")
SPATIAL_KINDS = ("image", "mask", "clip")  # moved together by the geometric ops
EVAL_MASK = "mask"  # the key of the padding mask in eval batches


@dataclasses.dataclass(frozen=True)
class Feature:
    """One feature of an example: per-example `shape`, numpy `dtype` name, `kind` (one of
    KINDS) and, for masks and labels, the label that means 'ignore this one' (e.g. 255)."""

    shape: tuple[int, ...]
    dtype: str
    kind: str
    ignore_value: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}; valid kinds: {', '.join(KINDS)}")
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype).name)

    def zeros(self, batch_size: int) -> np.ndarray:
        """A batch of `batch_size` zero examples of this feature."""
        return np.zeros((batch_size, *self.shape), self.dtype)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the model and the loop need to know about a dataset and the configured splits.

    `features` describe the train examples after preprocessing (and views, see
    `config.dataset.num_views`), `eval_features` the eval examples (without 'mask').
    Example counts are those the iterators walk: for token streams, the windows of one epoch.
    """

    name: str
    features: dict[str, Feature]
    eval_features: dict[str, Feature]
    num_classes: int | None  # classes of 'label' (or of a mask); None for unlabeled data
    num_train_examples: int
    num_eval_examples: int
    vocab_size: int | None = None  # for token features

    @property
    def image_shape(self) -> tuple[int, ...]:
        """[H, W, C] of the 'image' feature (of eval examples when train ones carry 'views')."""
        for features in (self.features, self.eval_features):
            if "image" in features:
                return features["image"].shape
        raise ConfigError(
            f"dataset {self.name!r} has no 'image' feature "
            f"(its features: {', '.join(self.features)})"
        )

    def example_batch(self, batch_size: int, train: bool = True) -> dict[str, np.ndarray]:
        """Zeros shaped like a batch of `batch_size` train (or eval, with 'mask') examples."""
        if not train:
            return pad_batch({}, self.eval_features, batch_size)
        return {key: feature.zeros(batch_size) for key, feature in self.features.items()}


def padding_example(features: Mapping[str, Feature]) -> dict[str, np.ndarray]:
    """One padding example: zeros of every feature and 'mask' 0 (float32 scalars)."""
    return {
        **{key: np.zeros(f.shape, f.dtype) for key, f in features.items()},
        EVAL_MASK: np.float32(0.0),
    }


def pad_batch(
    batch: Mapping[str, np.ndarray], features: Mapping[str, Feature], size: int
) -> dict[str, np.ndarray]:
    """`batch` (real examples; empty for none) padded with zero examples to `size`, with 'mask'.

    Every feature of `features` must be in a non-empty `batch`; the padding follows the
    spec, so a batch that does not match it fails here rather than in a compiled step.
    """
    count = len(next(iter(batch.values()))) if batch else 0
    if count > size:
        raise ValueError(f"a batch of {count} examples does not fit {size}")
    out = {}
    for key, feature in features.items():
        pad = feature.zeros(size - count)
        if not batch:
            out[key] = pad
            continue
        value = np.asarray(batch[key])
        if value.shape[1:] != feature.shape or value.dtype != feature.dtype:
            raise ValueError(
                f"feature {key!r} is {value.dtype} {value.shape[1:]} per example; "
                f"its spec says {feature.dtype} {feature.shape}"
            )
        out[key] = np.concatenate([value, pad])
    mask = np.zeros(size, np.float32)
    mask[:count] = 1.0
    out[EVAL_MASK] = mask
    return out


def full_batches_per_epoch(config: Any, info: DatasetInfo) -> int:
    """Full global batches in one pass over the train split (the remainder is dropped);
    ConfigError when the batch is larger than the split."""
    steps = info.num_train_examples // config.batch_size
    if steps == 0:
        raise ConfigError(
            f"batch_size {config.batch_size} is larger than the {info.num_train_examples} "
            f"examples of {info.name} split {config.dataset.train_split!r}; "
            f"use a batch_size of at most {info.num_train_examples}"
        )
    return steps
