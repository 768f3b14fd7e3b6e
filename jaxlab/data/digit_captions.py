"""`digit_captions`: an offline captioning set whose captions can be checked.

Each example places two of scikit-learn's 8x8 digit glyphs (distinct classes) on a 20x20
canvas divided into four 10x10 cells: the two glyphs sit in two cells of one row or of one
column, each shifted inside its cell by a random offset in {0, 1, 2} along each axis. The
caption names the smaller digit first and says where it is relative to the other one:

    "a two left of a seven"    (same row, the two in the left cell)
    "an eight above a nine"    (same column, the eight in the top cell)

so the caption is a function of the image (the relation words: left of, right of, above,
below; "an" before eight). Features:

    digit_captions  {'image': image (20, 20, 1) float32 in [0, 1] (the glyphs' pixel
                    counts 0..16 divided by 16, background 0), 'tokens': tokens (7,) int32
                    (the caption's word ids, EOS = 2, then PAD = 0)}, vocab_size 20.
                    Splits 'train' 10,000 examples, 'test' 500, drawn from data seeds 21 and
                    22; train glyphs come from the first 1,500 images of `load_digits()`,
                    test glyphs from the other 297 (glyphs unseen in training).

Served by `ArraySource` (shuffled epochs from config.seed, padded eval passes, exact
resume). `digit_caption_examples(split, num_examples, data_seed)` also returns, for the
tests, the digits and the top-left corners of their glyphs in caption order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import ml_collections
import numpy as np

from jaxlab.config import ConfigError
from jaxlab.data.features import DatasetInfo, Feature
from jaxlab.data.generated import ArraySource, _check_options, _frozen
from jaxlab.data.text import EOS, FIRST_SYMBOL, PAD

CANVAS = 20
CELL = 10
GLYPH = 8
MAX_SHIFT = CELL - GLYPH  # offsets 0..2 inside a cell
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WORDS = ("a", "an", *NUMBER_WORDS, "left", "right", "of", "above", "below")
SPECIALS = ("<pad>", "<bos>", "<eos>")
VOCAB_SIZE = FIRST_SYMBOL + len(WORDS)
RELATIONS = ("left of", "right of", "above", "below")
MAX_WORDS = 6  # "a seven left of a two"
TOKENS_LEN = MAX_WORDS + 1  # + EOS
SIZES = {"train": 10_000, "test": 500}
DATA_SEEDS = {"train": 21, "test": 22}
GLYPH_SPLIT = 1500  # load_digits() images [0, 1500) for train, the rest for test
# The cell pairs sharing a row or a column: ((row, col), (row, col)).
CELL_PAIRS = (((0, 0), (0, 1)), ((1, 0), (1, 1)), ((0, 0), (1, 0)), ((0, 1), (1, 1)))


class WordVocab:
    """Captions <-> ids: id i >= 3 is `WORDS[i - 3]`; 0, 1, 2 are <pad>, <bos>, <eos>."""

    def __init__(self) -> None:
        self.vocab_size = VOCAB_SIZE
        self._ids = {w: FIRST_SYMBOL + i for i, w in enumerate(WORDS)}

    def encode(self, text: str, length: int = TOKENS_LEN) -> np.ndarray:
        """int32 [length]: the word ids of `text`, EOS, then PAD; ConfigError for an unknown
        word or a caption too long."""
        words = text.split()
        unknown = [w for w in words if w not in self._ids]
        if unknown:
            raise ConfigError(f"word {unknown[0]!r} is not in the caption vocabulary: {WORDS}")
        if len(words) + 1 > length:
            raise ConfigError(f"caption {text!r} needs {len(words) + 1} tokens, got {length}")
        ids = np.full(length, PAD, np.int32)
        ids[: len(words)] = [self._ids[w] for w in words]
        ids[len(words)] = EOS
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The words of `ids` up to the first EOS (specials dropped)."""
        words = []
        for i in ids:
            if int(i) == EOS:
                break
            if int(i) >= FIRST_SYMBOL:
                words.append(WORDS[int(i) - FIRST_SYMBOL])
        return " ".join(words)


def _article(digit: int) -> str:
    return "an" if digit == 8 else "a"


