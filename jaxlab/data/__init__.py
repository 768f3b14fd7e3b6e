"""Input pipelines: datasets as dicts of features, by name, with train-only augmentation.

The loop calls, in order: `validate_data_config` (no I/O), `get_dataset_info` (prepares an
offline TFDS dataset on first use), `steps_per_epoch` / `num_eval_batches`, then
`create_train_iterator(..., state=saved)` once and `create_eval_iterator` per evaluation.
Batches are process-local numpy dicts with the keys of `DatasetInfo.features` (train) and
`DatasetInfo.eval_features` plus 'mask' (eval); see `jaxlab.data.registry`.

The datasets (`list_datasets()`), registered below:
- TFDS image datasets (`tfds_source.TFDS_SOURCES`): cifar10, cifar100, digits (offline),
  fashion_mnist, imagenet2012, mnist, shapes_seg (offline, generated segmentation);
- generated in memory (`generated.GENERATED_SOURCES`): markov_tokens, toy2d.

Importing this package loads neither TensorFlow nor TFDS: the TFDS sources import them on
first use, so the generated datasets run without them. TensorFlow is kept off the GPUs when
a pipeline is built.
"""

from typing import Any

from jaxlab.data.features import KINDS, DatasetInfo, Feature
from jaxlab.data.generated import GENERATED_SOURCES
from jaxlab.data.registry import (
    DataSource,
    TrainIterator,
    create_eval_iterator,
    create_train_iterator,
    get_dataset_info,
    get_source,
    list_datasets,
    num_eval_batches,
    register_dataset,
    steps_per_epoch,
    validate_data_config,
)
from jaxlab.data.tfds_source import TFDS_SOURCES, TfdsSource

for _name, _source in {**TFDS_SOURCES, **GENERATED_SOURCES}.items():
    register_dataset(_name, _source)


def __getattr__(name: str) -> Any:
    """`AUGMENT_OPS` and `load_digits_split`, imported on first use (they load TensorFlow
    and scikit-learn)."""
    if name == "AUGMENT_OPS":
        from jaxlab.data.augment import AUGMENT_OPS

        return AUGMENT_OPS
    if name == "load_digits_split":
        from jaxlab.data.digits import load_digits_split

        return load_digits_split
    raise AttributeError(f"module 'jaxlab.data' has no attribute {name!r}")


__all__ = [
    "AUGMENT_OPS",
    "KINDS",
    "DataSource",
    "DatasetInfo",
    "Feature",
    "TfdsSource",
    "TrainIterator",
    "create_eval_iterator",
    "create_train_iterator",
    "get_dataset_info",
    "get_source",
    "list_datasets",
    "load_digits_split",
    "num_eval_batches",
    "register_dataset",
    "steps_per_epoch",
    "validate_data_config",
]

from jaxlab.data.seq_tasks import SEQ_TASK_SOURCES  # noqa: E402

for _name, _source in SEQ_TASK_SOURCES.items():
    register_dataset(_name, _source)
