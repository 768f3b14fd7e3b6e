"""The learning-rate range test's schedule and suggestions."""

from __future__ import annotations

import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.optim.lr_range import lr_range_schedule, smooth_losses, suggest_learning_rates


def test_schedule_grows_exponentially_between_the_bounds():
    s = lr_range_schedule(1e-6, 1.0, 101)
    np.testing.assert_allclose(
        [float(s(t)) for t in (0, 50, 100, 150)], [1e-6, 1e-3, 1.0, 1.0], rtol=1e-5
    )
    ratios = [float(s(t + 1)) / float(s(t)) for t in (0, 30, 80)]
    np.testing.assert_allclose(ratios, [10 ** (6 / 100)] * 3, rtol=1e-5)
    with pytest.raises(ConfigError):
        lr_range_schedule(1.0, 0.1, 10)
    with pytest.raises(ConfigError):
        lr_range_schedule(1e-3, 0.1, 1)


def test_smoothing_is_debiased():
    np.testing.assert_allclose(smooth_losses(np.full(5, 2.0)), np.full(5, 2.0))


def curve(n=300, noise=0.01, seed=0):
    """Loss falls fastest at lr = 1e-2 (tanh in log10 lr) and explodes past lr = 1."""
    lrs = np.logspace(-5, 1, n)
    x = np.log10(lrs)
    loss = 2.0 - np.tanh(2 * (x + 2)) + np.where(x > 0, np.expm1(3 * x) * 5, 0.0)
    return lrs, loss + noise * np.random.default_rng(seed).normal(size=n)


def test_suggests_the_steepest_descent_before_the_rise():
    lrs, losses = curve()
    s = suggest_learning_rates(lrs, losses)
    # the smoothing lags the curve by a few points; the steepest point stays near 1e-2
    assert 5e-3 < s["max_lr"] < 3e-2
    assert s["base_lr"] == pytest.approx(s["max_lr"] / 3)
    assert s["base_lr_low"] == pytest.approx(s["max_lr"] / 4)
    assert s["max_lr"] < s["min_loss_lr"] <= 1.5
    assert s["diverged_lr"] is not None and s["diverged_lr"] > s["min_loss_lr"]


def test_divergence_to_nan_stops_the_reading():
    lrs, losses = curve(noise=0.0)
    losses[250:] = np.nan
    s = suggest_learning_rates(lrs, losses)
    assert s["diverged_lr"] == pytest.approx(lrs[250])
    assert 5e-3 < s["max_lr"] < 3e-2


def test_a_loss_that_only_rises_is_an_error():
    lrs = np.logspace(-3, 0, 50)
    with pytest.raises(ValueError, match="never decreased"):
        suggest_learning_rates(lrs, 1.0 + lrs)
