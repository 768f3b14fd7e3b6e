"""MNIST-1D (Greydanus 2020): ten 1-D digit templates, randomly padded, translated,
scaled, sheared and noised into sequences of 40 scalars, generated here from the `mnist1d`
package's default arguments and fixed seed (42): 4,000 train and 1,000 test examples.

    mnist1d  {'x': vector (40, 1) float32 (a sequence of 40 scalars, one feature per step),
             'label': label () int32}, 10 classes. Served by `ArraySource` (a fresh
             permutation per epoch from (config.seed, epoch), padded eval passes).

The data are made with the package's `make_dataset(get_dataset_args())`, which is what
`get_dataset(args, download=False, regenerate=True)` runs, without that function's side
effects: it would first try to read (and then write) './mnist1d_data.pkl' in the current
folder. `make_dataset` seeds Python's and numpy's global generators; their states are
restored afterwards, so generating the data changes nothing else in the process.
"""

from __future__ import annotations

import functools
import random

import numpy as np

from jaxlab.data.features import Feature
from jaxlab.data.generated import ArraySource, _frozen

MNIST1D_LENGTH = 40
MNIST1D_CLASSES = 10


def generate_mnist1d(**overrides: object) -> dict[str, np.ndarray]:
    """The package's dataset dict (`make_dataset`) for its default arguments with
    `overrides` (e.g. num_samples), leaving the global random states as they were."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args(as_dict=True)
    args.update(overrides)
    from mnist1d.utils import ObjectView

    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(ObjectView(args))
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@functools.cache
def mnist1d_examples(split: str) -> dict[str, np.ndarray]:
    """All examples of a split ('train' or 'test'): 'x' float32 [N, 40, 1], 'label' int32 [N]."""
    data = _mnist1d_arrays()
    suffix = "" if split == "train" else "_test"
    x = data["x" + suffix].astype(np.float32)[..., None]
    return _frozen({"x": x, "label": data["y" + suffix].astype(np.int32)})


@functools.cache
def _mnist1d_arrays() -> dict[str, np.ndarray]:
    return generate_mnist1d()


class Mnist1D(ArraySource):
    """MNIST-1D for sequence classification (see the module docstring)."""

    features = {
        "x": Feature((MNIST1D_LENGTH, 1), "float32", "vector"),
        "label": Feature((), "int32", "label"),
    }
    num_classes = MNIST1D_CLASSES

    def examples(self, split: str) -> dict[str, np.ndarray]:
        return mnist1d_examples(split)


MNIST1D_SOURCES = {"mnist1d": Mnist1D()}
