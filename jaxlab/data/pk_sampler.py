"""P x K batches for metric learning, and `nca_digits`: scikit-learn's digits split as its
NCA example splits them.

P x K sampling (Hermans, Beyer and Leibe 2017): each train batch holds `P` distinct classes
and `K` examples of each, so every anchor has K - 1 positives and (P - 1) K negatives to mine
from. `PKArraySource` adds it to any `ArraySource` as a dataset option:

    dataset.pk_classes  P (0: off, the ordinary shuffled epochs). K = batch_size / P.

Batch `s` is a pure function of (config.seed, s): its classes are a random P of the classes
(without replacement) and each class's K rows a random K of that class's examples (without
replacement when it has at least K, else with replacement), drawn from a numpy generator
seeded with (tag, seed, s). So resuming at any step is exact, and with several processes
process p keeps rows p, p + P, ... of the global batch ('interleave'). Rows come class by
class: [c1 x K, c2 x K, ...]. An "epoch" keeps its nominal length (train examples //
batch_size steps) for the schedule; no pass over the data is implied.

    nca_digits  {'image': image (8, 8, 1) float32, the 0..16 pixel counts / 16,
                'label': label () int32}, 10 classes: `load_digits()` split by
                `train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)`, the
                split of scikit-learn's "Dimensionality Reduction with Neighborhood
                Components Analysis" example: 'train' 898 and 'test' 899 images, in that
                function's order. kNN with k = 3 on an embedding of these splits
                (`evaluators.knn` with k 3 and metric 'l2') is that example's score.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_positive
from jaxlab.data.features import DatasetInfo, Feature
from jaxlab.data.generated import ArraySource, _check_options, _frozen
from jaxlab.data.registry import Batch

_PK_TAG = 0x9B47  # keeps the P x K draws apart from any other use of config.seed
NCA_TEST_SIZE = 0.5
NCA_SPLIT_SEED = 0
NCA_DIGITS_SIZES = {"train": 898, "test": 899}


def pk_classes(config: ml_collections.ConfigDict) -> int:
    """`config.dataset.pk_classes` (0 when the config lacks the key)."""
    return config.dataset.get("pk_classes", 0)


def pk_batch_rows(
    labels: np.ndarray, num_classes: int, per_class: int, seed: int, step: int
) -> np.ndarray:
    """int [P * K] row indices of the P x K batch of `step` (see the module docstring):
    `num_classes` P classes drawn without replacement among the labels present, then
    `per_class` K rows of each, class by class."""
    rng = np.random.default_rng(np.random.SeedSequence([_PK_TAG, seed % 2**64, step]))
    present = np.unique(labels)
    chosen = rng.choice(present, size=num_classes, replace=False)
    rows = []
    for cls in chosen:
        members = np.flatnonzero(labels == cls)
        rows.append(rng.choice(members, size=per_class, replace=len(members) < per_class))
    return np.concatenate(rows)


class PKArraySource(ArraySource):
    """An `ArraySource` whose train stream is P x K batches when `dataset.pk_classes` > 0
    (see the module docstring); a label feature named 'label' is required then."""

    def check_pk(self, config: ml_collections.ConfigDict) -> None:
        """ConfigError unless `dataset.pk_classes` is 0 or a P with 2 <= P <= classes
        present that divides batch_size into K >= 2 examples per class."""
        p = pk_classes(config)
        check_positive("dataset.pk_classes", p, allow_zero=True, integer=True)
        if p == 0:
            return
        labels = self.examples(config.dataset.train_split)["label"]
        present = len(np.unique(labels))
        if not 2 <= p <= present:
            raise ConfigError(
                f"dataset.pk_classes must be 0 (off) or in [2, {present}] (the classes of "
                f"split {config.dataset.train_split!r}), got {p}"
            )
        if config.batch_size % p or config.batch_size // p < 2:
            raise ConfigError(
                f"batch_size {config.batch_size} must be a multiple K * dataset.pk_classes "
                f"{p} with K >= 2 examples per class"
            )

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        super().validate(config, process_count)
        self.check_pk(config)

    def train_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        start_step: int,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        p = pk_classes(config)
        if p == 0:
            yield from super().train_iterator(
                config,
                info,
                start_step=start_step,
                process_index=process_index,
                process_count=process_count,
            )
            return
        arrays = self.examples(config.dataset.train_split)
        k = config.batch_size // p
        step = start_step
        while True:
            rows = pk_batch_rows(arrays["label"], p, k, config.seed, step)
            rows = rows[process_index::process_count]
            yield {key: value[rows] for key, value in arrays.items()}
            step += 1


@functools.cache
def nca_digits_examples(split: str) -> dict[str, np.ndarray]:
    """All examples of a split of `nca_digits` ('train' or 'test'): 'image' float32
    [N, 8, 8, 1] in [0, 1] and 'label' int32 [N]; KeyError for another split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in NCA_DIGITS_SIZES:
        raise KeyError(split)
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=NCA_TEST_SIZE, stratify=y, random_state=NCA_SPLIT_SEED
    )
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    images = (x.reshape(-1, 8, 8, 1) / 16.0).astype(np.float32)
    return _frozen({"image": images, "label": y.astype(np.int32)})


class NcaDigits(PKArraySource):
    """scikit-learn's digits with the split of its NCA example (see the module docstring)."""

    features = {
        "image": Feature((8, 8, 1), "float32", "image"),
        "label": Feature((), "int32", "label"),
    }
    num_classes = 10

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        _check_options(config, process_count, tuple(NCA_DIGITS_SIZES))
        self.check_pk(config)

    def examples(self, split: str) -> dict[str, np.ndarray]:
        return nca_digits_examples(split)


PK_SOURCES = {"nca_digits": NcaDigits()}
