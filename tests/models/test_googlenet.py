"""Tests of jaxlab.models.googlenet: the paper's layout and the aux-logits contract."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab.models import get_model
from jaxlab.models.googlenet import AUX_LOSS_WEIGHT
from tests.models.utils import abstract_variables

SHAPE = (2, 32, 32, 3)


def _apply_abstract(model, train, mutable):
    variables = abstract_variables(model, SHAPE, train=False)
    x = jax.ShapeDtypeStruct(SHAPE, jnp.float32)
    return jax.eval_shape(
        lambda v, inp: model.apply(
            v, inp, train=train, rngs={"dropout": jax.random.key(0)}, mutable=mutable
        ),
        variables,
        x,
    )


def test_paper_layout_5x5_branch_biases_and_no_batch_norm():
    params = abstract_variables(get_model("googlenet", aux_logits=False), SHAPE, train=False)
    assert set(params) == {"params"}  # no batch statistics: the paper has no batch norm
    p = params["params"]
    assert p["inception3a"]["b3_conv"]["conv"]["kernel"].shape == (5, 5, 16, 32)
    assert p["inception5b"]["b2_conv"]["conv"]["kernel"].shape == (3, 3, 192, 384)
    assert "bias" in p["conv1"]["conv"]
    assert not any(k.startswith("aux") for k in p)


def test_batch_norm_variant_drops_conv_biases():
    v = abstract_variables(
        get_model("googlenet", aux_logits=False, norm="batch"), SHAPE, train=False
    )
    assert "bias" not in v["params"]["conv1"]["conv"] and "norm" in v["params"]["conv1"]
    assert "batch_stats" in v


def test_aux_logits_are_sown_in_train_only():
    model = get_model("googlenet", num_classes=7)
    assert model.aux_loss_weight == AUX_LOSS_WEIGHT == 0.3
    init_vars = abstract_variables(model, SHAPE, train=False)
    assert {"aux1", "aux2"} <= set(init_vars["params"]) and "intermediates" not in init_vars
    logits, state = _apply_abstract(model, True, ["intermediates"])
    assert logits.shape == (2, 7)
    aux = state["intermediates"]["aux_logits"]
    assert isinstance(aux, tuple) and [a.shape for a in aux] == [(2, 7), (2, 7)]
    _, eval_state = _apply_abstract(model, False, ["intermediates"])
    assert "intermediates" not in eval_state or not eval_state["intermediates"]
    logits_only = _apply_abstract(model, True, False)  # not mutable: nothing sown, no error
    assert logits_only.shape == (2, 7)


def test_aux_init_with_train_true_creates_no_intermediates():
    model = get_model("googlenet", num_classes=7)
    x = jax.ShapeDtypeStruct(SHAPE, jnp.float32)
    variables = jax.eval_shape(
        lambda inp: model.init(
            {"params": jax.random.key(0), "dropout": jax.random.key(1)}, inp, train=True
        ),
        x,
    )
    assert set(variables) == {"params"}
