"""Word vectors: nearest neighbours, analogies (3CosAdd), word-similarity correlation, and
export to the TensorBoard embedding projector.

Everything works on a float matrix `vectors` [V, D] whose row i is word `words[i]`, most
frequent word first (jaxlab's and gensim's order), in numpy on the host.

- Similarity is the cosine: rows are divided by their norms (a zero row stays zero).
- `word_similarity`: the Spearman (and Pearson) correlation between human scores and the
  cosines of the pairs whose two words are in the vocabulary, with the coverage (the
  fraction of pairs scored), as gensim's `evaluate_word_pairs` (lower-cased words; gensim
  compares upper-cased, the same thing for these files). Ranks and correlations come from
  scipy.stats (a JAX dependency already).
- `analogy_accuracy`: for each question a:b :: c:d of `questions-words.txt` whose four
  words are among the `restrict_vocab` most frequent words, the prediction is the word w of
  those, other than a, b and c, maximizing cos(w, b) - cos(w, a) + cos(w, c) (3CosAdd, Levy
  and Goldberg 2014; the same argmax as gensim's `most_similar(positive=[b, c],
  negative=[a])` on unit vectors). Accuracy counts the covered questions; `coverage` is their
  fraction of all questions. `restrict_vocab` defaults to 30,000 (word2vec.c's
  compute-accuracy and gensim 3's `accuracy`; gensim 4's `evaluate_word_analogies` uses
  300,000): on head500's 7,978 words neither restricts anything.
- `export_projector`: the files the TensorBoard projector reads from a log directory:
  `vectors.tsv` (one row of D tab-separated floats per word), `metadata.tsv` (a header
  `word<TAB>count`, then one row per word, in the same order) and `projector_config.pbtxt`
  (a `ProjectorConfig` text proto, written with TensorBoard's own message class, naming the
  two files). A sprite image applies only to embeddings of images (one thumbnail per
  point); words have none, so no sprite is written.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats

DEFAULT_RESTRICT_VOCAB = 30_000
PROJECTOR_CONFIG = "projector_config.pbtxt"  # the name TensorBoard's projector looks for


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float64 rows divided by their L2 norms (zero rows stay zero)."""
    vectors = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def nearest_neighbours(
    vectors: np.ndarray, words: Sequence[str], query: str, topn: int = 10
) -> list[tuple[str, float]]:
    """The `topn` words of highest cosine similarity to `query` (itself excluded), with the
    similarities, best first; KeyError when `query` is not a word of `words`."""
    index = {w: i for i, w in enumerate(words)}
    if query not in index:
        raise KeyError(f"{query!r} is not in the {len(words)}-word vocabulary")
    unit = unit_rows(vectors)
    sims = unit @ unit[index[query]]
    sims[index[query]] = -np.inf
    best = np.argsort(-sims, kind="stable")[:topn]
    return [(words[i], float(sims[i])) for i in best]


def neighbours_text(
    vectors: np.ndarray, words: Sequence[str], queries: Iterable[str], topn: int = 8
) -> str:
    """One line per query word in the vocabulary: `word: n1 (0.71), n2 (0.65), ...`."""
    lines = []
    for query in queries:
        if query not in words:
            lines.append(f"{query}: (not in the vocabulary)")
            continue
        found = nearest_neighbours(vectors, words, query, topn)
        lines.append(f"{query}: " + ", ".join(f"{w} ({s:.2f})" for w, s in found))
    return "\n".join(lines)


def analogy(
    vectors: np.ndarray,
    words: Sequence[str],
    a: str,
    b: str,
    c: str,
    topn: int = 1,
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB,
) -> list[tuple[str, float]]:
    """a is to b as c is to ?: the `topn` words (of the `restrict_vocab` first, other than
    a, b, c) by 3CosAdd score cos(w, b) - cos(w, a) + cos(w, c), best first."""
    index = {w: i for i, w in enumerate(words[:restrict_vocab])}
    missing = [w for w in (a, b, c) if w not in index]
    if missing:
        raise KeyError(f"{missing[0]!r} is not among the {len(index)} words searched")
    unit = unit_rows(vectors[: len(index)])
    score = unit @ (unit[index[b]] - unit[index[a]] + unit[index[c]])
    score[[index[a], index[b], index[c]]] = -np.inf
    best = np.argsort(-score, kind="stable")[:topn]
    return [(words[i], float(score[i])) for i in best]


@dataclasses.dataclass(frozen=True)
class WordPairs:
    """Word pairs with human similarity scores."""

    first: tuple[str, ...]
    second: tuple[str, ...]
    score: np.ndarray  # float64 [N]


def read_word_pairs(path: str) -> WordPairs:
    """The pairs of a tab-separated file `word1<TAB>word2<TAB>score` (WordSim-353's format
    in gensim; lines starting with '#' are comments), words lower-cased."""
    first, second, score = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            a, b, s = line.rstrip("\n").split("\t")
            first.append(a.lower())
            second.append(b.lower())
            score.append(float(s))
    return WordPairs(tuple(first), tuple(second), np.array(score, np.float64))


