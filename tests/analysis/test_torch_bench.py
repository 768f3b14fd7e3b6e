"""`scripts.bench --vs torch` and jaxlab.analysis.torch_bench: the script's one-line exits
(unknown model, no torch), the pure logic (model names, NHWC -> NCHW, parameter-count check,
token batches, alternation, the table), and, where torch is installed, the mirrors against
jaxlab's models (parameter counts; the conv nets' and MLP's forward pass with copied weights).
No timing assertions: rates depend on the machine and its load."""

from __future__ import annotations

import dataclasses
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.analysis.torch_bench import (
    MODELS,
    SPECS,
    ParamCountMismatch,
    TorchBenchResult,
    TorchMissing,
    alternate,
    check_models,
    check_param_counts,
    count_params,
    format_torch_table,
    image_config,
    lm_model,
    nhwc_to_nchw,
    require_torch,
    synthetic_batches,
)
from jaxlab.config import ConfigError


@pytest.fixture
def bench_script():
    """scripts/bench.py's main, its flags reset after the test."""
    from scripts import bench

    yield bench
    bench.FLAGS.unparse_flags()


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--vs", "torch"],
            "error: --vs torch needs PyTorch, which is not installed; install its CPU wheel "
            "with `.venv/bin/pip install torch==2.13.0`",
        ),
        (
            ["--vs", "torch", "--models", "gpt,vgg"],
            "error: unknown model 'vgg' for --vs torch; valid choices: small_cnn, resnet20, "
            "mlp, lstm_lm, gpt",
        ),
    ],
    ids=["no_torch", "unknown_model"],
)
def test_script_exits_2_with_one_line(bench_script, monkeypatch, capsys, args, expected):
    """torch made unimportable (as where it is not installed): one line, status 2."""
    monkeypatch.setitem(sys.modules, "torch", None)
    bench_script.FLAGS(["bench", *args])
    with pytest.raises(SystemExit) as exit_info:
        bench_script.main(["bench"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [expected] and out == ""


def test_require_torch_raises_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(TorchMissing, match=r"pip install torch==2\.13\.0"):
        require_torch()


def test_check_models():
    assert check_models(["gpt", " mlp"]) == ["gpt", "mlp"]
    assert MODELS == ("small_cnn", "resnet20", "mlp", "lstm_lm", "gpt")
    with pytest.raises(
        ConfigError, match="unknown model 'lstm'.*valid choices: small_cnn, resnet20"
    ):
        check_models(["mlp", "lstm"])
    with pytest.raises(ConfigError, match="no model given"):
        check_models(["", " "])


def test_nhwc_to_nchw():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # N H W C
    y = nhwc_to_nchw(x)
    assert y.shape == (2, 5, 3, 4) and y.flags.c_contiguous
    n, h, w, c = 1, 2, 3, 4
    assert y[n, c, h, w] == x[n, h, w, c]
    np.testing.assert_array_equal(y, np.einsum("nhwc->nchw", x))
    with pytest.raises(ValueError, match="rank 4"):
        nhwc_to_nchw(x[0])


def test_check_param_counts():
    check_param_counts("mlp", 10, 10)
    with pytest.raises(ParamCountMismatch, match="gpt: the torch mirror has 1,001 .* 1,000"):
        check_param_counts("gpt", 1000, 1001)


def test_token_batches_are_next_token_windows():
    (batch,) = synthetic_batches(SPECS["gpt"], 3, 1)
    assert batch["inputs"].shape == batch["targets"].shape == (3, 64)
    assert batch["inputs"].dtype == np.int32
    np.testing.assert_array_equal(batch["inputs"][:, 1:], batch["targets"][:, :-1])
    assert batch["inputs"].min() >= 3  # no PAD/BOS/EOS
    (images,) = synthetic_batches(SPECS["resnet20"], 2, 1)
    assert images["image"].shape == (2, 32, 32, 3) and images["label"].dtype == np.int32


def test_alternate_switches_which_side_goes_first():
    calls = []
    a, b = alternate(lambda n: calls.append(("a", n)), lambda n: calls.append(("b", n)), 7, 3)
    assert calls == [("a", 7), ("b", 7), ("b", 7), ("a", 7), ("a", 7), ("b", 7)]
    assert len(a) == len(b) == 3 and min(a + b) > 0


def test_table_rates_and_ratio():
    common = dict(
        jaxlab_runs=(2.0,),
        torch_runs=(1.0,),
        steps=5,
        warmup=1,
        torch_threads=2,
    )
    image = TorchBenchResult(
        "resnet20", "img/s", 128, 128, "loop", 2.0, 1.0, jaxlab_params=269_722,
        torch_params=269_722, **common,
    )  # fmt: skip
    lm = TorchBenchResult(
        "gpt", "tokens/s", 64, 4096, "minimal", 1.5, 6.0, jaxlab_params=810_240,
        torch_params=810_240, **common,
    )  # fmt: skip
    assert (image.ratio, image.jaxlab_rate, image.torch_rate) == (2.0, 256.0, 128.0)
    assert (lm.ratio, lm.jaxlab_rate, lm.torch_rate) == (0.25, 6144.0, 24576.0)
    assert lm.to_dict()["ratio"] == 0.25 and lm.to_dict()["torch_rate"] == 24576.0
    lines = format_torch_table([image, lm]).splitlines()
    assert lines[0].split() == [
        "model", "batch", "params", "jaxlab", "side", "jaxlab", "torch", "unit", "ratio"
    ]  # fmt: skip
    assert lines[1].split() == [
        "resnet20", "128", "269,722", "loop", "256", "128", "img/s", "2.00x"
    ]  # fmt: skip
    assert lines[2].split() == [
        "gpt", "64", "810,240", "minimal", "6,144", "24,576", "tokens/s", "0.25x"
    ]  # fmt: skip
    assert len({line.index(line.split()[-1]) for line in lines}) == 1  # aligned columns


# ---- with torch installed ---------------------------------------------------------------------


def jaxlab_image_model(name: str):
    from jaxlab.models import build_model

    config = image_config(SPECS[name], 4, 1)
    fields = {k: v for k, v in config.model.items() if k != "name"}
    return build_model(config.model.name, fields, num_classes=10)


def jaxlab_params(name: str, shape: tuple[int, ...]):
    spec = SPECS[name]
    if spec.kind == "lm":
        model, x = lm_model(spec), jnp.zeros((1, spec.shape[0]), jnp.int32)
    else:
        model, x = jaxlab_image_model(name), jnp.zeros((1, *shape), jnp.float32)
    return jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))["params"]


