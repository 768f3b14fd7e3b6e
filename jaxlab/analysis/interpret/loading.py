"""A classifier run's model, variables, pixel space and data, rebuilt from its workdir (the
resolved config.json and an orbax checkpoint, as `jaxlab.analysis.ensemble` loads them)."""

from __future__ import annotations

import copy
import dataclasses

import ml_collections
import numpy as np

from jaxlab.analysis.attacks import PixelSpace
from jaxlab.analysis.ensemble import load_config, load_members
from jaxlab.analysis.interpret.probe import Probe
from jaxlab.config import ConfigError


@dataclasses.dataclass
class Run:
    """A loaded classifier run."""

    workdir: str
    step: int
    config: ml_collections.ConfigDict
    probe: Probe
    info: object  # jaxlab.data.DatasetInfo


def pixel_space(config: ml_collections.ConfigDict, channels: int) -> PixelSpace:
    """The run's input space: the dataset's normalization constants when the run
    standardized its images (`config.dataset.normalize`), else raw [0, 1] pixels."""
    from jaxlab.data.preprocess import NORMALIZATION
    from jaxlab.data.registry import normalize_images

    if normalize_images(config) and config.dataset.name in NORMALIZATION:
        norm = NORMALIZATION[config.dataset.name]
        return PixelSpace(tuple(norm.mean), tuple(norm.std))
    return PixelSpace((0.0,) * channels, (1.0,) * channels)


def load_run(workdir: str, which: str = "latest") -> Run:
    """The model of the classification run in `workdir` with the variables of its `which`
    ('latest' or 'best') checkpoint. Raises ConfigError for a directory that is not a
    finished classifier run."""
    from jaxlab.train.setup import build_experiment

    if which not in ("latest", "best"):
        raise ConfigError(f"unknown checkpoint choice {which!r}; valid choices: latest, best")
    config = load_config(workdir)
    config.evaluators = {}
    exp = build_experiment(config)
    model = getattr(exp.task, "model", None)
    if model is None or exp.info.num_classes is None or "label" not in exp.info.eval_features:
        raise ConfigError(
            f"{workdir!r} is a {config.task.name!r} run; interpret needs a classifier "
            "(a task with one model and labelled images)"
        )
    member = load_members(workdir, which)[0]
    space = pixel_space(config, exp.info.image_shape[-1])
    return Run(workdir, member.step, config, Probe(model, member.variables, space), exp.info)


def split_arrays(run: Run, split: str = "eval", limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, H, W, C] as the model sees them, labels [N]) of the run's eval split or
    (`split='train'`) its train split read in order without augmentation; the first `limit`
    examples when `limit` > 0."""
    from jaxlab import data

    config, info = run.config, run.info
    if split == "train":  # the train split through the eval pipeline (in order, no augment)
        config = copy.deepcopy(config)
        with config.unlocked():
            config.dataset.eval_split = config.dataset.train_split
        info = data.get_dataset_info(config)
    images, labels, count = [], [], 0
    for batch in data.create_eval_iterator(config, info):
        keep = batch["mask"] > 0
        images.append(np.asarray(batch["image"])[keep])
        labels.append(np.asarray(batch["label"])[keep])
        count += int(keep.sum())
        if 0 < limit <= count:
            break
    x, y = np.concatenate(images), np.concatenate(labels).astype(np.int32)
    return (x[:limit], y[:limit]) if limit > 0 else (x, y)
