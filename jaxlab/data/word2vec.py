"""Word2vec data: a tokenized corpus, its vocabulary, subsampling, and the windows of context
words around each kept word, served as the dataset `head500`.

Corpus: `head500.noblanks.cor` from gensim's test data (stemmed, lower-cased English
Wikipedia text; 250 lines, 331,339 tokens, 296,143 of them in the min_count-5 vocabulary). The
file is read from the installed wheel (found with `importlib.util.find_spec`; gensim itself
is not imported), one line a sentence, split on whitespace, long lines cut into chunks of 10,000
tokens (gensim's `LineSentence`). Windows never cross a sentence boundary.

Vocabulary (`build_vocabulary`): the words seen at least `min_count` times (gensim's default
5), sorted as gensim's `sort_by_descending_frequency` does: by count, descending, ties in
*reverse* order of first appearance (its `np.lexsort((-index, -count))`). With min_count 5
head500 has 7,978 words, the same words in the same order as gensim's `Word2Vec(...).wv`
(`scripts/compare_gensim.py` checks it), so id i is gensim's index i. Out-of-vocabulary
tokens are dropped before windowing, as gensim does.

Subsampling (`keep_probabilities`, Mikolov et al. 2013b as gensim implements it): with
`t = sample * N` (N the total count of the vocabulary's words), a word of count `c` is kept
with probability `min(1, (sqrt(c / t) + 1) * t / c)`; `sample = 0` keeps every word.
Noise distribution (`noise_distribution`): `c^0.75 / sum(c^0.75)` (the unigram^0.75 table
of word2vec; the negatives themselves are drawn on the device by the task).

Windows (`epoch_windows`, one epoch): each token is kept or dropped (subsampling), the kept
tokens of each sentence are closed up, and every kept token i becomes one example: its
`center` word and the words at offsets -W..-1, 1..W in `context` [2W], `context_mask` 1
where the offset is within the *reduced* window `W - b_i` (b_i uniform in {0, ..., W-1},
word2vec.c's dynamic window) and inside the sentence, 0 elsewhere (context id 0 there).
Skip-gram trains one (context word, center) pair per unmasked slot, CBOW the mean of the
unmasked slots against the center (`jaxlab.tasks.word2vec`).

Pair generation runs here, on the host, in numpy: an epoch's draws (keep/drop, b_i, and the
order of the examples when `dataset.shuffle_buffer > 0`) come from a generator seeded with
(seed, epoch) alone, so every batch is a pure function of (config, step) and a resumed run
sees exactly the batches of an uninterrupted one. Doing it on the device would need the
variable-length compaction of kept tokens inside jit; a 331k-token epoch takes well under a
second of numpy. The train stream is the epochs' examples concatenated and cut into batches
of `batch_size` (an epoch's size varies slightly with its draws, so no example is dropped
or repeated at epoch ends); `steps_per_epoch` is epoch 0's example count // batch_size.

Eval split: word2vec trains on all the text, so the eval pass is a fixed sample of
`dataset.num_eval_windows` windows of the same corpus (drawn once from a fixed data seed),
on which the task reports the negative-sampling loss; word-vector quality is measured by the
task's evaluators (WordSim-353, analogies).

`config.dataset` keys read here: `min_count` (5), `window` (5), `sample` (1e-3),
`shuffle_buffer` (0: corpus order, as word2vec; > 0: each epoch's windows in a random
order), `num_eval_windows` (4096), `train_split` / `eval_split` ('train', the only split).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from collections.abc import Iterable, Iterator, Sequence

import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data.features import DatasetInfo, Feature, pad_batch
from jaxlab.data.registry import Batch, num_views

MAX_SENTENCE_LENGTH = 10_000  # gensim's LineSentence cuts longer lines into chunks
NOISE_EXPONENT = 0.75
SPLITS = ("train",)
DEFAULTS = {
    "min_count": 5,
    "window": 5,
    "sample": 1e-3,
    "num_eval_windows": 4096,
}
_EPOCH_TAG = 0x5A3D  # keeps the epoch draws apart from any other use of config.seed
_EVAL_DATA_SEED = 12345  # the fixed draw of the eval windows


def gensim_test_data(name: str) -> str:
    """The path of `name` in the installed gensim wheel's `gensim/test/test_data/` (found
    with importlib, without importing gensim); ConfigError when gensim or the file is absent."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the word2vec data ({name}) ships with gensim's wheel; install gensim (pip "
            "install gensim) to use dataset 'head500'"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "test", "test_data", name)
    if not os.path.isfile(path):
        raise ConfigError(f"gensim's test data has no {name} (looked for {path})")
    return path


