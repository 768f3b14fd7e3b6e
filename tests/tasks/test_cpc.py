"""CPC: the patch grid, a causal context, and InfoNCE with a W_k per step against numpy
loops; the task's config checks."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.config import ConfigError
from jaxlab.losses_contrastive import in_batch_info_nce
from jaxlab.models.ssl_cpc import CPCNet, patch_grid
from jaxlab.tasks.cpc import cpc_losses


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max()
    return x - np.log(np.sum(np.exp(x)))


def test_in_batch_info_nce_matches_numpy():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    valid = np.array([1, 1, 0, 1, 1, 1], bool)
    loss, correct = in_batch_info_nce(p, t, valid)
    cand = np.flatnonzero(valid)
    for i in range(6):
        if not valid[i]:
            assert loss[i] == 0 and not correct[i]
            continue
        scores = np.array([p[i] @ t[j] for j in cand])
        np.testing.assert_allclose(loss[i], -log_softmax(scores)[list(cand).index(i)], rtol=1e-5)
        assert correct[i] == (cand[scores.argmax()] == i)


def test_cpc_losses_match_numpy():
    """Step k's prediction at (b, t, j) against every existing target (b', t' + k, j')."""
    rng = np.random.default_rng(1)
    b, gh, gw, d, steps = 2, 3, 2, 4, 2
    z = rng.normal(size=(b, gh, gw, d))
    preds = rng.normal(size=(steps, b, gh, gw, d))
    mask = np.array([1.0, 1.0])
    loss, _, valid = cpc_losses(jnp.asarray(z), jnp.asarray(preds), jnp.asarray(mask))
    loss, valid = np.asarray(loss).reshape(steps, b, gh, gw), np.asarray(valid)
    for k in range(1, steps + 1):
        positions = [(bb, t, j) for bb in range(b) for t in range(gh - k) for j in range(gw)]
        assert valid[k - 1].sum() == len(positions)
        for bb, t, j in positions:
            scores = np.array(
                [preds[k - 1, bb, t, j] @ z[b2, t2 + k, j2] for b2, t2, j2 in positions]
            )
            own = positions.index((bb, t, j))
            np.testing.assert_allclose(loss[k - 1, bb, t, j], -log_softmax(scores)[own], rtol=1e-5)
    # A padding example (mask 0) is neither a prediction nor a negative.
    _, _, valid_masked = cpc_losses(jnp.asarray(z), jnp.asarray(preds), jnp.asarray([1.0, 0.0]))
    assert np.asarray(valid_masked).reshape(steps, b, gh, gw)[:, 1].sum() == 0


def test_patch_grid():
    x = jnp.arange(2 * 8 * 8 * 1, dtype=jnp.float32).reshape(2, 8, 8, 1)
    grid = patch_grid(x, 4, 2)
    assert grid.shape == (2, 3, 3, 4, 4, 1)
    for r in range(3):
        for c in range(3):
            np.testing.assert_array_equal(grid[:, r, c], x[:, 2 * r : 2 * r + 4, 2 * c : 2 * c + 4])


class PatchMLP(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x, *, train):
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


def test_context_is_causal_down_the_columns():
    net = CPCNet(encoder=PatchMLP(6), feature_dim=6, context_dim=5, prediction_steps=2)
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 1))
    variables = net.init(jax.random.key(1), x, train=False)
    apply = jax.jit(lambda v, x: net.apply(v, x, train=False))
    z, c, preds = apply(variables, x)
    assert z.shape == (2, 3, 3, 6) and c.shape == (2, 3, 3, 5) and preds.shape == (2, 2, 3, 3, 6)
    # Changing the bottom rows (only the last patch row sees rows 6-7) leaves the contexts
    # of rows 0 and 1 as they were, and changes row 2's.
    _, c2, _ = apply(variables, x.at[:, 6:].set(5.0))
    np.testing.assert_allclose(c2[:, :2], c[:, :2], atol=1e-6)
    assert not np.allclose(c2[:, 2], c[:, 2], atol=1e-3)
    # A separate W_k per step: prediction k is c @ W_k.
    w = variables["params"]["predictors"]
    np.testing.assert_allclose(preds[1], jnp.einsum("bhwc,cd->bhwd", c, w[1]), atol=1e-5)


def test_config_errors():
    from configs.digits_cpc import get_config
    from jaxlab.data import DatasetInfo, Feature
    from jaxlab.tasks.base import Optimizer, TaskSetup
    from jaxlab.tasks.cpc import CPCTask

    config = get_config("smoke")
    config.task.prediction_steps = 3
    image = {"image": Feature((8, 8, 1), np.float32, "image")}
    info = DatasetInfo("digits", image, image, 10, 1437, 360)
    opt = Optimizer(optax.sgd(0.1), optax.constant_schedule(0.1))
    with pytest.raises(ConfigError, match=r"prediction_steps \(3\) must be fewer than"):
        CPCTask(TaskSetup(config, info, 10, 10, None, {"default": opt}))
