"""Parameter counts equal the published ones (torchvision's at 1000 classes and 224x224;
He et al. 2015 for the CIFAR ResNets). Counted from shapes alone (`jax.eval_shape`)."""

from __future__ import annotations

import math

import jax
import pytest

from jaxlab.models import get_model
from tests.models.utils import abstract_forward, param_count

IMAGENET = (1, 224, 224, 3)
CIFAR = (1, 32, 32, 3)

TORCHVISION = {
    # the list
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnext50_32x4d": 25_028_904,
    "densenet121": 7_978_856,
    "mobilenet_v2": 3_504_872,
    "vit_b16": 86_567_656,
    # the other torchvision / timm presets
    "vgg13": 133_047_848,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg13_bn": 133_053_736,
    "vgg19_bn": 143_678_248,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext101_32x8d": 88_791_336,
    "wide_resnet50_2": 68_883_240,
    "vit_tiny": 5_717_416,  # timm vit_tiny_patch16_224
    "vit_small": 22_050_664,  # timm vit_small_patch16_224
    "mobilenet_v1": 4_231_976,  # with its batch norms
    "mixer_b16": 59_880_472,  # Tolstikhin et al.: 59M
}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_imagenet_parameter_counts_are_exact(name):
    logits, variables = abstract_forward(get_model(name, num_classes=1000), IMAGENET)
    assert logits.shape == (1, 1000)
    assert (
        sum(math.prod(v.shape) for v in jax.tree.leaves(variables["params"])) == TORCHVISION[name]
    )


# He et al. (2015), Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M (BN scale and bias included).
CIFAR_RESNETS = {
    20: (269_722, 0.27),
    32: (464_154, 0.46),
    44: (658_586, 0.66),
    56: (853_018, 0.85),
    110: (1_727_962, 1.7),
}


@pytest.mark.parametrize("depth", sorted(CIFAR_RESNETS))
def test_cifar_resnet_and_plain_counts_match_the_paper(depth):
    exact, paper_millions = CIFAR_RESNETS[depth]
    resnet = param_count(get_model(f"resnet{depth}", num_classes=10), CIFAR)
    plain = param_count(get_model(f"plain{depth}", num_classes=10), CIFAR)
    assert resnet == plain == exact  # option-A shortcuts add no parameters
    digits = 1 if paper_millions >= 1 else 2
    assert round(exact / 1e6, digits) == paper_millions


def test_googlenet_counts_with_and_without_aux_heads():
    assert param_count(get_model("googlenet", aux_logits=False), IMAGENET) == 6_998_552
    assert param_count(get_model("googlenet"), IMAGENET) == 13_378_280


def test_wide_resnet_28_10_count():
    # Zagoruyko & Komodakis (2016), Table: WRN-28-10 has 36.5M parameters.
    assert param_count(get_model("wide_resnet", num_classes=10), CIFAR) == 36_479_194
