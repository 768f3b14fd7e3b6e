"""The datasets jaxlab knows, their TFDS builders, sizes and the checks of `config.dataset`.

Everything here runs before training starts and raises `ConfigError` (one line naming the
problem and the valid choices) for any bad input: an unknown dataset, split or augment op,
a dataset that is not prepared in the data dir (this machine cannot download), a batch size
that does not divide among the processes or leaves an epoch empty.

Example counts come from the data as TFDS yields it (`as_dataset(...).cardinality()`, which
TFDS sets from its metadata without reading a record), not from `info.splits` alone: under
`tfds.testing.mock_data` the metadata is absent or describes the real dataset while the
mocked `as_dataset` yields `num_examples` random examples for any split, and the counts
reported here must match what the iterators yield.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import os

import ml_collections
import tensorflow_datasets as tfds

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data import digits as _digits  # noqa: F401  (registers the 'digits' builder)
from jaxlab.data.preprocess import FIXED_SIZE, NORMALIZATION, parse_augment

TRAIN_HOST_SHARDING = ("interleave", "split")
OFFLINE_DATASETS = ("digits",)  # prepared from files that ship with an installed package
# Datasets whose files TFDS cannot download itself: where to get them.
MANUAL_DOWNLOAD = {
    "imagenet2012": "put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (from "
    "image-net.org, after registering) in a folder DIR",
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the model and the loop need to know about a dataset and the configured splits."""

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]  # H, W, C of the preprocessed image
    num_train_examples: int  # size of config.dataset.train_split
    num_eval_examples: int  # size of config.dataset.eval_split


def list_datasets() -> list[str]:
    """Returns the names `config.dataset.name` accepts, sorted."""
    return sorted(NORMALIZATION)


def resolve_data_dir(config: ml_collections.ConfigDict) -> str:
    """config.dataset.data_dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets (expanded)."""
    data_dir = config.dataset.data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return os.path.abspath(os.path.expanduser(data_dir))


def validate_data_config(config: ml_collections.ConfigDict, process_count: int = 1) -> None:
    """Checks `config.dataset` and the batch sizes without reading any data.

    Raises ConfigError for an unknown dataset name, an unknown augment op, an unknown
    `train_host_sharding`, a batch size or eval batch size that is not a positive multiple
    of `process_count`, a negative `shuffle_buffer` or `prefetch`.
    """
    check_positive("process_count", process_count, integer=True)
    check_choice("dataset", config.dataset.name, list_datasets())
    parse_augment(config.dataset.augment)
    check_choice(
        "dataset.train_host_sharding", config.dataset.train_host_sharding, TRAIN_HOST_SHARDING
    )
    for key in ("batch_size", "eval_batch_size"):
        value = config[key]
        check_positive(key, value, integer=True)
        if value % process_count:
            raise ConfigError(
                f"{key} {value} is not divisible by the process count {process_count}; "
                f"use a multiple of {process_count}"
            )
    check_positive(
        "dataset.shuffle_buffer", config.dataset.shuffle_buffer, allow_zero=True, integer=True
    )
    check_positive("dataset.prefetch", config.dataset.prefetch, allow_zero=True, integer=True)


