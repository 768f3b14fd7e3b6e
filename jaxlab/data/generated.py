"""Generated datasets: numpy only, deterministic from fixed data seeds, no files, no TensorFlow.

    toy2d          2-D points from a mixture of 8 Gaussians on a ring of radius 2, std 0.02
                   (the "8 Gaussians" of the GAN papers): 4096 train and 1024 test points.
                   {'x': vector (2,) float32, 'label': label () int32 (the component)},
                   8 classes. Each epoch is a fresh permutation drawn from (config.seed,
                   epoch) (none when dataset.shuffle_buffer is 0); the remainder is dropped.
    markov_tokens  a stream of tokens from a fixed random first-order Markov chain over 16
                   tokens (each row of the transition matrix ~ Dirichlet(0.2), so the next
                   token is predictable but not fixed): 20,000 train and 4,000 test tokens,
                   cut into consecutive windows for truncated BPTT (`markov_windows`).
                   {'inputs': tokens (T,) int32, 'targets': tokens (T,) int32}, vocab_size
                   16, T = dataset.seq_len. Never shuffled: the order is the point.
                   Served by `TokenWindows`, the class the text corpora share
                   (`jaxlab.data.corpora`, `jaxlab.data.text_sources`), which also serves
                   random windows (`dataset.random_windows`) for models that carry nothing.

A third generated dataset, `shapes_seg` (per-pixel segmentation), draws its examples with
`shapes_seg_examples` here but is served as an offline TFDS builder
(`jaxlab.data.shapes_seg`), so the tf.data augmentation ops run on its images and masks.

Both sources here read the splits 'train' and 'test' (`dataset.train_split`,
`dataset.eval_split`). Batches are process-local numpy dicts with the same guarantees as the
TFDS pipelines: batch `s` is a pure function of (config, s), so resuming at any step is
exact; with P processes, process p keeps rows p, p + P, ... of every global batch
('interleave'), so the union of the local batches is the single-process batch; eval is
padded with zero examples of mask 0 to the same number of batches on every process.
Options that concern images (`augment`, `num_views`) and 'split' host sharding are refused.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data.features import DatasetInfo, Feature, full_batches_per_epoch, pad_batch
from jaxlab.data.registry import Batch, num_views

SPLITS = ("train", "test")
_SHUFFLE_TAG = 0x5EED  # keeps the epoch permutations apart from any other use of config.seed
_WINDOW_TAG = 0x3AD0  # the same for the offsets of random windows (TokenWindows)


def _check_options(
    config: ml_collections.ConfigDict, process_count: int, splits: tuple[str, ...] = SPLITS
) -> None:
    """The checks every generated source shares (no image options, interleave, splits)."""
    name = config.dataset.name
    augment = config.dataset.augment
    if not isinstance(augment, str) or any(entry.strip() for entry in augment.split(",")):
        raise ConfigError(f"dataset {name!r} has no images to augment; set dataset.augment=''")
    if num_views(config):
        raise ConfigError(f"dataset {name!r} has no images to view; set dataset.num_views=0")
    if config.dataset.train_host_sharding != "interleave":
        raise ConfigError(
            f"dataset {name!r} is generated in memory: dataset.train_host_sharding must be "
            f"'interleave', got {config.dataset.train_host_sharding!r}"
        )
    check_choice(f"dataset.train_split of {name!r}", config.dataset.train_split, splits)
    check_choice(f"dataset.eval_split of {name!r}", config.dataset.eval_split, splits)
    check_positive(
        "dataset.shuffle_buffer", config.dataset.shuffle_buffer, allow_zero=True, integer=True
    )


def _frozen(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for value in arrays.values():
        value.setflags(write=False)  # cached: shared by every iterator
    return arrays


# ---- toy2d: independent examples held in memory -----------------------------------------


TOY2D_SIZES = {"train": 4096, "test": 1024}
TOY2D_DATA_SEEDS = {"train": 1, "test": 2}
TOY2D_COMPONENTS, TOY2D_RADIUS, TOY2D_STD = 8, 2.0, 0.02


@functools.cache
def toy2d_examples(split: str) -> dict[str, np.ndarray]:
    """All examples of a toy2d split: 'x' float32 [N, 2], 'label' int32 [N] (component k
    is centred at radius * (cos 2 pi k/8, sin 2 pi k/8))."""
    rng = np.random.default_rng(TOY2D_DATA_SEEDS[split])
    label = rng.integers(0, TOY2D_COMPONENTS, TOY2D_SIZES[split])
    angle = 2 * np.pi * label / TOY2D_COMPONENTS
    centre = TOY2D_RADIUS * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    x = centre + TOY2D_STD * rng.standard_normal((len(label), 2))
    return _frozen({"x": x.astype(np.float32), "label": label.astype(np.int32)})


class ArraySource:
    """A dataset of independent examples whose splits are numpy arrays in memory.

    Subclasses give `features`, `num_classes` and `examples(split)`; this class cuts them
    into shuffled train epochs and padded eval passes.
    """

    features: dict[str, Feature]
    num_classes: int | None = None

    def examples(self, split: str) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        _check_options(config, process_count)

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo:
        def count(split: str) -> int:
            return len(next(iter(self.examples(split).values())))

        return DatasetInfo(
            name=config.dataset.name,
            features=dict(self.features),
            eval_features=dict(self.features),
            num_classes=self.num_classes,
            num_train_examples=count(config.dataset.train_split),
            num_eval_examples=count(config.dataset.eval_split),
        )

    def steps_per_epoch(self, config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
        return full_batches_per_epoch(config, info)

    def num_eval_batches(
        self, config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
    ) -> int:
        largest = math.ceil(info.num_eval_examples / process_count)  # process 0's part
        return math.ceil(largest / (config.eval_batch_size // process_count))

    def _epoch_order(self, config: ml_collections.ConfigDict, epoch: int, size: int) -> np.ndarray:
        if config.dataset.shuffle_buffer == 0:
            return np.arange(size)
        seed = np.random.SeedSequence([_SHUFFLE_TAG, config.seed % 2**64, epoch])
        return np.random.default_rng(seed).permutation(size)

    def train_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        start_step: int,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        arrays = self.examples(config.dataset.train_split)
        steps, batch = self.steps_per_epoch(config, info), config.batch_size
        epoch, first = divmod(start_step, steps)
        while True:
            order = self._epoch_order(config, epoch, info.num_train_examples)
            for step in range(first, steps):
                rows = order[step * batch : (step + 1) * batch][process_index::process_count]
                yield {key: value[rows] for key, value in arrays.items()}
            epoch, first = epoch + 1, 0

    def eval_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        arrays = self.examples(config.dataset.eval_split)
        local = config.eval_batch_size // process_count
        part = np.arange(process_index, info.num_eval_examples, process_count)
        for i in range(self.num_eval_batches(config, info, process_count)):
            rows = part[i * local : (i + 1) * local]
            yield pad_batch({k: v[rows] for k, v in arrays.items()}, info.eval_features, local)


class Toy2D(ArraySource):
    """The 8-Gaussians ring (see the module docstring)."""

    features = {
        "x": Feature((2,), "float32", "vector"),
        "label": Feature((), "int32", "label"),
    }
    num_classes = TOY2D_COMPONENTS

    def examples(self, split: str) -> dict[str, np.ndarray]:
        return toy2d_examples(split)


# ---- markov_tokens: one stream, cut into consecutive windows ----------------------------


MARKOV_VOCAB = 16
MARKOV_SIZES = {"train": 20_000, "test": 4_000}
MARKOV_CONCENTRATION = 0.2
MARKOV_DATA_SEED = 3
DEFAULT_SEQ_LEN = 32


@functools.cache
def markov_transitions() -> np.ndarray:
    """The chain's [V, V] transition matrix (row i: the distribution of the token after i)."""
    rng = np.random.default_rng([MARKOV_DATA_SEED, 0])
    return rng.dirichlet(np.full(MARKOV_VOCAB, MARKOV_CONCENTRATION), size=MARKOV_VOCAB)