def read_sentences(path: str, max_length: int = MAX_SENTENCE_LENGTH) -> list[list[str]]:
    """The sentences of a corpus file: one per line, split on whitespace, lines longer than
    `max_length` tokens cut into chunks of `max_length` (gensim's `LineSentence`); bytes
    that are not UTF-8 become U+FFFD (gensim's small lee.cor is Latin-1)."""
    sentences = []
    with open(path, encoding="utf-8", errors="replace") as f:  # head500 is valid UTF-8
        for line in f:
            tokens = line.split()
            for i in range(0, len(tokens), max_length):
                sentences.append(tokens[i : i + max_length])
    return sentences


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Words by id (most frequent first) and their corpus counts."""

    words: tuple[str, ...]
    counts: np.ndarray  # int64 [V]

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def ids(self, tokens: Iterable[str]) -> np.ndarray:
        """int32 ids of the in-vocabulary tokens (the others are dropped, as gensim does)."""
        index = self.index
        return np.array([index[t] for t in tokens if t in index], np.int32)


def build_vocabulary(sentences: Iterable[Sequence[str]], min_count: int) -> Vocabulary:
    """The words seen at least `min_count` times, ordered as gensim orders them: by count,
    descending, ties in reverse order of first appearance (see the module docstring)."""
    counts: dict[str, int] = {}
    for sentence in sentences:
        for token in sentence:
            counts[token] = counts.get(token, 0) + 1
    kept = [(w, c) for w, c in counts.items() if c >= min_count]  # first-appearance order
    words = [w for w, _ in kept]
    count = np.array([c for _, c in kept], np.int64)
    order = np.lexsort((-np.arange(len(kept)), -count))
    return Vocabulary(tuple(words[i] for i in order), count[order])


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """float64 [V]: the probability that subsampling keeps an occurrence of each word,
    `min(1, (sqrt(c / t) + 1) * t / c)` with `t = sample * sum(counts)` (all ones for
    `sample == 0`)."""
    counts = np.asarray(counts, np.float64)
    if sample == 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts)


def noise_distribution(counts: np.ndarray, exponent: float = NOISE_EXPONENT) -> np.ndarray:
    """float64 [V]: the negative-sampling distribution `c^exponent / sum(c^exponent)`."""
    weights = np.asarray(counts, np.float64) ** exponent
    return weights / weights.sum()


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A corpus as ids: `ids` int32 [N] (out-of-vocabulary tokens dropped), `sentence` int32
    [N] (the sentence of each token), and its vocabulary."""

    ids: np.ndarray
    sentence: np.ndarray
    vocab: Vocabulary


@functools.cache
def load_corpus(path: str, min_count: int) -> Corpus:
    """The corpus file at `path` as ids of its `min_count` vocabulary (cached)."""
    sentences = read_sentences(path)
    vocab = build_vocabulary(sentences, min_count)
    encoded = [vocab.ids(s) for s in sentences]
    ids = np.concatenate(encoded) if encoded else np.zeros(0, np.int32)
    sentence = np.repeat(np.arange(len(encoded), dtype=np.int32), [len(e) for e in encoded])
    for a in (ids, sentence, vocab.counts):
        a.setflags(write=False)
    return Corpus(ids, sentence, vocab)