@contextlib.contextmanager
def _file_lock(path: str):
    """Holds an exclusive lock on `path` (processes preparing the same data dir take turns)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_offline(builder: tfds.core.DatasetBuilder, data_dir: str) -> None:
    """Prepares an offline dataset into `data_dir` unless another process already did."""
    os.makedirs(data_dir, exist_ok=True)
    with _file_lock(os.path.join(data_dir, f".{builder.name}.lock")):
        if not builder.is_prepared():
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(try_download_gcs=False)
            )


def get_builder(config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
    """The TFDS builder of `config.dataset.name`, prepared and readable.

    `digits` is prepared into the data dir on first use (no network needed). Any other
    dataset must already be prepared there, else ConfigError with how to prepare it.
    """
    name = config.dataset.name
    check_choice("dataset", name, list_datasets())
    data_dir = resolve_data_dir(config)
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if name in OFFLINE_DATASETS:
        _prepare_offline(builder, data_dir)
        # A fresh builder reads the metadata written by whichever process prepared it.
        return tfds.builder(name, data_dir=data_dir)
    try:  # succeeds only where TFDS is mocked (tfds.testing.mock_data) and needs no files
        builder.as_dataset(split=config.dataset.train_split)
    except Exception:  # TFDS raises AssertionError, ValueError, ...
        how = f"`tfds build {name} --data_dir {data_dir}`"
        if name in MANUAL_DOWNLOAD:
            how = (
                f"{MANUAL_DOWNLOAD[name]}, then "
                f"`tfds build {name} --manual_dir DIR --data_dir {data_dir}`"
            )
        raise ConfigError(
            f"dataset {name!r} is not prepared in {data_dir} (this machine cannot download); "
            f"prepare it where there is network with {how} "
            f"and copy it here, or use the offline 'digits' dataset"
        ) from None
    return builder


def _check_split(builder: tfds.core.DatasetBuilder, key: str, split: str) -> None:
    """Raises ConfigError unless `split` names data of the builder (sub-splits allowed)."""
    splits = builder.info.splits
    if not splits:  # mocked TFDS without metadata: TFDS accepts any split name
        return
    try:
        splits[split]  # noqa: B018  (parses 'train[:90%]', 'train+test', ...)
    except Exception:  # KeyError, ValueError, ... depending on the expression
        raise ConfigError(
            f"unknown {key} {split!r} for dataset {builder.name!r}; valid splits: "
            f"{', '.join(sorted(splits))} (or sub-splits such as 'train[:90%]')"
        ) from None


def count_examples(builder: tfds.core.DatasetBuilder, split: str | object) -> int:
    """Number of examples `builder.as_dataset(split=split)` yields (read once if unknown)."""
    ds = builder.as_dataset(split=split, shuffle_files=False)
    count = int(ds.cardinality())
    if count < 0:  # unknown cardinality: count by reading (never with real TFDS data)
        count = int(ds.reduce(0, lambda n, _: n + 1))
    return count


def process_split_sizes(
    builder: tfds.core.DatasetBuilder, split: str, process_count: int
) -> list[int]:
    """Examples in each process's `tfds.split_for_jax_process` part of `split`.

    With prepared data the sizes come from the metadata without reading; where the metadata
    does not describe what `as_dataset` yields (mocked TFDS), each part is counted.
    """
    parts = [
        tfds.split_for_jax_process(split, process_index=p, process_count=process_count)
        for p in range(process_count)
    ]
    splits = builder.info.splits
    if splits and splits[split].num_examples == count_examples(builder, split):
        return [splits[part].num_examples for part in parts]
    return [count_examples(builder, part) for part in parts]


def get_dataset_info(config: ml_collections.ConfigDict) -> DatasetInfo:
    """Returns the DatasetInfo of `config.dataset`, preparing `digits` on first use.

    Raises ConfigError for an unknown dataset or split, or a dataset not prepared in the
    data dir (`config.dataset.data_dir`, else $TFDS_DATA_DIR, else ~/tensorflow_datasets).
    """
    builder = get_builder(config)
    _check_split(builder, "dataset.train_split", config.dataset.train_split)
    _check_split(builder, "dataset.eval_split", config.dataset.eval_split)
    features = builder.info.features
    shape = features["image"].shape
    fixed = FIXED_SIZE.get(config.dataset.name)
    if fixed is not None:  # images of varying sizes, decoded to a fixed square
        shape = (fixed.size, fixed.size, shape[-1])
    return DatasetInfo(
        name=config.dataset.name,
        num_classes=int(features["label"].num_classes),
        image_shape=tuple(int(d) for d in shape),
        num_train_examples=count_examples(builder, config.dataset.train_split),
        num_eval_examples=count_examples(builder, config.dataset.eval_split),
    )


def steps_per_epoch(config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
    """Full global batches in one pass over the train split (the remainder is dropped)."""
    steps = info.num_train_examples // config.batch_size
    if steps == 0:
        raise ConfigError(
            f"batch_size {config.batch_size} is larger than the {info.num_train_examples} "
            f"examples of {info.name} split {config.dataset.train_split!r}; "
            f"use a batch_size of at most {info.num_train_examples}"
        )
    return steps


def num_eval_batches(
    config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
) -> int:
    """Eval batches every process yields: enough for the largest process's part of the split.

    Every process yields this many (padding with masked examples), since a multi-process
    jit needs the same number of steps everywhere.
    """
    validate_data_config(config, process_count)
    local_batch = config.eval_batch_size // process_count
    if process_count == 1:
        largest = info.num_eval_examples
    else:
        sizes = process_split_sizes(get_builder(config), config.dataset.eval_split, process_count)
        largest = max(sizes)
    return math.ceil(largest / local_batch)