@functools.cache
def markov_stream(split: str) -> np.ndarray:
    """The int32 tokens of a split: one chain started at token 0, whose first 20,000 tokens
    are 'train' and the next 4,000 'test' (so the test stream continues the train one)."""
    total = sum(MARKOV_SIZES.values())
    cdf = np.cumsum(markov_transitions(), axis=1)
    draws = np.random.default_rng([MARKOV_DATA_SEED, 1]).random(total)
    tokens = np.empty(total, np.int32)
    token = 0
    for i, u in enumerate(draws):
        tokens[i] = token
        token = min(int(np.searchsorted(cdf[token], u, side="right")), MARKOV_VOCAB - 1)
    start = 0 if split == "train" else MARKOV_SIZES["train"]
    stream = tokens[start : start + MARKOV_SIZES[split]]
    stream.setflags(write=False)
    return stream


def markov_windows(num_tokens: int, batch_size: int, seq_len: int) -> tuple[int, int]:
    """(strip length, windows per strip) of a stream of `num_tokens` cut into `batch_size`
    contiguous strips: strip b holds the inputs at positions [b L, (b + 1) L) and their
    targets one position later, with L = (num_tokens - 1) // batch_size; window t of every
    strip is its positions [t T, (t + 1) T), for the L // T whole windows."""
    strip = (num_tokens - 1) // batch_size
    return strip, strip // seq_len