def caption_for(first: int, second: int, relation: str) -> str:
    """'a <first> <relation> a <second>' (with 'an' before eight)."""
    return (
        f"{_article(first)} {NUMBER_WORDS[first]} {relation} "
        f"{_article(second)} {NUMBER_WORDS[second]}"
    )


def relation_of(corner: Sequence[int], other: Sequence[int]) -> str:
    """Where the glyph at top-left `corner` (y, x) is relative to the one at `other`, for
    glyphs in different cells of one row or one column."""
    (y0, x0), (y1, x1) = (int(v) // CELL for v in corner), (int(v) // CELL for v in other)
    if y0 == y1:
        return "left of" if x0 < x1 else "right of"
    return "above" if y0 < y1 else "below"


@functools.cache
def _glyphs(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [M, 8, 8] in [0, 1], labels int32 [M]) of a split's glyph pool."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = slice(0, GLYPH_SPLIT) if split == "train" else slice(GLYPH_SPLIT, None)
    return digits.images[rows].astype(np.float32) / 16.0, digits.target[rows].astype(np.int32)


def digit_caption_examples(split: str, num_examples: int, data_seed: int) -> dict[str, np.ndarray]:
    """`num_examples` examples drawn from `data_seed` with the glyphs of `split` ('train' or
    'test'): 'image' float32 [N, 20, 20, 1], 'tokens' int32 [N, 7], 'digits' int32 [N, 2]
    (the digits in caption order) and 'corners' int32 [N, 2, 2] (their glyphs' top-left
    (y, x)). See the module docstring."""
    if split not in SIZES:
        raise ConfigError(f"digit_captions split must be one of {', '.join(SIZES)}, got {split!r}")
    glyphs, labels = _glyphs(split)
    by_class = [np.flatnonzero(labels == d) for d in range(10)]
    rng = np.random.default_rng(data_seed)
    vocab = WordVocab()
    images = np.zeros((num_examples, CANVAS, CANVAS, 1), np.float32)
    tokens = np.empty((num_examples, TOKENS_LEN), np.int32)
    digits = np.empty((num_examples, 2), np.int32)
    corners = np.empty((num_examples, 2, 2), np.int32)
    for n in range(num_examples):
        cells = CELL_PAIRS[rng.integers(len(CELL_PAIRS))]
        pair = rng.choice(10, 2, replace=False)
        placed = []
        for (row, col), digit in zip(cells, pair, strict=True):
            glyph = glyphs[rng.choice(by_class[digit])]
            y, x = (
                row * CELL + rng.integers(0, MAX_SHIFT + 1),
                col * CELL + rng.integers(0, MAX_SHIFT + 1),
            )
            images[n, y : y + GLYPH, x : x + GLYPH, 0] = glyph
            placed.append((int(digit), (int(y), int(x))))
        placed.sort()  # the smaller digit first
        (d0, c0), (d1, c1) = placed
        tokens[n] = vocab.encode(caption_for(d0, d1, relation_of(c0, c1)))
        digits[n] = (d0, d1)
        corners[n] = (c0, c1)
    return {"image": images, "tokens": tokens, "digits": digits, "corners": corners}


@functools.cache
def digit_captions_split(split: str) -> dict[str, np.ndarray]:
    """The served arrays of a split ('image', 'tokens'), cached and read-only."""
    arrays = digit_caption_examples(split, SIZES[split], DATA_SEEDS[split])
    return _frozen({"image": arrays["image"], "tokens": arrays["tokens"]})


class DigitCaptions(ArraySource):
    """Two digit glyphs and a caption saying which is where (see the module docstring)."""

    features = {
        "image": Feature((CANVAS, CANVAS, 1), "float32", "image"),
        "tokens": Feature((TOKENS_LEN,), "int32", "tokens"),
    }

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        _check_options(config, process_count, tuple(SIZES))

    def examples(self, split: str) -> dict[str, np.ndarray]:
        return digit_captions_split(split)

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo:
        info = super().info(config)
        return DatasetInfo(**{**info.__dict__, "vocab_size": VOCAB_SIZE})

    def tokenizer(self, config: ml_collections.ConfigDict) -> WordVocab:
        """The caption vocabulary (`jaxlab.data.text.tokenizer_for` finds it here)."""
        return WordVocab()


DIGIT_CAPTIONS_SOURCES = {"digit_captions": DigitCaptions()}
