"""The word2vec data: vocabulary order, subsampling and noise against gensim's own numbers,
windows that stay within the reduced window and the sentence, and an exactly resumable
stream."""

from __future__ import annotations

import numpy as np
import pytest

from jaxlab.config import default_config
from jaxlab.data import word2vec as w2v

SENTENCES = [
    "a b c a d e a b f g".split(),
    "h b a c c d i j".split(),
    "e e k a b c l".split(),
]


def test_vocabulary_subsampling_and_noise_equal_gensims():
    """gensim's build_vocab on the same sentences: the same words in the same order (ties in
    reverse order of first appearance), keep probabilities equal to its sample_int / (2^32 - 1)
    and to the formula, and noise probabilities equal to its cumulative table's steps."""
    from gensim.models import Word2Vec

    sample = 0.05
    model = Word2Vec(min_count=2, sample=sample, negative=5, seed=1)
    model.build_vocab(SENTENCES)
    vocab = w2v.build_vocabulary(SENTENCES, min_count=2)
    assert vocab.words == tuple(model.wv.index_to_key)
    counts = np.array([model.wv.get_vecattr(w, "count") for w in vocab.words])
    np.testing.assert_array_equal(vocab.counts, counts)
    keep = w2v.keep_probabilities(vocab.counts, sample)
    t = sample * counts.sum()
    np.testing.assert_allclose(keep, np.minimum(1, (np.sqrt(counts / t) + 1) * t / counts))
    assert keep.min() < 1  # the sample is small enough to drop something
    gensim_keep = model.wv.expandos["sample_int"] / (2**32 - 1)
    np.testing.assert_allclose(keep, gensim_keep, atol=1e-9)
    np.testing.assert_array_equal(w2v.keep_probabilities(counts, 0.0), np.ones(len(counts)))
    noise = w2v.noise_distribution(vocab.counts)
    np.testing.assert_allclose(noise, counts**0.75 / np.sum(counts**0.75))
    steps = np.diff(model.cum_table, prepend=0) / model.cum_table[-1]
    np.testing.assert_allclose(noise, steps, atol=1e-8)


def test_subsampling_keeps_words_at_their_probability():
    ids = np.repeat(np.arange(2, dtype=np.int32), [40_000, 40_000])
    keep = np.array([0.3, 1.0])
    out = w2v.epoch_windows(ids, np.zeros_like(ids), keep, 2, np.random.default_rng(0))
    kept = np.bincount(out["center"], minlength=2)
    assert kept[1] == 40_000
    assert abs(kept[0] / 40_000 - 0.3) < 0.01


@pytest.mark.parametrize("keep_prob", [1.0, 0.6])
def test_windows_stay_in_the_reduced_window_and_the_sentence(keep_prob):
    """Token ids are their positions, so a context id tells its offset. Every unmasked slot
    is another kept token of the same sentence, at the slot's offset in the closed-up
    sequence of kept tokens, and the unmasked offsets are exactly those within a radius r in
    1..W (clipped by the sentence), with r uniform."""
    window, n = 4, 3000
    ids = np.arange(n, dtype=np.int32)
    sentence = (ids // 100).astype(np.int32)
    keep = np.full(n, keep_prob)
    out = w2v.epoch_windows(ids, sentence, keep, window, np.random.default_rng(3))
    center, context, mask = out["center"], out["context"], out["context_mask"] > 0
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    kept = center  # the kept tokens, in order
    position = {int(t): i for i, t in enumerate(kept)}
    radii = []
    for i, c in enumerate(center):
        for slot in np.flatnonzero(mask[i]):
            j = position[int(context[i, slot])]
            assert context[i, slot] != c
            assert j - i == offsets[slot]
            assert sentence[context[i, slot]] == sentence[c]
        possible = [
            o for o in offsets if 0 <= i + o < len(kept) and sentence[kept[i + o]] == sentence[c]
        ]
        used = set(offsets[mask[i]].tolist())
        r = max((abs(o) for o in used), default=0)
        assert used == {o for o in possible if abs(o) <= r}
        if len(possible) == 2 * window:  # not clipped: the radius is visible
            radii.append(r)
    counts = np.bincount(radii, minlength=window + 1)[1:]
    assert counts.min() > 0.8 * len(radii) / window  # uniform over 1..W


def test_train_stream_resumes_exactly_across_epochs():
    """On gensim's small lee.cor corpus (the same source class as head500)."""
    config = default_config()
    config.dataset.name = "lee"
    config.dataset.train_split = config.dataset.eval_split = "train"
    config.dataset.shuffle_buffer = 1
    config.batch_size = 300  # a few steps per epoch: batches straddle epoch ends
    source = w2v.Word2VecCorpus("lee.cor")
    info = source.info(config)
    steps = source.steps_per_epoch(config, info)
    assert steps == info.num_train_examples // 300 and 2 <= steps <= 10
    kwargs = {"process_index": 0, "process_count": 1}
    stream = source.train_iterator(config, info, start_step=0, **kwargs)
    batches = [next(stream) for _ in range(2 * steps + 2)]
    for start in (steps - 1, 2 * steps + 1):
        resumed = next(source.train_iterator(config, info, start_step=start, **kwargs))
        for key in resumed:
            np.testing.assert_array_equal(resumed[key], batches[start][key])
    # The stream is the epochs' windows concatenated: epoch 0, epoch 1, ... (none dropped).
    epochs = [source._epoch(config, e)["center"] for e in range(3)]
    joined = np.concatenate(epochs)[: 300 * len(batches)]
    np.testing.assert_array_equal(np.concatenate([b["center"] for b in batches]), joined)
    assert not np.array_equal(epochs[0], epochs[1])  # each epoch draws anew
    # Two processes hold the interleaved rows of the same global batch.
    half = next(
        source.train_iterator(config, info, start_step=steps, process_index=1, process_count=2)
    )
    np.testing.assert_array_equal(half["context"], batches[steps]["context"][1::2])