def seq_len(config: ml_collections.ConfigDict) -> int:
    """`config.dataset.seq_len` (the default when the config predates the key)."""
    return config.dataset.get("seq_len", DEFAULT_SEQ_LEN)


def random_windows(config: ml_collections.ConfigDict) -> bool:
    """`config.dataset.random_windows` (False when the config lacks the key); ConfigError
    unless a bool."""
    value = config.dataset.get("random_windows", False)
    if not isinstance(value, bool):
        raise ConfigError(f"dataset.random_windows must be True or False, got {value!r}")
    return value


class TokenWindows:
    """A token stream per split, cut into consecutive windows for truncated BPTT.

    Subclasses give `name`, `stream(config, split)` (the int32 tokens of a split) and
    `vocab_size(config)`. The stream of a split is cut into `batch_size` contiguous strips
    (`markov_windows`); step t of an epoch holds window t of every strip, so row b of each
    batch continues where row b of the previous batch ended, and a model can carry its
    recurrent state across steps (truncated BPTT); 'targets' are 'inputs' shifted by one
    token. `steps_per_epoch` is the number of whole windows per strip; epochs repeat the
    same windows. With P processes, process p holds strips p, p + P, ... (rows of the global
    batch, 'interleave'), the same ones at every step. Eval cuts the eval stream the same
    way into `eval_batch_size` strips: every row is real (mask 1), none is padding.
    `num_train_examples` / `num_eval_examples` count the windows of one pass.

    With `dataset.random_windows` (default False; transformers, which carry nothing across
    windows) train row r of step s is instead the window at a uniform random offset of the
    train stream, the global batch's offsets drawn from (config.seed, s) alone (as nanoGPT
    samples its batches), so resuming at any step stays exact and the union of the processes'
    rows is the single-process batch. Eval stays consecutive.
    """

    name: str = ""

    def stream(self, config: ml_collections.ConfigDict, split: str) -> np.ndarray:
        """The int32 tokens of `split`."""
        raise NotImplementedError

    def vocab_size(self, config: ml_collections.ConfigDict) -> int:
        """Ids a token can take."""
        raise NotImplementedError

    def check_splits(self, config: ml_collections.ConfigDict, process_count: int) -> None:
        """The option checks before the window checks (here: those of every generated source)."""
        _check_options(config, process_count)

    def _windows(self, config: ml_collections.ConfigDict, split: str, batch_key: str) -> int:
        """Windows per strip of `split` with `config[batch_key]` strips; ConfigError if none."""
        batch, length = config[batch_key], seq_len(config)
        size = len(self.stream(config, split))
        _, windows = markov_windows(size, batch, length)
        if windows == 0:
            raise ConfigError(
                f"{batch_key} {batch} x dataset.seq_len {length} leaves no whole window in "
                f"the {size} tokens of {self.name} split {split!r}; need "
                f"{batch_key} * seq_len < {size}"
            )
        return windows

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        self.check_splits(config, process_count)
        check_positive("dataset.seq_len", seq_len(config), integer=True)
        random_windows(config)
        self._windows(config, config.dataset.train_split, "batch_size")
        self._windows(config, config.dataset.eval_split, "eval_batch_size")

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo:
        token = Feature((seq_len(config),), "int32", "tokens")
        features = {"inputs": token, "targets": token}
        train, test = config.dataset.train_split, config.dataset.eval_split
        return DatasetInfo(
            name=config.dataset.name,
            features=features,
            eval_features=dict(features),
            num_classes=None,
            num_train_examples=self._windows(config, train, "batch_size") * config.batch_size,
            num_eval_examples=self._windows(config, test, "eval_batch_size")
            * config.eval_batch_size,
            vocab_size=self.vocab_size(config),
        )

    def steps_per_epoch(self, config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
        return self._windows(config, config.dataset.train_split, "batch_size")

    def num_eval_batches(
        self, config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
    ) -> int:
        return self._windows(config, config.dataset.eval_split, "eval_batch_size")

    def _window_batches(
        self, stream: np.ndarray, batch: int, length: int, rows: np.ndarray, first: int
    ) -> Iterator[Batch]:
        """Window t = first, first + 1, ... of the strips `rows`, forever (cycling)."""
        strip, windows = markov_windows(len(stream), batch, length)
        offsets = rows[:, None] * strip + np.arange(length)[None, :]
        t = first % windows
        while True:
            positions = offsets + t * length
            yield {"inputs": stream[positions], "targets": stream[positions + 1]}
            t = (t + 1) % windows

    def _random_batches(
        self, stream: np.ndarray, config: ml_collections.ConfigDict, rows: np.ndarray, first: int
    ) -> Iterator[Batch]:
        """Step first, first + 1, ...: rows `rows` of windows at offsets drawn from (seed, step)."""
        length = seq_len(config)
        span = np.arange(length)[None, :]
        step = first
        while True:
            seed = np.random.SeedSequence([_WINDOW_TAG, config.seed % 2**64, step])
            starts = np.random.default_rng(seed).integers(
                0, len(stream) - length, config.batch_size
            )
            positions = starts[rows][:, None] + span
            yield {"inputs": stream[positions], "targets": stream[positions + 1]}
            step += 1

    def train_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        start_step: int,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        batch = config.batch_size
        rows = np.arange(process_index, batch, process_count)
        stream = self.stream(config, config.dataset.train_split)
        if random_windows(config):
            return self._random_batches(stream, config, rows, start_step)
        return self._window_batches(stream, batch, seq_len(config), rows, start_step)

    def eval_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        batch = config.eval_batch_size
        rows = np.arange(process_index, batch, process_count)
        stream = self.stream(config, config.dataset.eval_split)
        windows = self._window_batches(stream, batch, seq_len(config), rows, 0)
        for _ in range(self.num_eval_batches(config, info, process_count)):
            yield pad_batch(next(windows), info.eval_features, len(rows))


class MarkovTokens(TokenWindows):
    """Language-model plumbing on a known chain (see the module docstring and
    `TokenWindows`)."""

    name = "markov_tokens"

    def stream(self, config: ml_collections.ConfigDict, split: str) -> np.ndarray:
        return markov_stream(split)

    def vocab_size(self, config: ml_collections.ConfigDict) -> int:
        return MARKOV_VOCAB


# ---- shapes_seg: drawn here, served by a TFDS builder ----------------------------------


SHAPES_SIZE = 16
SHAPES_IGNORE = 255
SHAPES_CLASSES = 4  # background and three shape classes
# Classes 1..3 are reddish, greenish and bluish; a shape is a rectangle or a disc either way.
SHAPES_COLOURS = np.array([[0.85, 0.2, 0.2], [0.2, 0.8, 0.25], [0.25, 0.3, 0.9]])


def _dilate(region: np.ndarray) -> np.ndarray:
    """The region grown by one pixel in the 8 directions."""
    padded = np.pad(region, 1)
    size = region.shape[0]
    grown = np.zeros_like(region)
    for dy in range(3):
        for dx in range(3):
            grown |= padded[dy : dy + size, dx : dx + region.shape[1]]
    return grown


def shapes_seg_examples(num_examples: int, data_seed: int) -> dict[str, np.ndarray]:
    """`num_examples` 16x16 segmentation examples: 'image' uint8 [N, 16, 16, 3] and 'label'
    uint8 [N, 16, 16].

    Each image is a grey background (class 0, a random level in [0, 0.35] plus noise) with
    1 to 3 shapes painted in turn, each a rectangle or a disc of 4 to 9 pixels across, of a
    random class in 1..3 coloured by its class (plus noise). The label map holds the class of
    the visible surface at each pixel, and 255 (ignore) on the 1-pixel ring just outside
    each shape's visible part, where a pixel's class is ambiguous.
    """
    rng = np.random.default_rng(data_seed)
    size = SHAPES_SIZE
    ys, xs = np.mgrid[:size, :size]
    images = np.empty((num_examples, size, size, 3), np.uint8)
    labels = np.empty((num_examples, size, size), np.uint8)
    for n in range(num_examples):
        image = rng.uniform(0.0, 0.35) + rng.normal(0.0, 0.04, (size, size, 3))
        owner = np.full((size, size), -1)
        classes = []
        for i in range(rng.integers(1, 4)):
            cls = int(rng.integers(1, SHAPES_CLASSES))
            height, width = rng.integers(4, 10, 2)
            y0, x0 = rng.integers(0, size - height + 1), rng.integers(0, size - width + 1)
            if rng.random() < 0.5:
                inside = (ys >= y0) & (ys < y0 + height) & (xs >= x0) & (xs < x0 + width)
            else:
                cy, cx = y0 + (height - 1) / 2, x0 + (width - 1) / 2
                inside = (ys - cy) ** 2 + (xs - cx) ** 2 <= (min(height, width) / 2) ** 2
            colour = SHAPES_COLOURS[cls - 1] + rng.normal(0.0, 0.05, 3)
            image[inside] = colour + rng.normal(0.0, 0.04, (int(inside.sum()), 3))
            owner[inside] = i
            classes.append(cls)
        label = np.zeros((size, size), np.uint8)
        for i, cls in enumerate(classes):
            label[owner == i] = cls
        for i in range(len(classes)):
            visible = owner == i
            label[_dilate(visible) & ~visible] = SHAPES_IGNORE
        images[n] = np.round(np.clip(image, 0.0, 1.0) * 255)
        labels[n] = label
    return {"image": images, "label": labels}


GENERATED_SOURCES = {"markov_tokens": MarkovTokens(), "toy2d": Toy2D()}