def word_similarity(
    vectors: np.ndarray, words: Sequence[str], pairs: WordPairs
) -> dict[str, float]:
    """Spearman and Pearson correlations between the human scores and the cosines of the
    pairs with both words in the vocabulary; `coverage` (their fraction) and `pairs` (their
    number). The correlations are NaN when fewer than two pairs are covered."""
    index = {w: i for i, w in enumerate(words)}
    kept = [
        (index[a], index[b], s)
        for a, b, s in zip(pairs.first, pairs.second, pairs.score, strict=True)
        if a in index and b in index
    ]
    out = {"coverage": len(kept) / max(len(pairs.score), 1), "pairs": float(len(kept))}
    if len(kept) < 2:
        return {**out, "spearman": float("nan"), "pearson": float("nan")}
    i, j, human = (np.array(v) for v in zip(*kept, strict=True))
    unit = unit_rows(vectors)
    cosine = np.sum(unit[i] * unit[j], axis=-1)
    out["spearman"] = float(stats.spearmanr(human, cosine).statistic)
    out["pearson"] = float(stats.pearsonr(human, cosine).statistic)
    return out


def read_analogies(path: str) -> list[tuple[str, str, str, str]]:
    """The questions a:b :: c:d of a `questions-words.txt` file (section lines starting with
    ':' skipped), lower-cased."""
    questions = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(":") or not line.strip():
                continue
            a, b, c, d = line.lower().split()
            questions.append((a, b, c, d))
    return questions


def analogy_accuracy(
    vectors: np.ndarray,
    words: Sequence[str],
    questions: Sequence[tuple[str, str, str, str]],
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB,
    chunk: int = 1024,
) -> dict[str, float]:
    """3CosAdd accuracy on the questions whose four words are among the `restrict_vocab`
    most frequent (see the module docstring): `accuracy` (NaN when none is covered),
    `coverage`, `correct` and `questions` (the number covered). Predictions are computed
    `chunk` questions at a time as one matrix product."""
    index = {w: i for i, w in enumerate(words[:restrict_vocab])}
    covered = np.array(
        [[index[w] for w in q] for q in questions if all(w in index for w in q)], np.int64
    ).reshape(-1, 4)
    unit = unit_rows(vectors[: len(index)])
    correct = 0
    for start in range(0, len(covered), chunk):
        a, b, c, d = covered[start : start + chunk].T
        score = (unit[b] - unit[a] + unit[c]) @ unit.T
        rows = np.arange(len(a))
        for excluded in (a, b, c):
            score[rows, excluded] = -np.inf
        correct += int(np.sum(np.argmax(score, axis=-1) == d))
    n = len(covered)
    return {
        "accuracy": correct / n if n else float("nan"),
        "coverage": n / max(len(questions), 1),
        "correct": float(correct),
        "questions": float(n),
    }


def export_projector(
    logdir: str,
    vectors: np.ndarray,
    words: Sequence[str],
    counts: Sequence[int] | None = None,
    tensor_name: str = "word_vectors",
) -> dict[str, str]:
    """Writes `vectors.tsv`, `metadata.tsv` and `projector_config.pbtxt` into `logdir` (see
    the module docstring; `counts` adds a count column to the metadata) and returns their
    paths by name. Open with `tensorboard --logdir LOGDIR`, tab 'Projector'."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    vectors = np.asarray(vectors)
    if vectors.shape[0] != len(words):
        raise ValueError(f"{vectors.shape[0]} vectors for {len(words)} words")
    bad = [w for w in words if "\t" in w or "\n" in w or not w]
    if bad:
        raise ValueError(f"word {bad[0]!r} cannot be written to a TSV row")
    os.makedirs(logdir, exist_ok=True)
    paths = {
        "vectors": os.path.join(logdir, "vectors.tsv"),
        "metadata": os.path.join(logdir, "metadata.tsv"),
        "config": os.path.join(logdir, PROJECTOR_CONFIG),
    }
    np.savetxt(paths["vectors"], vectors, fmt="%.6g", delimiter="\t")
    with open(paths["metadata"], "w", encoding="utf-8") as f:
        if counts is None:  # one column: the projector expects no header then
            f.writelines(f"{w}\n" for w in words)
        else:
            f.write("word\tcount\n")
            f.writelines(f"{w}\t{int(c)}\n" for w, c in zip(words, counts, strict=True))
    config = projector_config_pb2.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = tensor_name
    embedding.tensor_path = os.path.basename(paths["vectors"])
    embedding.metadata_path = os.path.basename(paths["metadata"])
    with open(paths["config"], "w", encoding="utf-8") as f:
        f.write(text_format.MessageToString(config))
    return paths


@dataclasses.dataclass(frozen=True)
class WordVectors:
    """A trained run's word vectors (the input table) and its vocabulary."""

    vectors: np.ndarray  # [V, D]
    words: tuple[str, ...]
    counts: np.ndarray  # [V]
    step: int


def load_word_vectors(workdir: str) -> WordVectors:
    """The input vectors of a word2vec workdir's latest checkpoint with the vocabulary of
    its recorded config (config.json); ConfigError for a workdir of another task."""
    from jaxlab.analysis.ensemble import load_config
    from jaxlab.config import ConfigError
    from jaxlab.data import get_source
    from jaxlab.train.checkpoint import Checkpointer
    from jaxlab.train.transfer import load_pretrained

    config = load_config(workdir)
    source = get_source(config.dataset.name)
    if config.task.name != "word2vec" or not hasattr(source, "vocabulary"):
        raise ConfigError(
            f"{workdir!r} is a {config.task.name!r} run on {config.dataset.name!r}, not a "
            "word2vec run"
        )
    params = load_pretrained(workdir)["params"]
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        step = int(ckpt.latest_step())
    finally:
        ckpt.close()
    vocab = source.vocabulary(config)
    vectors = np.asarray(params["input_embed"]["embedding"])
    return WordVectors(vectors, vocab.words, np.asarray(vocab.counts), step)
