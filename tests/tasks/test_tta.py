"""Test-time augmentation views and the averaged-prediction eval function."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.tasks.tta import make_tta_eval_fn, parse_tta, tta_views


def test_views():
    x = jnp.arange(2 * 8 * 8 * 1, dtype=jnp.float32).reshape(2, 8, 8, 1)
    assert len(tta_views(x, ("flip",))) == 2
    np.testing.assert_array_equal(tta_views(x, ("flip",))[1], x[:, :, ::-1])
    views = tta_views(x, ("crops",), shift=2)
    assert len(views) == 5
    np.testing.assert_array_equal(views[1][:, 2:], x[:, :-2])  # shifted down by 2
    np.testing.assert_array_equal(views[1][:, :2], 0)
    assert len(tta_views(x, ("flip", "crops"))) == 10


def test_parse_tta_errors():
    assert parse_tta("flip, crops") == ("flip", "crops")
    with pytest.raises(ConfigError, match="unknown eval_tta view 'rotate'; valid choices: flip"):
        parse_tta("flip,rotate")


def test_tta_averages_probabilities():
    class Lopsided(nn.Module):  # a model whose prediction depends on the image's left half
        @nn.compact
        def __call__(self, x, *, train):
            left = x[:, :, : x.shape[2] // 2].mean(axis=(1, 2, 3))
            return jnp.stack([left, -left], axis=-1)

    model = Lopsided()
    x = jnp.concatenate([jnp.ones((1, 4, 2, 1)), -3 * jnp.ones((1, 4, 2, 1))], axis=2)
    batch = {"image": x, "label": jnp.array([0])}
    out = {
        k: m.compute() for k, m in make_tta_eval_fn(("flip",))(model.apply, {}, {}, batch).items()
    }
    p_plain = jax.nn.softmax(jnp.array([1.0, -1.0]))
    p_flip = jax.nn.softmax(jnp.array([-3.0, 3.0]))
    expected = -np.log((p_plain[0] + p_flip[0]) / 2)
    np.testing.assert_allclose(out["loss"], expected, rtol=1e-6)
    np.testing.assert_array_equal(out["accuracy"], 0.0)  # the flipped view dominates
