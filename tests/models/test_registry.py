"""The registry's view of a model's fields: `model_fields`, `complete_model_config`,
`build_model` and the type check of field values (jaxlab/models/__init__.py)."""

from __future__ import annotations

import ml_collections
import pytest

from jaxlab.config import ConfigError
from jaxlab.models import (
    REQUIRED,
    build_model,
    complete_model_config,
    get_model,
    list_models,
    model_config_defaults,
    model_fields,
)


def test_model_fields_are_the_constructor_fields_with_the_preset_defaults():
    fields = model_fields("resnet20")
    assert (fields["depth"], fields["variant"], fields["num_classes"]) == (20, "cifar", 10)
    assert fields["norm"] == "batch" and fields["kernel_init"] is None
    assert "parent" not in fields and "name" not in fields
    assert model_fields("plain56")["shortcut"] == "none"
    assert model_fields("mlp")["num_classes"] is REQUIRED
    assert repr(REQUIRED) == "REQUIRED"
    with pytest.raises(ConfigError, match="unknown model 'resnet21'; valid choices: "):
        model_fields("resnet21")


@pytest.mark.parametrize("name", list_models())
def test_config_defaults_leave_out_context_and_unrepresentable_fields(name):
    defaults = model_config_defaults(name)
    assert not {"num_classes", "vocab_size", "bn_axis_name", "dtype"} & set(defaults)
    for key, value in defaults.items():
        plain = value.get() if isinstance(value, ml_collections.FieldReference) else value
        assert plain == model_fields(name)[key], (name, key)
    # The section a config gets builds the model as it is by default.
    section = {
        k: v.get() if isinstance(v, ml_collections.FieldReference) else v
        for k, v in defaults.items()
    }
    context = {k: 3 for k in ("num_classes", "vocab_size") if k in model_fields(name)}
    assert get_model(name, **context, **section) == get_model(name, **context)


def test_completion_adds_overridable_defaults_and_keeps_what_is_set():
    section = ml_collections.ConfigDict({"name": "resnet20", "width": 8})
    section.lock()
    complete_model_config(section)
    assert section.width == 8 and section.depth == 20 and section.norm == "batch"
    assert section.is_locked
    section.norm = "group:8"
    section.kernel_init = "kaiming_normal"  # a None default is a typed placeholder
    with pytest.raises(AttributeError, match="nrom"):  # still locked against misspellings
        section.nrom = "group:8"
    complete_model_config(section)  # idempotent
    assert section.norm == "group:8"


def test_completion_after_a_name_change_drops_the_previous_models_defaults():
    section = ml_collections.ConfigDict({"name": "resnet20", "width": 8})
    complete_model_config(section)
    section.name, section.dropout = "plain56", 0.0
    complete_model_config(section, previous_name="resnet20", keep=["dropout"])
    assert (section.depth, section.shortcut, section.width) == (56, "none", 8)
    section.name = "vit_tiny"
    complete_model_config(section, previous_name="plain56")
    assert "norm" not in section and section.hidden_size == 192
    assert section.width == 8  # set, not a default: kept (the model then refuses it)
    with pytest.raises(ConfigError, match="model 'vit_tiny' has no argument.*width"):
        get_model(section.name, **{k: v for k, v in section.items() if k != "name"})


def test_build_model_adds_context_only_where_the_model_has_the_field():
    model = build_model("small_cnn", {"widths": (4,)}, num_classes=7, bn_axis_name="data")
    assert (model.num_classes, model.bn_axis_name, tuple(model.widths)) == (7, "data", (4,))
    vit = build_model("vit_tiny", {"num_classes": 3}, num_classes=7, unknown_context=1)
    assert vit.num_classes == 3  # the section's own value wins
    with pytest.raises(ConfigError, match=r"unknown model key\(s\) model.widht .*valid keys: "):
        build_model("small_cnn", {"widht": 4}, num_classes=7)
    with pytest.raises(ConfigError, match="model 'mlp' needs model.num_classes"):
        build_model("mlp", {"depth": 1})


@pytest.mark.parametrize(
    "name, key, value, expected",
    [
        ("small_cnn", "widths", ("abc",), "a sequence of positive integers"),
        ("small_cnn", "widths", "abc", "a sequence of positive integers"),
        ("small_cnn", "widths", (16, -32), "a sequence of positive integers"),
        ("small_cnn", "dropout", "0.5", "a finite number"),
        ("small_cnn", "convs_per_block", 2.5, "an integer"),
        ("resnet20", "preact", 1, "true or false"),
        ("resnet20", "width", "wide", "an integer or None"),
        ("resnet20", "norm", 3, "a string or a callable"),
    ],
)
def test_a_value_that_does_not_fit_the_field_names_the_key(name, key, value, expected):
    with pytest.raises(ConfigError) as err:
        get_model(name, num_classes=10, **{key: value})
    assert (
        str(err.value)
        == f"model.{key} must be {expected}"
        + (", e.g. (16, 32)" if key == "widths" else "")
        + f" (model {name!r}), got {value!r}"
    )