def epoch_windows(
    ids: np.ndarray,
    sentence: np.ndarray,
    keep_prob: np.ndarray,
    window: int,
    rng: np.random.Generator,
    shuffle: bool = False,
) -> dict[str, np.ndarray]:
    """One epoch's examples (see the module docstring): 'center' int32 [M], 'context' int32
    [M, 2W], 'context_mask' float32 [M, 2W] for the M kept tokens; slot j of the context is
    offset `j - W` for j < W and `j - W + 1` after. Draws, in order: one uniform per token
    (kept iff below its keep probability), one reduced-window b per kept token, then the
    order of the examples when `shuffle`."""
    kept = rng.random(len(ids)) < keep_prob[ids]
    ids, sentence = ids[kept], sentence[kept]
    m = len(ids)
    reduced = rng.integers(0, window, m)  # b_i: the effective window is W - b_i
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    positions = np.arange(m)[:, None] + offsets[None, :]
    inside = (positions >= 0) & (positions < m)
    positions = np.clip(positions, 0, max(m - 1, 0))
    mask = inside & (np.abs(offsets)[None, :] <= (window - reduced)[:, None])
    mask &= sentence[positions] == sentence[:, None]
    context = np.where(mask, ids[positions], 0).astype(np.int32)
    out = {
        "center": ids.astype(np.int32),
        "context": context,
        "context_mask": mask.astype(np.float32),
    }
    if shuffle:
        order = rng.permutation(m)
        out = {k: v[order] for k, v in out.items()}
    return out


# ---- the dataset ------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _epoch_windows(
    path: str, min_count: int, sample: float, window: int, seed: int, shuffle: bool, epoch: int
) -> dict[str, np.ndarray]:
    """Epoch `epoch`'s windows (the two latest kept: `info` and the iterator share epoch 0)."""
    corpus = load_corpus(path, min_count)
    keep = keep_probabilities(corpus.vocab.counts, sample)
    rng = np.random.default_rng(np.random.SeedSequence([_EPOCH_TAG, seed % 2**64, epoch]))
    out = epoch_windows(corpus.ids, corpus.sentence, keep, window, rng, shuffle)
    for value in out.values():
        value.setflags(write=False)
    return out


def option(config: ml_collections.ConfigDict, key: str):
    """`config.dataset.<key>`, or its default (`DEFAULTS`) when the config lacks the key."""
    return config.dataset.get(key, DEFAULTS[key])


class WordTokenizer:
    """Space-separated words <-> vocabulary ids (for the text tools, e.g. scripts/sample.py)."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.vocab_size = len(vocab)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of the words of `text`; ConfigError naming the first unknown word."""
        unknown = [w for w in text.split() if w not in self.vocab]
        if unknown:
            raise ConfigError(
                f"word {unknown[0]!r} is not in the {self.vocab_size}-word vocabulary"
            )
        return self.vocab.ids(text.split())

    def decode(self, ids: Iterable[int]) -> str:
        """The words of `ids`, joined by spaces."""
        return " ".join(self.vocab.words[int(i)] for i in ids)


