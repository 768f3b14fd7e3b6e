"""Tests of jaxlab.analysis.params and scripts/inspect.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jaxlab.analysis import (
    count_params,
    forward_flops,
    layer_formula,
    parameter_rows,
    parameter_table,
)
from jaxlab.models import get_model
from tests.conftest import ROOT, run_script
from tests.models.utils import abstract_variables


def test_layer_formulas():
    assert layer_formula({"kernel": (3, 3, 3, 64), "bias": (64,)}) == ("conv", "3*3*3*64 + 64")
    assert layer_formula({"kernel": (3, 3, 16, 16)}) == ("conv", "3*3*16*16")
    assert layer_formula({"kernel": (512, 10), "bias": (10,)}) == ("dense", "(512 + 1)*10")
    assert layer_formula({"kernel": (512, 10)}) == ("dense", "512*10")
    assert layer_formula({"kernel": (768, 12, 64), "bias": (12, 64)}) == (
        "dense",
        "768*12*64 + 12*64",
    )
    assert layer_formula({"scale": (64,), "bias": (64,)}) == ("norm", "64 + 64")
    assert layer_formula({"pos_embedding": (1, 65, 192)}) is None


def test_grouped_conv_formula_shows_the_groups():
    import flax.linen as nn

    conv = nn.Conv(128, (3, 3), feature_group_count=32, use_bias=False)
    assert layer_formula({"kernel": (3, 3, 4, 128)}, conv) == ("conv", "3*3*(128/32)*128")


def test_parameter_table_of_resnet20():
    table = parameter_table(get_model("resnet20"), (1, 32, 32, 3), flops=False)
    assert table.total == 269_722 == sum(r.count for r in table.rows)
    bn_params = sum(r.count for r in table.rows if r.kind == "norm")
    assert table.non_trainable == bn_params  # running mean and var per BN channel
    first, last = table.rows[0], table.rows[-1]
    assert (first.path, first.kind, first.formula, first.count) == (
        "stem_conv",
        "conv",
        "3*3*3*16",
        432,
    )
    assert (last.path, last.formula, last.count) == ("head", "(64 + 1)*10", 650)
    assert [r.path for r in table.rows[2:4]] == ["stage1_block1/conv1", "stage1_block1/norm1"]
    text = table.format()
    assert "total parameters: 269,722" in text and "3*3*16*32" in text
    assert table.flops is None and "FLOPs" not in text


def test_parameter_rows_without_module_info_and_loose_params():
    variables = abstract_variables(
        get_model(
            "vit", num_classes=3, patch_size=4, hidden_size=8, depth=1, num_heads=2, mlp_dim=16
        ),
        (1, 8, 8, 3),
        train=False,
    )
    rows = parameter_rows(variables["params"])
    by_path = {r.path: r for r in rows}
    assert by_path["cls_token"].kind == "param" and by_path["cls_token"].count == 8
    assert by_path["pos_embedding"].formula == "1*5*8"
    assert by_path["block1/attention/query"].formula == "8*2*4 + 2*4"
    assert sum(r.count for r in rows) == count_params(variables["params"])


def test_forward_flops_of_a_dense_layer():
    model = get_model("linear", num_classes=10)
    variables = abstract_variables(model, (1, 4, 4, 1), train=False)
    flops = forward_flops(model, variables, (1, 4, 4, 1))
    assert flops is not None and 2 * 16 * 10 <= flops <= 2 * 16 * 10 + 50
    table = parameter_table(model, (1, 4, 4, 1))
    assert table.flops == flops and "forward FLOPs" in table.format()


@pytest.mark.slow
def test_inspect_script_by_model_name_run_as_a_file():
    result = subprocess.run(
        [
            sys.executable,
            "scripts/inspect.py",
            "--model",
            "resnet20",
            "--num_classes",
            "10",
            "--image_size",
            "32",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "total parameters: 269,722" in result.stdout
    assert "3*3*3*16" in result.stdout and "(64 + 1)*10" in result.stdout
    assert "GFLOPs" in result.stdout


@pytest.mark.slow
def test_inspect_script_reads_model_and_input_from_a_config(tmp_path):
    result = run_script(
        "scripts.inspect",
        "--config",
        "configs/digits_cnn.py",
        f"--config.dataset.data_dir={tmp_path}",
        "--noflops",
    )
    assert result.returncode == 0, result.stderr
    assert "model small_cnn(" in result.stdout and "input [8, 8, 1]" in result.stdout
    assert "(64 + 1)*10" in result.stdout  # 10 digit classes from the dataset


@pytest.mark.slow
def test_inspect_script_bad_model_exits_2_with_one_line():
    result = run_script("scripts.inspect", "--model", "resnet19")
    assert result.returncode == 2
    assert "unknown model 'resnet19'; valid choices:" in result.stderr


def test_flax_summary_agrees_with_the_parameter_table():
    from jaxlab.analysis import module_summary
    from jaxlab.models import get_model

    model = get_model("mlp", num_classes=10)
    table = parameter_table(model, (1, 8, 8, 1), flops=False)
    summary = module_summary(model, (1, 8, 8, 1))
    assert f"Total Parameters: {table.total:,}" in summary
    assert "Dense" in summary
