"""The TFDS image datasets as one kind of source, and the table of those jaxlab knows.

A `TfdsSource` is a TFDS dataset whose examples hold an 'image' and a 'label': a class
index (`label_kind` 'label', the builder's ClassLabel) or a per-pixel label map
(`label_kind` 'mask', e.g. `shapes_seg`). The work is done by `jaxlab.data.datasets`
(builders, splits, counts, checks) and `jaxlab.data.pipeline` (the tf.data iterators);
they are imported on first use, so that importing `jaxlab.data` and using a generated
dataset never loads TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import ml_collections

from jaxlab.data.features import DatasetInfo
from jaxlab.data.registry import Batch


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """A TFDS dataset of images with a class label or a per-pixel label map.

    `label_kind`: 'label' (a ClassLabel; its class count is the dataset's) or 'mask' (an
    [H, W] uint8 map of class ids, `num_classes` classes, `ignore_value` for 'ignore').
    `offline`: prepared into the data dir on first use, from files that ship with an
    installed package or generated data (no network). `manual_download`: where to get the
    files of a dataset TFDS cannot download itself (quoted in the error when missing).
    """

    label_kind: str = "label"
    num_classes: int | None = None
    ignore_value: int | None = None
    offline: bool = False
    manual_download: str = ""

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        from jaxlab.data import datasets

        datasets.validate_tfds_config(config, self)

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo:
        from jaxlab.data import datasets

        return datasets.get_dataset_info(config)

    def steps_per_epoch(self, config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
        from jaxlab.data import datasets

        return datasets.steps_per_epoch(config, info)

    def num_eval_batches(
        self, config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
    ) -> int:
        from jaxlab.data import datasets

        return datasets.num_eval_batches(config, info, process_count)

    def train_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        start_step: int,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        from jaxlab.data import pipeline

        return pipeline.create_train_iterator(
            config,
            info,
            start_step=start_step,
            process_index=process_index,
            process_count=process_count,
        )

    def eval_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        from jaxlab.data import pipeline

        return pipeline.create_eval_iterator(
            config, info, process_index=process_index, process_count=process_count
        )


TFDS_SOURCES: dict[str, TfdsSource] = {
    "cifar10": TfdsSource(),
    "cifar100": TfdsSource(),
    "digits": TfdsSource(offline=True),  # jaxlab.data.digits: scikit-learn's digits
    "fashion_mnist": TfdsSource(),
    "imagenet2012": TfdsSource(
        manual_download="put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (from "
        "image-net.org, after registering) in a folder DIR"
    ),
    "mnist": TfdsSource(),
    # jaxlab.data.shapes_seg: generated per-pixel segmentation.
    "shapes_seg": TfdsSource(label_kind="mask", num_classes=4, ignore_value=255, offline=True),
    # jaxlab.data.seg_digits: digit glyphs on crops of scikit-learn's sample photos (5 classes;
    # the builder is registered by jaxlab.data.datasets, which generated datasets never load).
    "seg_digits": TfdsSource(label_kind="mask", num_classes=5, ignore_value=255, offline=True),
}
