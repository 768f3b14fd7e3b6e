"""Word-vector tools against gensim's KeyedVectors and scipy on fixed vectors, 3CosAdd on a
hand-made embedding, and projector files read back with TensorBoard's own proto."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import stats

from jaxlab.analysis import embeddings as emb

WORDS = tuple(f"w{i}" for i in range(40))


@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(0).normal(size=(len(WORDS), 6)).astype(np.float32)


@pytest.fixture(scope="module")
def keyed(vectors):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(list(WORDS), vectors)
    return kv


def test_word_similarity_equals_gensim_and_scipy(tmp_path, vectors, keyed):
    rng = np.random.default_rng(1)
    lines = ["# Word 1\tWord 2\tHuman (mean)"]
    for _ in range(30):
        a, b = rng.choice(45, 2)  # w40..w44 are out of the vocabulary
        lines.append(f"W{a}\tw{b}\t{rng.uniform(0, 10):.2f}")
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n")
    pairs = emb.read_word_pairs(str(path))
    got = emb.word_similarity(vectors, WORDS, pairs)
    pearson, spearman, oov = keyed.evaluate_word_pairs(str(path))
    assert got["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert got["pearson"] == pytest.approx(pearson.statistic, abs=1e-5)
    assert got["coverage"] == pytest.approx(1 - oov / 100)
    # The same number straight from scipy on the covered pairs' cosines.
    index = {w: i for i, w in enumerate(WORDS)}
    kept = [
        (a, b, s)
        for a, b, s in zip(pairs.first, pairs.second, pairs.score, strict=True)
        if a in index and b in index
    ]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = [float(unit[index[a]] @ unit[index[b]]) for a, b, _ in kept]
    assert got["spearman"] == pytest.approx(stats.spearmanr([s for *_, s in kept], cos).statistic)
    assert got["pairs"] == len(kept) < 30


def test_analogy_3cosadd_on_a_hand_made_embedding():
    # Axes: royalty, gender, noise. king - man + woman = queen; "prince" is close to king
    # but male; the inputs (king, man, woman) are excluded from the answers.
    words = ("man", "woman", "king", "queen", "prince", "apple")
    vectors = np.array(
        [[0, 1, 0.1], [0, -1, 0.1], [1, 1, 0], [1, -1, 0], [1, 0.9, 0.2], [-1, 0, 1]], np.float64
    )
    assert emb.analogy(vectors, words, "man", "king", "woman")[0][0] == "queen"
    assert emb.analogy(vectors, words, "woman", "queen", "man")[0][0] in ("king", "prince")
    questions = [("man", "king", "woman", "queen"), ("man", "woman", "king", "queen")]
    got = emb.analogy_accuracy(vectors, words, questions + [("man", "king", "woman", "duke")])
    assert got == {"accuracy": 1.0, "coverage": 2 / 3, "correct": 2.0, "questions": 2.0}
    # Restricting the searched words to the 3 most frequent covers no question.
    assert emb.analogy_accuracy(vectors, words, questions, restrict_vocab=3)["questions"] == 0


def test_analogy_accuracy_and_neighbours_equal_gensims(tmp_path, vectors, keyed):
    rng = np.random.default_rng(2)
    lines = [": section-a"]
    for i in range(60):
        if i == 30:
            lines.append(": section-b")
        a, b, c, d = rng.choice(42, 4, replace=False)  # w40, w41 are unknown
        lines.append(f"w{a} w{b} w{c} w{d}")
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(lines) + "\n")
    questions = emb.read_analogies(str(path))
    got = emb.analogy_accuracy(vectors, WORDS, questions)
    score, sections = keyed.evaluate_word_analogies(str(path))
    total = sections[-1]
    assert got["correct"] == len(total["correct"]) > 0
    assert got["questions"] == len(total["correct"]) + len(total["incorrect"])
    assert got["accuracy"] == pytest.approx(score)
    ours = emb.nearest_neighbours(vectors, WORDS, "w3", topn=5)
    theirs = keyed.most_similar("w3", topn=5)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)


def test_projector_files_are_well_formed(tmp_path, vectors):
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    counts = np.arange(len(WORDS), 0, -1)
    paths = emb.export_projector(str(tmp_path), vectors, WORDS, counts, tensor_name="w2v/input")
    config = text_format.Parse(open(paths["config"]).read(), projector_config_pb2.ProjectorConfig())
    assert os.path.basename(paths["config"]) == "projector_config.pbtxt"
    (embedding,) = config.embeddings
    assert embedding.tensor_name == "w2v/input" and not embedding.sprite.image_path
    loaded = np.loadtxt(tmp_path / embedding.tensor_path, delimiter="\t")
    np.testing.assert_allclose(loaded, vectors, rtol=1e-5, atol=1e-6)
    rows = open(tmp_path / embedding.metadata_path).read().splitlines()
    assert rows[0] == "word\tcount" and len(rows) == len(WORDS) + 1
    assert rows[1:] == [f"{w}\t{c}" for w, c in zip(WORDS, counts, strict=True)]
    emb.export_projector(str(tmp_path / "plain"), vectors, WORDS)  # one column: no header
    assert open(tmp_path / "plain" / "metadata.tsv").read().splitlines() == list(WORDS)
    with pytest.raises(ValueError, match="TSV"):
        emb.export_projector(str(tmp_path / "bad"), vectors[:1], ("a\tb",))
