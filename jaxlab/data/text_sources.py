"""TFDS text datasets: read into memory once per process, tokenized here, served by numpy.

    tiny_shakespeare  (TFDS 'tiny_shakespeare': one text per split, 'train', 'validation',
                      'test') character language model, the same windows as shakespeare_char
                      (`TokenWindows`; `dataset.random_windows` too): {'inputs', 'targets':
                      tokens (T,) int32}; the vocabulary is the sorted set of the characters
                      of all three splits.
    lm1b              (TFDS 'lm1b': one sentence per example) the sentences of a split joined
                      by newlines into one stream, cut into the same windows; tokenizer
                      learned from the train split (below). The whole split is read into
                      memory: use a sub-split (`dataset.train_split='train[:1%]'`) there.
    imdb_reviews      (TFDS 'imdb_reviews': 'text', 'label') sequence classification:
                      {'inputs': tokens (T,) int32, 'label': label () int32}, 2 classes; each
                      review's tokens truncated to T = dataset.seq_len and padded with PAD = 0.
    wmt14             (TFDS 'wmt14_translate/<xx>-en') translation, contract 4: {'source':
                      tokens (S,) int32 (symbols, then PAD), 'target': tokens (S + 1,) int32
                      (symbols, EOS, then PAD)}, S = dataset.seq_len (longer sentences are
                      truncated); `dataset.source_language` / `dataset.target_language`
                      (default 'de' -> 'en'; one of them 'en'). One vocabulary for both sides.

Tokenizers (`tokenizer(config)` on each source): `dataset.tokenizer` 'char' (default; the
characters of the train text) or 'bpe' (`dataset.vocab_size` ids; merges learned from the
train text, `jaxlab.data.text.learn_bpe_merges`). imdb_reviews, lm1b and wmt14 reserve the
ids 0-2 (PAD, BOS, EOS) and map characters missing from the train text to U+FFFD;
tiny_shakespeare's ids are its characters alone (those of all three splits; BPE merges are
learned from the train split).

Nothing downloads: a dataset must be prepared in the data dir (`tfds build NAME` where
there is network), or mocked (`tfds.testing.mock_data`, as the tests do). TensorFlow and
TFDS are imported on first use. Texts, tokenizers and encodings are cached per (dataset,
data dir, split); `clear_caches()` empties them (tests switch mocks).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator

import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data.features import DatasetInfo, Feature
from jaxlab.data.generated import ArraySource, TokenWindows, random_windows, seq_len
from jaxlab.data.registry import Batch, num_views
from jaxlab.data.text import (
    EOS,
    FIRST_SYMBOL,
    PAD,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    learn_bpe_merges,
)

TOKENIZERS = ("char", "bpe")
UNKNOWN = "\ufffd"
WMT14_LANGUAGES = ("cs", "de", "fr", "hi", "ru")


def _data_dir(config: ml_collections.ConfigDict) -> str:
    from jaxlab.data.datasets import resolve_data_dir

    return resolve_data_dir(config)


def _builder(tfds_name: str, data_dir: str):
    """The TFDS builder, prepared in `data_dir` or mocked; ConfigError otherwise."""
    import tensorflow_datasets as tfds

    from jaxlab.data.pipeline import _hide_accelerators_from_tf

    _hide_accelerators_from_tf()
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    try:  # succeeds only where TFDS is mocked (tfds.testing.mock_data) and needs no files
        builder.as_dataset(split="train")
    except Exception:  # TFDS raises AssertionError, ValueError, ... when nothing is there
        raise ConfigError(
            f"dataset {tfds_name!r} is not prepared in {data_dir} (this machine cannot "
            f"download); prepare it where there is network with `tfds build {tfds_name} "
            f"--data_dir {data_dir}` and copy it here"
        ) from None
    return builder


@functools.cache
def read_texts(tfds_name: str, data_dir: str, split: str, keys: tuple[str, ...]) -> tuple:
    """The features `keys` of every example of a split, in order: a tuple per key (str for
    text features, int for the others)."""
    import tensorflow_datasets as tfds

    builder = _builder(tfds_name, data_dir)
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except Exception as error:  # an unknown split name or a bad sub-split expression
        raise ConfigError(f"cannot read split {split!r} of {tfds_name!r}: {error}") from None
    columns: list[list] = [[] for _ in keys]
    for example in tfds.as_numpy(ds):
        for column, key in zip(columns, keys, strict=True):
            value = example[key]
            column.append(value.decode("utf-8") if isinstance(value, bytes) else int(value))
    return tuple(tuple(column) for column in columns)


def clear_caches() -> None:
    """Forgets every text, tokenizer and encoding read so far."""
    for function in (read_texts, _learned_tokenizer, _stream, _examples):
        function.cache_clear()


def _check_common(config: ml_collections.ConfigDict) -> tuple[str, int]:
    """The checks of options every text source shares; returns (tokenizer, vocab_size)."""
    name = config.dataset.name
    augment = config.dataset.augment
    if not isinstance(augment, str) or any(entry.strip() for entry in augment.split(",")):
        raise ConfigError(f"dataset {name!r} has no images to augment; set dataset.augment=''")
    if num_views(config):
        raise ConfigError(f"dataset {name!r} has no images to view; set dataset.num_views=0")
    if config.dataset.train_host_sharding != "interleave":
        raise ConfigError(
            f"dataset {name!r} is held in memory: dataset.train_host_sharding must be "
            f"'interleave', got {config.dataset.train_host_sharding!r}"
        )
    check_positive("dataset.seq_len", seq_len(config), integer=True)
    check_positive(
        "dataset.shuffle_buffer", config.dataset.shuffle_buffer, allow_zero=True, integer=True
    )
    kind = config.dataset.get("tokenizer", "char")
    check_choice("dataset.tokenizer", kind, TOKENIZERS)
    if kind == "char":
        return kind, 0
    size = config.dataset.get("vocab_size", 0)
    check_positive("dataset.vocab_size", size, integer=True)
    return kind, size


@functools.cache
def _learned_tokenizer(
    text: str,
    kind: str,
    vocab_size: int,
    num_reserved: int,
    unknown: str | None,
    alphabet_text: str = "",
) -> Tokenizer:
    """The char or BPE tokenizer of `text`: its sorted characters (with those of
    `alphabet_text` and `unknown`), and for BPE the merges learned from `text`."""
    chars = set(text) | set(alphabet_text) | ({unknown} if unknown else set())
    alphabet = "".join(sorted(chars))
    if kind == "char":
        return CharTokenizer(alphabet, num_reserved=num_reserved, unknown=unknown)
    base = num_reserved + len(alphabet)
    if vocab_size <= base:
        raise ConfigError(
            f"dataset.vocab_size must be > {base} (the specials and characters of the "
            f"text) with dataset.tokenizer 'bpe', got {vocab_size}"
        )
    merges = learn_bpe_merges(text, vocab_size - base)
    return BPETokenizer(alphabet, merges, num_reserved=num_reserved, unknown=unknown)


# ---- language models: tiny_shakespeare, lm1b --------------------------------------------


@functools.cache
def _stream(
    tfds_name: str, data_dir: str, split: str, key: str, tokenizer: Tokenizer
) -> np.ndarray:
    (texts,) = read_texts(tfds_name, data_dir, split, (key,))
    stream = tokenizer.encode("\n".join(texts))
    stream.setflags(write=False)
    return stream


class TfdsTextStream(TokenWindows):
    """A TFDS text corpus as one token stream per split (see the module docstring)."""

    def __init__(self, tfds_name: str, vocab_splits: tuple[str, ...] = ()) -> None:
        self.name = tfds_name
        self.tfds_name = tfds_name
        # Splits whose characters make the char vocabulary (all of them for a fixed
        # corpus such as tiny_shakespeare); empty: the train split, with reserved ids.
        self.vocab_splits = vocab_splits

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        """The options alone, without reading the data (`info` checks the windows)."""
        _check_common(config)
        random_windows(config)

    def tokenizer(self, config: ml_collections.ConfigDict) -> Tokenizer:
        """The char or BPE tokenizer of the corpus (module docstring)."""
        kind, size = _check_common(config)
        data_dir = _data_dir(config)
        (texts,) = read_texts(self.tfds_name, data_dir, config.dataset.train_split, ("text",))
        train = "\n".join(texts)
        if not self.vocab_splits:
            return _learned_tokenizer(train, kind, size, FIRST_SYMBOL, UNKNOWN)
        every = "\n".join(
            "\n".join(read_texts(self.tfds_name, data_dir, split, ("text",))[0])
            for split in self.vocab_splits
        )
        return _learned_tokenizer(train, kind, size, 0, None, every)

    def stream(self, config: ml_collections.ConfigDict, split: str) -> np.ndarray:
        tokenizer = self.tokenizer(config)
        return _stream(self.tfds_name, _data_dir(config), split, "text", tokenizer)

    def vocab_size(self, config: ml_collections.ConfigDict) -> int:
        return self.tokenizer(config).vocab_size


# ---- examples: imdb_reviews, wmt14 --------------------------------------------------------


def _pad(ids: np.ndarray, length: int, eos: bool) -> np.ndarray:
    """`ids` truncated to `length` (less one for the EOS when `eos`), then PAD."""
    out = np.full(length, PAD, np.int32)
    keep = ids[: length - 1] if eos else ids[:length]
    out[: len(keep)] = keep
    if eos:
        out[len(keep)] = EOS
    return out


class _Arrays(ArraySource):
    """An ArraySource over arrays made for one config."""

    def __init__(self, features: dict[str, Feature], num_classes: int | None, arrays: dict):
        self.features, self.num_classes, self._arrays = features, num_classes, arrays

    def examples(self, split: str) -> dict[str, np.ndarray]:
        return self._arrays[split]


@functools.cache
def _examples(source: TfdsExamples, data_dir: str, split: str, train: str, key: tuple) -> dict:
    """The arrays of a split for `key` = (tokenizer kind, vocab size, seq_len, languages),
    with the tokenizer learned from the split `train`."""
    kind, size, length, languages = key
    texts = read_texts(source.tfds_name(languages), data_dir, split, source.keys(languages))
    tokenizer = source.learned(data_dir, kind, size, languages, train)
    if source.translate:
        source_ids = [_pad(tokenizer.encode(t), length, False) for t in texts[0]]
        target_ids = [_pad(tokenizer.encode(t), length + 1, True) for t in texts[1]]
        arrays = {"source": np.stack(source_ids), "target": np.stack(target_ids)}
    else:
        arrays = {
            "inputs": np.stack([_pad(tokenizer.encode(t), length, False) for t in texts[0]]),
            "label": np.array(texts[1], np.int32),
        }
    for value in arrays.values():
        value.setflags(write=False)
    return arrays


class TfdsExamples:
    """imdb_reviews (classification) or wmt14 (translation): see the module docstring."""

    def __init__(self, tfds_base: str, *, translate: bool = False, num_classes: int | None = None):
        self.tfds_base, self.translate, self.num_classes = tfds_base, translate, num_classes

    def languages(self, config: ml_collections.ConfigDict) -> tuple[str, str]:
        """(source, target) language codes (wmt14); ('', '') otherwise."""
        if not self.translate:
            return "", ""
        pair = (
            config.dataset.get("source_language", "de"),
            config.dataset.get("target_language", "en"),
        )
        other = [lang for lang in pair if lang != "en"]
        if "en" not in pair or len(other) != 1:
            raise ConfigError(
                f"dataset.source_language / target_language must be 'en' and one of "
                f"{', '.join(WMT14_LANGUAGES)}, got {pair[0]!r} -> {pair[1]!r}"
            )
        check_choice("wmt14 language", other[0], WMT14_LANGUAGES)
        return pair

    def tfds_name(self, languages: tuple[str, str]) -> str:
        """The TFDS name ('wmt14_translate/de-en' for the languages of wmt14)."""
        if not self.translate:
            return self.tfds_base
        other = languages[0] if languages[1] == "en" else languages[1]
        return f"{self.tfds_base}/{other}-en"

    def keys(self, languages: tuple[str, str]) -> tuple[str, ...]:
        """The features read: (source language, target language), or ('text', 'label')."""
        return languages if self.translate else ("text", "label")

    def learned(
        self, data_dir: str, kind: str, size: int, languages: tuple, train: str
    ) -> Tokenizer:
        """The tokenizer learned from the train split's text (both sides for wmt14)."""
        texts = read_texts(self.tfds_name(languages), data_dir, train, self.keys(languages))
        columns = texts if self.translate else texts[:1]
        text = "\n".join("\n".join(column) for column in columns)
        return _learned_tokenizer(text, kind, size, FIRST_SYMBOL, UNKNOWN)

    def _key(self, config: ml_collections.ConfigDict) -> tuple:
        kind, size = _check_common(config)
        return kind, size, seq_len(config), self.languages(config)

    def tokenizer(self, config: ml_collections.ConfigDict) -> Tokenizer:
        """The char or BPE tokenizer of the train text (module docstring)."""
        kind, size, _, languages = self._key(config)
        return self.learned(_data_dir(config), kind, size, languages, config.dataset.train_split)

    def bound(self, config: ml_collections.ConfigDict) -> ArraySource:
        """An ArraySource over this config's tokenized splits (cached), which serves them."""
        key, data_dir, train = self._key(config), _data_dir(config), config.dataset.train_split
        arrays = {
            split: _examples(self, data_dir, split, train, key)
            for split in (train, config.dataset.eval_split)
        }
        length = seq_len(config)
        if self.translate:
            features = {
                "source": Feature((length,), "int32", "tokens"),
                "target": Feature((length + 1,), "int32", "tokens"),
            }
        else:
            features = {
                "inputs": Feature((length,), "int32", "tokens"),
                "label": Feature((), "int32", "label"),
            }
        return _Arrays(features, self.num_classes, arrays)

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        self._key(config)

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo:
        info = self.bound(config).info(config)
        return dataclasses.replace(info, vocab_size=self.tokenizer(config).vocab_size)

    def steps_per_epoch(self, config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
        return self.bound(config).steps_per_epoch(config, info)

    def num_eval_batches(
        self, config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
    ) -> int:
        return self.bound(config).num_eval_batches(config, info, process_count)

    def train_iterator(
        self, config: ml_collections.ConfigDict, info: DatasetInfo, **kwargs: int
    ) -> Iterator[Batch]:
        return self.bound(config).train_iterator(config, info, **kwargs)

    def eval_iterator(
        self, config: ml_collections.ConfigDict, info: DatasetInfo, **kwargs: int
    ) -> Iterator[Batch]:
        return self.bound(config).eval_iterator(config, info, **kwargs)


TFDS_TEXT_SOURCES = {
    "tiny_shakespeare": TfdsTextStream(
        "tiny_shakespeare", vocab_splits=("train", "validation", "test")
    ),
    "lm1b": TfdsTextStream("lm1b"),
    "imdb_reviews": TfdsExamples("imdb_reviews", num_classes=2),
    "wmt14": TfdsExamples("wmt14_translate", translate=True),
}
