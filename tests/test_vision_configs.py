"""The vision experiment configs: the CIFAR ResNet recipe of He et al. (2016) as written, every
digits variant builds. What they reach on digits is measured, not tested (README "Vision
experiments": resnet20 99.17%, plain20 97.78% with the Run commands there); their smoke
runs are in tests/test_configs.py."""

from __future__ import annotations

import importlib

import pytest
import tensorflow_datasets as tfds

from jaxlab.optim import create_schedule
from jaxlab.optim.optimizers import resolved_weight_decay_type
from jaxlab.train.setup import build_experiment

DEGRADATION = ("cifar10_resnet20", "cifar10_resnet56", "cifar10_plain20", "cifar10_plain56")
WITH_DIGITS = (*DEGRADATION, "cifar10_mobilenet_v2", "cifar10_vit_tiny", "cifar10_mixer")
WITHOUT_DIGITS = ("cifar10_vgg11_bn", "imagenet_resnet50", "imagenet_vit_b16")


def get_config(name: str, arg: str = ""):
    return importlib.import_module(f"configs.{name}").get_config(arg)


@pytest.mark.parametrize("name", DEGRADATION)
def test_cifar_resnet_recipe_is_he_et_al(name):
    c = get_config(name)
    assert c.dataset.name == "cifar10"
    assert c.dataset.augment == "flip_lr,pad_crop:4"
    assert c.model.name == name.removeprefix("cifar10_")
    assert c.optimizer.name == "momentum" and c.optimizer.momentum == 0.9
    assert not c.optimizer.nesterov
    assert c.optimizer.learning_rate == 0.1
    assert c.optimizer.weight_decay == 1e-4
    assert resolved_weight_decay_type(c.optimizer) == "l2"  # coupled, as SGD papers mean it
    assert c.batch_size == 128
    assert c.num_train_steps == 64_000 and c.num_epochs == -1
    schedule = create_schedule(c, c.num_train_steps)
    for step, lr in ((0, 0.1), (31_999, 0.1), (32_000, 0.01), (48_000, 0.001), (63_999, 0.001)):
        assert float(schedule(step)) == pytest.approx(lr, rel=1e-6), step


def test_degradation_configs_differ_only_in_the_model():
    base = get_config("cifar10_resnet20").to_dict()
    for name in DEGRADATION[1:]:
        c = get_config(name).to_dict()
        assert c.pop("model") != base["model"]
        assert c == {k: v for k, v in base.items() if k != "model"}, name


@pytest.mark.parametrize("name", WITH_DIGITS)
def test_digits_variant_builds(name, data_dir):
    c = get_config(name, "digits")
    c.dataset.data_dir = data_dir
    exp = build_experiment(c)
    assert exp.info.name == "digits"
    assert exp.num_train_steps == c.num_train_steps


@pytest.mark.parametrize("name", WITHOUT_DIGITS)
def test_configs_without_digits_variant_say_why(name):
    with pytest.raises(ValueError, match="no digits variant"):
        get_config(name, "digits")


def test_unknown_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown config variant.*valid choices: digits, long"):
        get_config("cifar10_resnet20", "digit")
    with pytest.raises(ValueError, match="unknown config variant.*valid choices: digits, smoke"):
        get_config("cifar10_vit_tiny", "long")


@pytest.mark.parametrize("name", DEGRADATION)
def test_digits_long_is_the_digits_schedule_stretched(name):
    short, long = get_config(name, "digits"), get_config(name, "digits,long")
    assert (short.num_train_steps, tuple(short.schedule.boundaries)) == (320, (160, 240))
    assert (long.num_train_steps, tuple(long.schedule.boundaries)) == (960, (480, 720))
    with pytest.raises(ValueError, match="digits,long"):
        get_config(name, "long")


@pytest.mark.parametrize("name", ("imagenet_resnet50", "imagenet_vit_b16"))
def test_imagenet_configs_read_imagenet_at_224(name):
    for arg in ("", "smoke"):
        c = get_config(name, arg)
        assert (c.dataset.name, c.dataset.eval_split) == ("imagenet2012", "validation")
        assert not c.dataset.cache and c.dataset.train_host_sharding == "split"
    c.dataset.data_dir = "/nonexistent/tfds"
    with tfds.testing.mock_data(num_examples=8):
        info = build_experiment(c).info
    assert (info.num_classes, info.image_shape) == (1000, (224, 224, 3))
