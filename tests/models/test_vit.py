"""Tests of jaxlab.models.vit and jaxlab.models.mixer."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.models import get_model
from tests.models.utils import abstract_forward, fast_key, numpy_variables, randn

SMALL = dict(num_classes=5, patch_size=4, hidden_size=16, depth=2, num_heads=2, mlp_dim=32)


@pytest.mark.parametrize("size, tokens", [(32, 65), (16, 17), (18, 17)])
def test_vit_tokens_follow_the_input_size(size, tokens):
    logits, v = abstract_forward(
        get_model("vit_tiny", patch_size=4, num_classes=10), (2, size, size, 3)
    )
    assert logits.shape == (2, 10)
    assert v["params"]["pos_embedding"].shape == (1, tokens, 192)
    assert v["params"]["cls_token"].shape == (1, 1, 192)


def test_vit_gap_classifier_has_no_class_token():
    _, v = abstract_forward(get_model("vit", classifier="gap", **SMALL), (1, 8, 8, 3))
    assert "cls_token" not in v["params"] and v["params"]["pos_embedding"].shape == (1, 4, 16)
    with pytest.raises(ConfigError, match="token, gap"):
        abstract_forward(get_model("vit", classifier="mean", **SMALL), (1, 8, 8, 3))


def test_vit_dropout_and_stochastic_depth_are_identity_at_eval():
    x = randn(3, 8, 8, 3)
    plain = get_model("vit", **SMALL)
    noisy = get_model("vit", dropout=0.3, attention_dropout=0.3, stochastic_depth=0.5, **SMALL)
    variables = numpy_variables(plain, x.shape, train=False)
    fn = jax.jit(lambda v, inp, r: noisy.apply(v, inp, train=False, rngs={"dropout": r}))
    np.testing.assert_allclose(
        fn(variables, x, fast_key(0)), plain.apply(variables, x, train=False), rtol=1e-5, atol=1e-6
    )
    train = jax.jit(lambda v, inp, r: noisy.apply(v, inp, train=True, rngs={"dropout": r}))
    assert not np.allclose(train(variables, x, fast_key(1)), train(variables, x, fast_key(2)))


def test_mixer_token_mlp_width_is_the_number_of_patches():
    logits, v = abstract_forward(
        get_model("mlp_mixer", patch_size=4, num_classes=10), (2, 32, 32, 3)
    )
    assert logits.shape == (2, 10)
    token = v["params"]["block1"]["token_mixing"]
    assert token["fc1"]["kernel"].shape == (64, 256) and token["fc2"]["kernel"].shape == (256, 64)
    assert v["params"]["block1"]["channel_mixing"]["fc1"]["kernel"].shape == (512, 2048)
