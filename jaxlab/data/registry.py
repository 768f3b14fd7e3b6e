"""The dataset registry, and the functions the loop calls, dispatched by `config.dataset.name`.

A dataset is a source object (any object with the methods of `DataSource`) registered under
a name with `register_dataset`; `list_datasets()` lists the names. The built-in sources are
registered in `jaxlab/data/__init__.py`: the TFDS datasets (`jaxlab.data.tfds_source`) and
the generated ones (`jaxlab.data.generated`).

The loop calls, in order: `validate_data_config` (no I/O), `get_dataset_info`,
`steps_per_epoch` / `num_eval_batches`, then `create_train_iterator(..., state=saved)` once
and `create_eval_iterator` per evaluation. All batches are process-local numpy dicts.

Checks common to every source live here (the name, the batch sizes against the process
count, `prefetch`, `num_views`); each source's `validate` checks the keys it reads, and says
which common options it does not support. Every check raises a one-line `ConfigError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data.features import DatasetInfo

Batch = dict[str, np.ndarray]


@runtime_checkable
class DataSource(Protocol):
    """What a dataset provides. Train batches of step `s` must depend on (config, s) alone,
    so that starting at step `s` yields exactly what a stream started at 0 yields from `s`
    on; with `process_count` P, the union of the P local batches of a step is the batch of
    a single process ('interleave'). Eval yields `num_eval_batches` batches per process,
    padded with zero examples of 'mask' 0, every example with mask 1 exactly once overall."""

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None: ...

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo: ...

    def steps_per_epoch(self, config: ml_collections.ConfigDict, info: DatasetInfo) -> int: ...

    def num_eval_batches(
        self, config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
    ) -> int: ...

    def train_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        start_step: int,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]: ...

    def eval_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]: ...


_SOURCES: dict[str, DataSource] = {}
_METHODS = (
    "validate",
    "info",
    "steps_per_epoch",
    "num_eval_batches",
    "train_iterator",
    "eval_iterator",
)


def register_dataset(name: str, source: DataSource, *, replace: bool = False) -> None:
    """Makes `source` the dataset `config.dataset.name == name` selects."""
    if not isinstance(source, DataSource):
        missing = [m for m in _METHODS if not callable(getattr(source, m, None))]
        raise TypeError(f"dataset source {name!r} lacks the methods {', '.join(missing)}")
    if name in _SOURCES and not replace:
        raise ValueError(f"dataset {name!r} is already registered (pass replace=True)")
    _SOURCES[name] = source


def list_datasets() -> list[str]:
    """The names `config.dataset.name` accepts, sorted."""
    return sorted(_SOURCES)


def get_source(name: str) -> DataSource:
    """The source registered as `name`; ConfigError naming the valid ones otherwise."""
    check_choice("dataset", name, list_datasets())
    return _SOURCES[name]


def num_views(config: ml_collections.ConfigDict) -> int:
    """`config.dataset.num_views` (0 when the config predates the key)."""
    return config.dataset.get("num_views", 0)


def normalize_images(config: ml_collections.ConfigDict) -> bool:
    """`config.dataset.normalize`: whether image pipelines standardize pixels with the
    dataset's mean and std (True, the classifiers) or leave them in [0, 1] (False, the
    generative models); True when the config predates the key."""
    return config.dataset.get("normalize", True)


def validate_data_config(config: ml_collections.ConfigDict, process_count: int = 1) -> None:
    """Checks `config.dataset` and the batch sizes without reading any data.

    Raises ConfigError for an unknown dataset name, a batch size or eval batch size that is
    not a positive multiple of `process_count`, a negative `prefetch`, a `num_views` other
    than 0 or >= 2, a `normalize` that is not a bool, and whatever the dataset's own
    `validate` rejects.
    """
    check_positive("process_count", process_count, integer=True)
    source = get_source(config.dataset.name)
    for key in ("batch_size", "eval_batch_size"):
        value = config[key]
        check_positive(key, value, integer=True)
        if value % process_count:
            raise ConfigError(
                f"{key} {value} is not divisible by the process count {process_count}; "
                f"use a multiple of {process_count}"
            )
    check_positive("dataset.prefetch", config.dataset.prefetch, allow_zero=True, integer=True)
    views = num_views(config)
    check_positive("dataset.num_views", views, allow_zero=True, integer=True)
    if views == 1:
        raise ConfigError("dataset.num_views must be 0 (one image per example) or >= 2, got 1")
    if not isinstance(normalize_images(config), bool):
        raise ConfigError(
            f"dataset.normalize must be True or False, got {config.dataset.normalize!r}"
        )
    source.validate(config, process_count)


def get_dataset_info(config: ml_collections.ConfigDict) -> DatasetInfo:
    """The DatasetInfo of `config.dataset` (TFDS: prepares an offline dataset on first use).

    Raises ConfigError for an unknown dataset or split, or data that is not there.
    """
    validate_data_config(config)
    return get_source(config.dataset.name).info(config)


def steps_per_epoch(config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
    """Global train batches in one epoch; ConfigError when the batch leaves it empty."""
    return get_source(config.dataset.name).steps_per_epoch(config, info)


def num_eval_batches(
    config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
) -> int:
    """Eval batches every process yields (the same number everywhere, padded)."""
    validate_data_config(config, process_count)
    return get_source(config.dataset.name).num_eval_batches(config, info, process_count)


def check_process(process_index: int, process_count: int) -> None:
    """ConfigError unless 0 <= process_index < process_count."""
    if not (isinstance(process_count, int) and process_count >= 1):
        raise ConfigError(f"process_count must be an integer >= 1, got {process_count!r}")
    if not (isinstance(process_index, int) and 0 <= process_index < process_count):
        raise ConfigError(f"process_index must be in [0, {process_count}), got {process_index!r}")


class TrainIterator(Iterator[Batch]):
    """A train stream that knows its position: `get_state()` after `n` batches from step `s`
    is {'step': s + n}, and `create_train_iterator(..., state=it.get_state())` continues
    exactly there.

    The position is a step count because every source's batches are a pure function of
    (config, step). clu's `DatasetIterator` is not used: its checkpoints are files of a
    tf.data iterator's internal state, tied to TensorFlow and the graph, while this state is
    a small JSON dict the loop stores with its own checkpoint, for any source.
    """

    def __init__(self, batches: Iterator[Batch], step: int):
        self._batches, self._step = batches, step

    def __next__(self) -> Batch:
        batch = next(self._batches)
        self._step += 1
        return batch

    def get_state(self) -> dict[str, Any]:
        """JSON-serializable position after the batches yielded so far."""
        return {"step": self._step}


def _start_step(start_step: int, state: dict[str, Any] | None) -> int:
    if state is not None:
        step = state.get("step") if isinstance(state, dict) else None
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ConfigError(
                f"data iterator state must be {{'step': n}} with an integer n >= 0, got {state!r}"
            )
        return step
    if isinstance(start_step, bool) or not (isinstance(start_step, int) and start_step >= 0):
        raise ConfigError(f"start_step must be an integer >= 0, got {start_step!r}")
    return start_step


def create_train_iterator(
    config: ml_collections.ConfigDict,
    info: DatasetInfo,
    *,
    start_step: int = 0,
    process_index: int = 0,
    process_count: int = 1,
    state: dict[str, Any] | None = None,
) -> TrainIterator:
    """The infinite train stream of this process's batches from global step `start_step`
    (or from `state`, a `get_state()` of an earlier iterator, which wins over start_step).

    Batches hold `batch_size // process_count` examples with the keys of `info.features`.
    """
    validate_data_config(config, process_count)
    check_process(process_index, process_count)
    step = _start_step(start_step, state)
    batches = get_source(config.dataset.name).train_iterator(
        config, info, start_step=step, process_index=process_index, process_count=process_count
    )
    return TrainIterator(batches, step)


def create_eval_iterator(
    config: ml_collections.ConfigDict,
    info: DatasetInfo,
    *,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[Batch]:
    """One pass over this process's part of the eval data: `num_eval_batches` batches of
    `eval_batch_size // process_count` examples with the keys of `info.eval_features` and
    'mask' (1 real, 0 padding); every eval example has mask 1 exactly once over all processes."""
    validate_data_config(config, process_count)
    check_process(process_index, process_count)
    return get_source(config.dataset.name).eval_iterator(
        config, info, process_index=process_index, process_count=process_count
    )