class Word2VecCorpus:
    """A word2vec corpus shipped with gensim (see the module docstring), as a `DataSource`."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def corpus(self, config: ml_collections.ConfigDict) -> Corpus:
        """The corpus as ids of the config's vocabulary (`dataset.min_count`)."""
        return load_corpus(gensim_test_data(self.filename), option(config, "min_count"))

    def vocabulary(self, config: ml_collections.ConfigDict) -> Vocabulary:
        """The vocabulary of `config.dataset` (words by id, counts)."""
        return self.corpus(config).vocab

    def tokenizer(self, config: ml_collections.ConfigDict) -> WordTokenizer:
        """Words <-> ids of the config's vocabulary."""
        return WordTokenizer(self.vocabulary(config))

    def validate(self, config: ml_collections.ConfigDict, process_count: int = 1) -> None:
        name = config.dataset.name
        augment = config.dataset.get("augment", "")
        if not isinstance(augment, str) or augment.strip(" ,"):
            raise ConfigError(f"dataset {name!r} has no images to augment; set dataset.augment=''")
        if num_views(config):
            raise ConfigError(f"dataset {name!r} has no images to view; set dataset.num_views=0")
        if config.dataset.get("train_host_sharding", "interleave") != "interleave":
            raise ConfigError(
                f"dataset {name!r} is generated in memory: dataset.train_host_sharding must be "
                "'interleave'"
            )
        check_choice(f"dataset.train_split of {name!r}", config.dataset.train_split, SPLITS)
        check_choice(f"dataset.eval_split of {name!r}", config.dataset.eval_split, SPLITS)
        check_positive("dataset.min_count", option(config, "min_count"), integer=True)
        check_positive("dataset.window", option(config, "window"), integer=True)
        check_positive("dataset.sample", option(config, "sample"), allow_zero=True)
        check_positive("dataset.num_eval_windows", option(config, "num_eval_windows"), integer=True)
        check_positive(
            "dataset.shuffle_buffer",
            config.dataset.get("shuffle_buffer", 0),
            allow_zero=True,
            integer=True,
        )

    def _epoch(self, config: ml_collections.ConfigDict, epoch: int) -> dict[str, np.ndarray]:
        return _epoch_windows(
            gensim_test_data(self.filename),
            option(config, "min_count"),
            float(option(config, "sample")),
            option(config, "window"),
            config.seed,
            config.dataset.get("shuffle_buffer", 0) > 0,
            epoch,
        )

    def _eval_windows(self, config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
        corpus = self.corpus(config)
        keep = keep_probabilities(corpus.vocab.counts, option(config, "sample"))
        rng = np.random.default_rng(_EVAL_DATA_SEED)
        windows = epoch_windows(corpus.ids, corpus.sentence, keep, option(config, "window"), rng)
        count = min(option(config, "num_eval_windows"), len(windows["center"]))
        rows = np.sort(rng.choice(len(windows["center"]), count, replace=False))
        return {k: v[rows] for k, v in windows.items()}

    def features(self, config: ml_collections.ConfigDict) -> dict[str, Feature]:
        """The example spec: 'center' (a word id), 'context' [2W] ids and 'context_mask'."""
        slots = 2 * option(config, "window")
        return {
            "center": Feature((), "int32", "label"),
            "context": Feature((slots,), "int32", "tokens"),
            "context_mask": Feature((slots,), "float32", "vector"),
        }

    def info(self, config: ml_collections.ConfigDict) -> DatasetInfo:
        features = self.features(config)
        return DatasetInfo(
            name=config.dataset.name,
            features=features,
            eval_features=dict(features),
            num_classes=None,
            num_train_examples=len(self._epoch(config, 0)["center"]),
            num_eval_examples=len(self._eval_windows(config)["center"]),
            vocab_size=len(self.vocabulary(config)),
        )

    def steps_per_epoch(self, config: ml_collections.ConfigDict, info: DatasetInfo) -> int:
        steps = info.num_train_examples // config.batch_size
        if steps == 0:
            raise ConfigError(
                f"batch_size {config.batch_size} is larger than the {info.num_train_examples} "
                f"windows of an epoch of {info.name}"
            )
        return steps

    def num_eval_batches(
        self, config: ml_collections.ConfigDict, info: DatasetInfo, process_count: int = 1
    ) -> int:
        largest = -(-info.num_eval_examples // process_count)
        return -(-largest // (config.eval_batch_size // process_count))

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
        skip = start_step * batch  # examples of the concatenated stream before this step
        epoch = 0
        current = self._epoch(config, epoch)
        while skip >= len(current["center"]):
            skip -= len(current["center"])
            epoch += 1
            current = self._epoch(config, epoch)
        pos = skip
        while True:
            parts, need = [], batch
            while need:
                take = min(need, len(current["center"]) - pos)
                parts.append({k: v[pos : pos + take] for k, v in current.items()})
                pos, need = pos + take, need - take
                if pos == len(current["center"]):
                    epoch, pos = epoch + 1, 0
                    current = self._epoch(config, epoch)
            rows = {k: np.concatenate([p[k] for p in parts]) for k in current}
            yield {k: v[process_index::process_count] for k, v in rows.items()}

    def eval_iterator(
        self,
        config: ml_collections.ConfigDict,
        info: DatasetInfo,
        *,
        process_index: int,
        process_count: int,
    ) -> Iterator[Batch]:
        windows = self._eval_windows(config)
        local = config.eval_batch_size // process_count
        part = np.arange(process_index, info.num_eval_examples, process_count)
        for i in range(self.num_eval_batches(config, info, process_count)):
            rows = part[i * local : (i + 1) * local]
            yield pad_batch({k: v[rows] for k, v in windows.items()}, info.eval_features, local)


WORD2VEC_SOURCES = {"head500": Word2VecCorpus("head500.noblanks.cor")}
