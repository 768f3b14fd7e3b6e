"""The video_frames task (loss on the last k frames, flip rate) and the video classifiers
(shared per-frame encoder; causal recurrent head vs frame by frame)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.models import get_model
from jaxlab.tasks.base import StepContext
from jaxlab.tasks.video_frames import flip_rate, loss_frames_option, make_video_fns

B, T, K = 3, 6, 4


def _ctx() -> StepContext:
    return StepContext(step=jnp.zeros((), jnp.int32), rngs={"dropout": jax.random.key(0)})


def test_loss_is_the_mean_cross_entropy_of_the_last_k_frames_of_real_examples():
    # Frame t of clip b has logit a[b, t] on its label and 0 elsewhere:
    # CE = log(1 + (K - 1) exp(-a)).
    a = (np.arange(B * T, dtype=np.float32).reshape(B, T) + 0.5) / 4 - 1  # never 0
    labels = np.array([[0, 1, 2, 3, 0, 1], [3, 3, 3, 3, 3, 3], [1, 2, 1, 2, 1, 2]], np.int32)
    logits = jnp.asarray(np.eye(K, dtype=np.float32)[labels] * a[..., None])
    apply_fn = lambda variables, clip, train, rngs=None: logits  # noqa: E731
    batch = {"clip": jnp.zeros((B, T, 2, 2, 1)), "label": jnp.asarray(labels)}
    ce = np.log1p((K - 1) * np.exp(-a.astype(np.float64)))
    for k in (1, 4, T):
        loss_fn, eval_fn = make_video_fns(K, k)
        loss, (_, metrics) = loss_fn(apply_fn, {}, {}, batch, _ctx(), True)
        np.testing.assert_allclose(float(loss), ce[:, T - k :].mean(), rtol=1e-6)
        # Eval: the padded example (mask 0) counts in neither the loss nor the accuracy.
        mask = jnp.asarray([1.0, 0.0, 1.0])
        metrics = eval_fn(apply_fn, {}, {}, {**batch, "mask": mask}, _ctx())
        np.testing.assert_allclose(
            float(metrics["loss"].compute()), ce[[0, 2], T - k :].mean(), rtol=1e-6
        )
        correct = a[[0, 2], T - k :] > 0
        assert float(metrics["accuracy"].compute()) == pytest.approx(correct.mean())
        assert float(metrics["accuracy_all"].compute()) == pytest.approx((a[[0, 2]] > 0).mean())
    assert loss_frames_option(ml_collections.ConfigDict({}), T) == T
    with pytest.raises(ConfigError, match=r"task.loss_frames must be in \[1, 6\]"):
        loss_frames_option(ml_collections.ConfigDict({"loss_frames": 7}), T)


def test_flip_rate_matches_numpy_over_pairs_of_weighted_frames():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 3, (5, 9))
    weights = rng.random((5, 9)) < 0.7
    flips, pairs = 0, 0
    for b in range(5):
        for t in range(1, 9):
            if weights[b, t] and weights[b, t - 1]:
                pairs += 1
                flips += values[b, t] != values[b, t - 1]
    got = flip_rate(jnp.asarray(values), jnp.asarray(weights))
    assert int(got.count) == pairs
    assert float(got.compute()) == pytest.approx(flips / pairs)


@pytest.mark.parametrize("name", ["video_cnn_lstm", "video_cnn"])
def test_recurrent_head_is_causal_and_frame_by_frame_head_sees_one_frame(name):
    model = get_model(name, num_classes=K, widths=(4,), features=8, hidden_size=8)
    clips = jax.random.uniform(jax.random.key(1), (2, T, 8, 8, 1))
    init = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))
    variables = init(clips)
    # Shared encoder: the parameters do not depend on the number of frames.
    shorter = jax.eval_shape(init, clips[:, :2])
    assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, shorter)
    # The clips and a copy with frame 3 changed, in one batch (one compiled apply).
    both = jnp.concatenate([clips, clips.at[:, 3].set(1.0)])
    out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, both)
    assert out.shape == (4, T, K)
    base, changed = out[:2], out[2:]
    moved = np.asarray(jnp.abs(changed - base).max(axis=(0, 2)) > 1e-6)
    expected = np.arange(T) >= 3 if name == "video_cnn_lstm" else np.arange(T) == 3
    np.testing.assert_array_equal(moved, expected)
