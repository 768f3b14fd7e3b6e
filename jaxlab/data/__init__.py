"""Input pipelines: TFDS datasets by name, preprocessing, train-only augmentation, host sharding.

The loop calls, in order: `validate_data_config` (no I/O), `get_dataset_info` (prepares the
offline `digits` dataset on first use), `steps_per_epoch` / `num_eval_batches`, then
`create_train_iterator(..., start_step=step)` once and `create_eval_iterator` per evaluation.
Batches are process-local numpy dicts; see `jaxlab.data.pipeline`.

Importing this package only registers the `digits` TFDS builder; TensorFlow is kept off the
GPUs when a pipeline is built, not at import.
"""

from jaxlab.data.datasets import (
    DatasetInfo,
    get_dataset_info,
    list_datasets,
    num_eval_batches,
    steps_per_epoch,
    validate_data_config,
)
from jaxlab.data.digits import load_digits_split
from jaxlab.data.pipeline import create_eval_iterator, create_train_iterator
from jaxlab.data.preprocess import AUGMENT_OPS

__all__ = [
    "AUGMENT_OPS",
    "DatasetInfo",
    "create_eval_iterator",
    "create_train_iterator",
    "get_dataset_info",
    "list_datasets",
    "load_digits_split",
    "num_eval_batches",
    "steps_per_epoch",
    "validate_data_config",
]
