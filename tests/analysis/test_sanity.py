"""The recipe's checks: init statistics against a numpy forward/backward pass, the
learning-rate verdict, the regularization switch-off, and (slow) the initial-loss and
overfit checks on the digits softmax regression."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.analysis.init_stats import layer_statistics, plot_stats
from jaxlab.analysis.sanity import lr_verdict, no_regularization


class TwoLayers(nn.Module):
    @nn.compact
    def __call__(self, x, *, train: bool):
        h = nn.Dense(6, bias_init=nn.initializers.constant(-0.3))(x)
        return nn.Dense(3)(nn.relu(h))


def test_init_statistics_equal_a_numpy_forward_and_backward_pass(tmp_path):
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    model = TwoLayers()
    variables = model.init(jax.random.key(0), x, train=False)
    rows = layer_statistics(model, variables, jnp.asarray(x), jnp.asarray(y))
    assert [r.name for r in rows] == ["Dense_0", "Dense_1"]
    p = jax.tree.map(np.asarray, variables["params"])
    h = x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    logits = np.maximum(h, 0) @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    d_logits = (prob - np.eye(3)[y]) / len(y)
    d_h = d_logits @ p["Dense_1"]["kernel"].T * (h > 0)
    np.testing.assert_allclose(rows[0].act_std, h.std(), rtol=1e-5)
    np.testing.assert_allclose(rows[0].act_mean, h.mean(), rtol=1e-4, atol=1e-6)
    assert rows[0].dead_fraction == pytest.approx(np.mean(np.all(h <= 0, axis=0)))
    np.testing.assert_allclose(rows[1].grad_std, d_logits.std(), rtol=1e-4)
    np.testing.assert_allclose(rows[0].grad_std, d_h.std(), rtol=1e-4)
    np.testing.assert_allclose(rows[0].kernel_grad_std, (x.T @ d_h).std(), rtol=1e-4)
    plot_stats(rows, str(tmp_path / "init.png"))
    assert (tmp_path / "init.png").exists()


def test_lr_verdict_places_the_config_rate():
    result = {"max_lr": 0.3, "base_lr": 0.1, "base_lr_low": 0.075}
    assert lr_verdict(result, 0.1).ok and "0.3" in lr_verdict(result, 0.1).message
    assert not lr_verdict(result, 1.0).ok and "instability" in lr_verdict(result, 1.0).message
    assert not lr_verdict(result, 1e-4).ok and "slow" in lr_verdict(result, 1e-4).message


def test_no_regularization_switches_off_what_the_config_has():
    from configs.digits_mlp import get_config

    c = get_config()
    c.unlock()
    c.optimizer.weight_decay, c.dataset.augment = 1e-3, "flip_lr"
    off = no_regularization(c)
    assert off.optimizer.weight_decay == 0 and off.model.dropout == 0 and off.dataset.augment == ""
    assert c.model.dropout == 0.1 and "attention_dropout" not in off.model  # no key added


@pytest.mark.slow
def test_initial_loss_and_overfit_on_digits_softmax():
    from configs.digits_softmax import get_config
    from jaxlab.analysis.sanity import initial_loss_check, overfit_check

    c = get_config("smoke")
    loss, decay = initial_loss_check(c)
    assert loss.ok and "ln(10)" in loss.message and decay.ok
    verdict, curve = overfit_check(c, num_batches=1, max_steps=60, check_every=10)
    assert verdict.ok and curve["accuracy"][-1] >= 0.99, verdict.message
