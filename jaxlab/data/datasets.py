"""The TFDS datasets: their builders, splits, sizes, feature specs and config checks.

Everything here runs before training starts and raises `ConfigError` (one line naming the
problem and the valid choices) for any bad input: an unknown split or augment op, a dataset
that is not prepared in the data dir (this machine cannot download), a batch size that
leaves an epoch empty. Which datasets exist, and what kind of labels each has, is the table
`jaxlab.data.tfds_source.TFDS_SOURCES`.

Example counts come from the data as TFDS yields it (`as_dataset(...).cardinality()`, which
TFDS sets from its metadata without reading a record), not from `info.splits` alone: under
`tfds.testing.mock_data` the metadata is absent or describes the real dataset while the
mocked `as_dataset` yields `num_examples` random examples for any split, and the counts
reported here must match what the iterators yield.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os

import ml_collections
import tensorflow_datasets as tfds

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data import digits as _digits  # noqa: F401  (registers the 'digits' builder)
from jaxlab.data import seg_digits as _seg_digits  # noqa: F401  (registers 'seg_digits')
from jaxlab.data import shapes_seg as _shapes_seg  # noqa: F401  (registers 'shapes_seg')
from jaxlab.data.augment import parse_augment
from jaxlab.data.features import SPATIAL_KINDS, DatasetInfo, Feature, full_batches_per_epoch
from jaxlab.data.preprocess import FIXED_SIZE
from jaxlab.data.registry import get_source, num_views
from jaxlab.data.tfds_source import TfdsSource

TRAIN_HOST_SHARDING = ("interleave", "split")


def tfds_source(config: ml_collections.ConfigDict) -> TfdsSource:
    """The TfdsSource `config.dataset.name` names (ConfigError when it names none)."""
    source = get_source(config.dataset.name)
    if not isinstance(source, TfdsSource):
        raise ConfigError(f"dataset {config.dataset.name!r} is not a TFDS dataset")
    return source


def resolve_data_dir(config: ml_collections.ConfigDict) -> str:
    """config.dataset.data_dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets (expanded)."""
    data_dir = config.dataset.data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return os.path.abspath(os.path.expanduser(data_dir))


def validate_tfds_config(config: ml_collections.ConfigDict, source: TfdsSource) -> None:
    """Checks the keys a TFDS dataset reads, without reading any data.

    Raises ConfigError for an unknown augment op, an unknown `train_host_sharding`, a
    negative `shuffle_buffer`, or `num_views` >= 2 where views cannot be made (a dataset
    with masks, whose views would need one mask each; no augmentation to tell them apart).
    """
    ops = parse_augment(config.dataset.augment)
    check_choice(
        "dataset.train_host_sharding", config.dataset.train_host_sharding, TRAIN_HOST_SHARDING
    )
    check_positive(
        "dataset.shuffle_buffer", config.dataset.shuffle_buffer, allow_zero=True, integer=True
    )
    views = num_views(config)
    if views >= 2:
        name = config.dataset.name
        if source.label_kind in SPATIAL_KINDS:
            raise ConfigError(
                f"dataset.num_views {views} needs a dataset whose only spatial feature is its "
                f"image; {name!r} also has a {source.label_kind}"
            )
        if not ops and name not in FIXED_SIZE:
            raise ConfigError(
                f"dataset.num_views {views} needs dataset.augment ops (the views of {name!r} "
                "would all be the same image)"
            )


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
    source = tfds_source(config)
    data_dir = resolve_data_dir(config)
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if source.offline:
        _prepare_offline(builder, data_dir)
        # A fresh builder reads the metadata written by whichever process prepared it.
        return tfds.builder(name, data_dir=data_dir)
    try:  # succeeds only where TFDS is mocked (tfds.testing.mock_data) and needs no files
        builder.as_dataset(split=config.dataset.train_split)
    except Exception:  # TFDS raises AssertionError, ValueError, ...
        how = f"`tfds build {name} --data_dir {data_dir}`"
        if source.manual_download:
            how = (
                f"{source.manual_download}, then "
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


def example_features(
    config: ml_collections.ConfigDict, builder: tfds.core.DatasetBuilder
) -> dict[str, Feature]:
    """The spec of a preprocessed example ('image' float32, 'label' int32), before views."""
    source = tfds_source(config)
    tfds_features = builder.info.features
    shape = tfds_features["image"].shape
    fixed = FIXED_SIZE.get(config.dataset.name)
    if fixed is not None:  # images of varying sizes, decoded to a fixed square
        shape = (fixed.size, fixed.size, shape[-1])
    label_shape = tfds_features["label"].shape if source.label_kind == "mask" else ()
    return {
        "image": Feature(shape, "float32", "image"),
        "label": Feature(label_shape, "int32", source.label_kind, source.ignore_value),
    }


def get_dataset_info(config: ml_collections.ConfigDict) -> DatasetInfo:
    """Returns the DatasetInfo of `config.dataset`, preparing an offline dataset on first use.

    Train and eval examples have the same features, except that with `num_views` V >= 2
    train examples hold 'views' float32 [V, H, W, C] instead of 'image'. Raises
    ConfigError for an unknown dataset or split, or a dataset not prepared in the data dir
    (`config.dataset.data_dir`, else $TFDS_DATA_DIR, else ~/tensorflow_datasets).
    """
    source = tfds_source(config)
    builder = get_builder(config)
    _check_split(builder, "dataset.train_split", config.dataset.train_split)
    _check_split(builder, "dataset.eval_split", config.dataset.eval_split)
    eval_features = example_features(config, builder)
    features = dict(eval_features)
    views = num_views(config)
    if views >= 2:
        image = features.pop("image")
        features = {"views": Feature((views, *image.shape), image.dtype, "image"), **features}
    num_classes = source.num_classes
    if num_classes is None:
        num_classes = int(builder.info.features["label"].num_classes)
    return DatasetInfo(
        name=config.dataset.name,
        features=features,
        eval_features=eval_features,
        num_classes=num_classes,
        num_train_examples=count_examples(builder, config.dataset.train_split),
        num_eval_examples=count_examples(builder, config.dataset.eval_split),
    )


def steps_per_epoch(config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
    """Full global batches in one pass over the train split (the remainder is dropped)."""
    return full_batches_per_epoch(config, info)


def num_eval_batches(
    config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
) -> int:
    """Eval batches every process yields: enough for the largest process's part of the split.

    Every process yields this many (padding with masked examples), since a multi-process
    jit needs the same number of steps everywhere.
    """
    local_batch = config.eval_batch_size // process_count
    if process_count == 1:
        largest = info.num_eval_examples
    else:
        sizes = process_split_sizes(get_builder(config), config.dataset.eval_split, process_count)
        largest = max(sizes)
    return math.ceil(largest / local_batch)
