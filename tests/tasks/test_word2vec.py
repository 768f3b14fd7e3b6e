"""The word2vec task: its loss against numpy, its sparse SGD step against word2vec's update
computed in numpy (only the gathered rows move), its negatives' distribution, and a tiny
run of the loop on head500."""

from __future__ import annotations

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.models.word2vec import INPUT_TABLE, OUTPUT_TABLE, Word2Vec
from jaxlab.tasks.base import StepContext
from jaxlab.tasks.word2vec import Word2VecTask, draw_negatives, negative_sampling_loss

V, D, K = 12, 8, 3


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_negative_sampling_loss_equals_numpy():
    rng = np.random.default_rng(0)
    h, out = rng.normal(size=(4, D)), rng.normal(size=(4, 1 + K, D))
    weights = (rng.random((4, 1 + K)) > 0.3).astype(np.float32)
    scores = np.einsum("bd,bkd->bk", h, out)
    expected = -weights[:, 0] * np.log(_sigmoid(scores[:, 0])) - np.sum(
        weights[:, 1:] * np.log(_sigmoid(-scores[:, 1:])), axis=-1
    )
    got = negative_sampling_loss(jnp.asarray(scores, jnp.float32), jnp.asarray(weights))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_negatives_follow_the_noise_distribution():
    noise = np.array([0.5, 0.0, 0.3, 0.2])
    ids = draw_negatives(jax.random.key(0), jnp.asarray(np.cumsum(noise), jnp.float32), (40_000,))
    freq = np.bincount(np.asarray(ids), minlength=4) / 40_000
    np.testing.assert_allclose(freq, noise, atol=0.01)
    assert freq[1] == 0


def _task(mode: str) -> Word2VecTask:
    counts = np.arange(V, 0, -1) * 10
    noise = counts**0.75 / np.sum(counts**0.75)
    return Word2VecTask(
        model=Word2Vec(vocab_size=V, embed_dim=D, mode=mode),
        schedule=lambda step: 0.1 / (1.0 + step),
        noise=noise,
        negatives=K,
        max_exp=0.0,
        words=tuple(f"w{i}" for i in range(V)),
        counts=counts,
    )


def _reference_update(mode, params, batch, ids, weights, lr):
    """word2vec's update (gensim's fast_sentence_*_neg), each pair's computed from the same
    tables and summed, in numpy: g = (label - sigmoid(h . v)) * lr; the output row gets g h,
    the hidden vector's error is sum g v, added to the input row of the context word
    (skip-gram) or to every context word (CBOW, the mean's error undivided)."""
    syn0 = np.array(params[INPUT_TABLE]["embedding"], np.float64)
    syn1 = np.array(params[OUTPUT_TABLE]["embedding"], np.float64)
    new0, new1 = syn0.copy(), syn1.copy()
    context, mask = batch["context"], batch["context_mask"]
    for b in range(context.shape[0]):
        slots = np.flatnonzero(mask[b])
        groups = [[s] for s in slots] if mode == "skipgram" else [list(slots)]
        for group in groups:
            if not group:
                continue
            h = syn0[context[b, group]].mean(0)
            cand = ids[b, group[0]] if mode == "skipgram" else ids[b]
            w = weights[b, group[0]] if mode == "skipgram" else weights[b]
            err = np.zeros(D)
            for k, target in enumerate(cand):
                label = 1.0 if k == 0 else 0.0
                g = (label - _sigmoid(h @ syn1[target])) * lr * w[k]
                err += g * syn1[target]
                new1[target] += g * h
            for c in context[b, group]:
                new0[c] += err
    return new0, new1


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_one_step_is_word2vecs_update_on_the_gathered_rows_only(mode):
    task = _task(mode)
    rng = np.random.default_rng(1)
    batch = {
        "center": jnp.asarray([1, 4, 7], jnp.int32),
        "context": jnp.asarray(rng.integers(0, 6, (3, 4)), jnp.int32),  # rows >= 6 never
        "context_mask": jnp.asarray([[1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 0, 0]], jnp.float32),
    }
    ctx = StepContext(
        step=jnp.asarray(1, jnp.int32),
        rngs={"params": jax.random.key(2), "negatives": jax.random.key(3)},
    )
    state = task.init_state(batch, ctx)
    # Non-zero output vectors, so that both tables receive gradients.
    out = jax.random.normal(jax.random.key(4), (V, D)) * 0.3
    state = state.replace(params={**state.params, OUTPUT_TABLE: {"embedding": out}})
    new, metrics = jax.jit(task.train_step)(state, batch, ctx)
    ids, weights = task.candidates(batch, ctx.rng("negatives"))
    ref0, ref1 = _reference_update(
        mode,
        state.params,
        jax.tree.map(np.asarray, batch),
        np.asarray(ids),
        np.asarray(weights),
        0.05,
    )
    got0 = np.asarray(new.params[INPUT_TABLE]["embedding"])
    got1 = np.asarray(new.params[OUTPUT_TABLE]["embedding"])
    np.testing.assert_allclose(got0, ref0, atol=1e-5)
    np.testing.assert_allclose(got1, ref1, atol=1e-5)
    old0 = np.asarray(state.params[INPUT_TABLE]["embedding"])
    moved_in = np.flatnonzero(np.any(got0 != old0, axis=1))
    used_in = np.unique(np.asarray(batch["context"])[np.asarray(batch["context_mask"]) > 0])
    assert set(moved_in) == set(used_in)
    moved_out = np.flatnonzero(np.any(got1 != np.asarray(out), axis=1))
    assert set(moved_out) <= set(np.asarray(ids)[np.asarray(weights) > 0].tolist())
    assert len(moved_out) > 0
    assert math.isfinite(float(metrics["loss"].compute()))
    assert float(metrics["learning_rate"].compute()) == pytest.approx(0.05)


def test_tiny_run_of_the_loop_logs_the_evaluators(tmp_path):
    from configs.head500_skipgram import get_config
    from jaxlab.train import train_and_evaluate

    config = get_config("smoke")
    config.checkpoint_every_steps = 0
    config.evaluators.analogies.every_steps = 0
    workdir = str(tmp_path / "run")
    metrics = train_and_evaluate(config, workdir, async_checkpoints=False)
    assert math.isfinite(metrics["loss"])
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    wordsim = [r for r in rows if "wordsim/spearman" in r]
    assert [r["step"] for r in wordsim] == [3, 6]
    # head500 at min_count 5: gensim's 7,978 words; 96 of WordSim-353's pairs are covered.
    assert wordsim[-1]["wordsim/pairs"] == 96
    assert wordsim[-1]["wordsim/coverage"] == pytest.approx(96 / 353)
    analogies = [r for r in rows if "analogies/accuracy" in r]
    assert len(analogies) == 1 and 0 < analogies[0]["analogies/coverage"] < 1
    assert any("train/loss" in r for r in rows)
