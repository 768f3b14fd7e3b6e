"""The seq2seq task: corpus BLEU against sacrebleu, beam search (beam 1 is greedy; a wider
beam finds the better sequence greedy misses), scheduled sampling at probability 0 is
teacher forcing, and the sampling schedules' closed forms."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import sacrebleu

from jaxlab.data.text import BOS, EOS, PAD
from jaxlab.models import get_model
from jaxlab.tasks import seq2seq

HYPS = [[3, 4, 5, 6, 7, 8], [9, 4, 4, 5], [3, 3, 3, 3, 3, 10, 11], [5, 6]]
REFS = [[3, 4, 5, 6, 8, 7], [9, 4, 5], [3, 3, 3, 3, 10, 11, 12], [5, 6, 7, 8, 9]]


def _sacrebleu(hyps, refs, smooth):
    text = lambda rows: [" ".join(map(str, r)) for r in rows]  # noqa: E731
    return sacrebleu.corpus_bleu(
        text(hyps), [text(refs)], tokenize="none", smooth_method=smooth
    ).score


@pytest.mark.parametrize("smooth", ["exp", "none"])
def test_corpus_bleu_equals_sacrebleu(smooth):
    # a corpus with a missing 4-gram match (smoothing matters), and one shorter than its
    # references (brevity penalty < 1)
    short = [h[:3] for h in HYPS]
    for hyps, refs in ((HYPS, REFS), (short, REFS), (REFS, REFS), ([[3, 4]], [[5, 6]])):
        expected = _sacrebleu(hyps, refs, smooth)
        assert seq2seq.corpus_bleu(hyps, refs, smooth=smooth) == pytest.approx(expected, abs=1e-9)
    assert seq2seq.corpus_bleu(REFS, REFS) == pytest.approx(100.0)
    assert seq2seq.strip_ids([3, 1, 4, EOS, 5, PAD]) == [3, 4]


class TableModel:
    """A hand-made contract-3 'model': the next-token distribution depends on (step, previous
    token) through a fixed table; its state is (step, previous token) per row."""

    V = 8

    def __init__(self):
        table = np.full((4, self.V, self.V), 1e-6)
        table[0, BOS, 3], table[0, BOS, 4] = 0.6, 0.4  # greedy takes 3 ...
        table[1, 3, 5:8] = 1 / 3  # ... where every continuation is 1/3
        table[1, 4, 5], table[1, 4, 6] = 0.9, 0.1  # 4 then 5 is likelier overall (0.36)
        table[2:, :, EOS] = 1.0
        self.logits = jnp.log(jnp.asarray(table / table.sum(-1, keepdims=True), jnp.float32))

    def apply(self, variables, *args, method, train=False, rngs=None):
        if method == "encode":
            return {"length": jnp.sum(args[0] != PAD, axis=1)}
        if method == "init_decode_state":
            memory, source, _ = args
            return jnp.zeros(source.shape[:1], jnp.int32)
        token, step, memory, source = args
        logits = self.logits[jnp.minimum(step, 3), token]
        return logits, step + 1, None


def test_beam_search_finds_the_better_sequence_that_greedy_misses():
    model, source = TableModel(), jnp.array([[3, 4], [5, 0]], jnp.int32)
    greedy, _ = seq2seq.greedy_decode(model.apply, None, source, 4)
    np.testing.assert_array_equal(greedy[0], [3, 5, EOS, PAD])
    tokens, score = seq2seq.beam_search(model.apply, None, source, 4, beam_size=2, alpha=0.0)
    np.testing.assert_array_equal(tokens, [[4, 5, EOS, PAD]] * 2)
    np.testing.assert_allclose(score, math.log(0.4 * 0.9), rtol=1e-4)
    beam1, _ = seq2seq.beam_search(model.apply, None, source, 4, beam_size=1, alpha=0.6)
    np.testing.assert_array_equal(beam1, greedy)


@pytest.fixture(scope="module")
def rnn():
    model = get_model("seq2seq_rnn", vocab_size=9, embed_dim=8, hidden=8, attention="bahdanau")
    source = jnp.array([[3, 4, 5, 0], [6, 7, 8, 3], [4, 4, 0, 0]], jnp.int32)
    target = jnp.array([[5, 4, 3, EOS, 0], [3, 8, 7, 6, EOS], [4, 4, EOS, 0, 0]], jnp.int32)
    params = jax.jit(lambda: model.init(jax.random.key(0), source, target, train=False)["params"])()
    return model, params, source, target


def test_beam_of_one_is_greedy_on_a_model(rnn):
    model, params, source, _ = rnn

    @jax.jit
    def both(params):
        greedy, _ = seq2seq.greedy_decode(model.apply, params, source, 6)
        beam, _ = seq2seq.beam_search(model.apply, params, source, 6, beam_size=1, alpha=0.6)
        return greedy, beam

    greedy, beam = both(params)
    np.testing.assert_array_equal(beam, greedy)


def test_scheduled_sampling_at_probability_zero_is_teacher_forcing(rnn):
    model, params, source, target = rnn

    @jax.jit
    def both(params):
        teacher = model.apply(
            {"params": params}, source, seq2seq.decoder_input(target), train=False
        )
        sampled = seq2seq.sampled_logits(
            model.apply, params, source, target, jnp.float32(0.0), jax.random.key(1)
        )
        return teacher, sampled

    teacher, sampled = both(params)
    np.testing.assert_allclose(sampled, teacher, atol=1e-5)
    np.testing.assert_array_equal(seq2seq.decoder_input(target)[:, 0], BOS)


def test_sampling_schedules():
    task = ml_collections.ConfigDict(
        {"training": "scheduled_sampling", "ss_schedule": "inverse_sigmoid", "ss_k": 100.0}
    )
    for step in (0, 100, 1000):
        expected = 1 - 100 / (100 + math.exp(step / 100))
        assert float(seq2seq.sampling_probability(step, task)) == pytest.approx(expected, 1e-5)
    task.ss_schedule, task.ss_decay_steps, task.ss_min_teacher = "linear", 1000, 0.2
    assert float(seq2seq.sampling_probability(250, task)) == pytest.approx(0.25)
    assert float(seq2seq.sampling_probability(5000, task)) == pytest.approx(0.8)
    task.training = "free_running"
    assert float(seq2seq.sampling_probability(0, task)) == 1.0
    task.training = "teacher_forcing"
    assert float(seq2seq.sampling_probability(10**6, task)) == 0.0


def test_attention_images_and_exact_match():
    maps = np.array([[[1.0, 0.0], [0.25, 0.75]]])
    images = seq2seq.attention_images(maps, scale=2)
    assert images.shape == (1, 4, 4, 1) and images[0, 3, 3, 0] == 0.75
    tokens = jnp.array([[3, EOS, PAD], [3, 4, EOS]])
    target = jnp.array([[3, EOS, PAD], [3, 5, EOS]])
    np.testing.assert_array_equal(seq2seq.exact_match(tokens, target), [True, False])