@pytest.mark.parametrize("name", MODELS)
def test_mirror_parameter_counts_equal_jaxlab(name):
    pytest.importorskip("torch")
    from jaxlab.analysis.torch_bench import torch_model, torch_param_count

    spec = SPECS[name]
    assert torch_param_count(torch_model(spec)) == count_params(jaxlab_params(name, spec.shape))


def layers(params, order: list[tuple[str, ...]], path: tuple[str, ...] = ()) -> list[dict]:
    """The parameter dicts of conv, norm and dense layers, in the order they were called
    (`order`: module paths; jit's pytrees sort the keys)."""
    if "kernel" in params or "scale" in params:
        return [(order.index(path), params)]
    found = [leaf for k, v in params.items() for leaf in layers(v, order, (*path, k))]
    return found if path else [p for _, p in sorted(found, key=lambda item: item[0])]


def init_in_call_order(model, x):
    """`model.init` under jit and the paths of the modules in the order they are called."""
    order = []

    def record(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and context.module.scope.path not in order:
            order.append(context.module.scope.path)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        variables = jax.jit(lambda: model.init(jax.random.key(1), x, train=False))()
    return variables, order


@pytest.mark.parametrize("name", ["small_cnn", "resnet20", "mlp"])
def test_image_mirrors_compute_jaxlab_forward(name):
    """Weights copied layer by layer (HWIO -> OIHW, transposed dense kernels): the same
    training-mode logits on the same batch (NCHW for torch), so padding, pooling, shortcuts,
    flattening order and heads match."""
    torch = pytest.importorskip("torch")
    from jaxlab.analysis.torch_bench import torch_model

    spec = SPECS[name]
    shape = (4, 4, spec.shape[-1]) if name != "mlp" else spec.shape
    model = jaxlab_image_model(name)
    x = np.random.default_rng(0).standard_normal((4, *shape), np.float32)
    variables, order = init_in_call_order(model, x)
    train_apply = lambda v: model.apply(v, x, train=True, mutable=["batch_stats"])[0]
    expected = jax.jit(train_apply)(variables)
    mirror = torch_model(dataclasses.replace(spec, shape=shape)).train()
    modules = [
        m
        for m in mirror.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear))
    ]
    flax_layers = layers(variables["params"], order)
    assert len(modules) == len(flax_layers)
    with torch.no_grad():
        for m, p in zip(modules, flax_layers, strict=True):
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.from_numpy(np.array(p["scale"])))
                m.bias.copy_(torch.from_numpy(np.array(p["bias"])))
                continue
            kernel = np.asarray(p["kernel"])
            perm = (3, 2, 0, 1) if kernel.ndim == 4 else (1, 0)
            m.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(perm))))
            if "bias" in p:
                m.bias.copy_(torch.from_numpy(np.array(p["bias"])))
        got = mirror(torch.from_numpy(nhwc_to_nchw(x))).numpy()  # as the bench feeds it
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-4, atol=1e-4)
