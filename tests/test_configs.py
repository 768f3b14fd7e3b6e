"""Every config in configs/: its documented variants (and only those), its completed model
section, and a few steps of each: digits offline, the others under TFDS mock data."""

from __future__ import annotations

import glob
import importlib.util
import math
import os

import ml_collections
import pytest
import tensorflow_datasets as tfds

from jaxlab.config import ConfigError
from jaxlab.models import get_model, model_config_defaults, model_fields
from jaxlab.train import train_and_evaluate
from jaxlab.train.reporting import METRICS_FILE, read_metrics
from tests.conftest import ROOT, train_for_real

CONFIGS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
    if not os.path.basename(p).startswith("_")
)
MOCK_EXAMPLES = 24  # per split, under tfds.testing.mock_data
DIGITS_TEST_EXAMPLES = 360
# Generated in memory (no TFDS, no mock data): the size of each split.
OFFLINE_SPLIT_SIZES = {"gen_digits": {"train": 1000, "validation": 350, "test": 447}}
OFFLINE_SPLIT_SIZES["moving_digits"] = {"train": 1600, "test": 400}
OFFLINE_SPLIT_SIZES["nca_digits"] = {"train": 898, "test": 899}
OFFLINE_SPLIT_SIZES["digit_captions"] = {"train": 10_000, "test": 500}


def load_config(name: str, arg: str | None = None):
    """Imports configs/<name>.py; returns it and its config for `arg` (default: its smoke
    variant, `SMOKE_ARG` where the config's argument means something else)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.get_config(getattr(module, "SMOKE_ARG", "smoke") if arg is None else arg)


def test_configs_document_how_to_run_them():
    for name in CONFIGS:
        module, _ = load_config(name)
        assert f"configs/{name}.py" in (module.__doc__ or ""), name


@pytest.mark.parametrize("name", CONFIGS)
def test_config_accepts_its_documented_variants_and_refuses_others(name):
    """`VARIANTS` lists the arguments a config's docstring documents; each one builds, and
    an unknown variant (alone or in a combination) is refused naming it and the valid ones,
    instead of silently running the full experiment."""
    module, _ = load_config(name)
    assert module.VARIANTS, name
    for arg in module.VARIANTS:
        config = module.get_config(arg)
        assert isinstance(config, ml_collections.ConfigDict), (name, arg)
        for variant in filter(None, arg.split(",")):
            assert variant in module.__doc__, (name, variant)
    for bad in ("bogus", f"{module.VARIANTS[-1]},bogus", "bogus,smoke"):
        with pytest.raises(ConfigError, match=r"unknown config variant 'bogus'; valid choices: "):
            module.get_config(bad)


@pytest.mark.parametrize("name", CONFIGS)
def test_completed_model_section_builds_the_same_model(name):
    """get_config completes the model section with every field's default: the keys exist
    for command-line overrides, and the model built is the one built without them."""
    _, config = load_config(name, None)
    section = config.model.to_dict()
    model_name = section.pop("name")
    defaults = {
        k: v.get() if isinstance(v, ml_collections.FieldReference) else v
        for k, v in model_config_defaults(model_name).items()
    }
    assert set(defaults) <= set(section), name
    assert not {"num_classes", "vocab_size", "bn_axis_name"} & set(section), name
    minimal = {k: v for k, v in section.items() if k not in defaults or v != defaults[k]}
    context = {k: 7 for k in ("num_classes", "vocab_size") if k in model_fields(model_name)}
    assert get_model(model_name, **context, **section) == get_model(
        model_name, **context, **minimal
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_config_runs_a_few_steps(name, data_dir, tmp_path):
    _, config = load_config(name)
    config.dataset.data_dir = data_dir
    workdir = str(tmp_path / "run")
    if config.dataset.name == "digits":
        metrics = train_and_evaluate(config, workdir)
        eval_examples = DIGITS_TEST_EXAMPLES
    elif config.dataset.name in OFFLINE_SPLIT_SIZES:
        metrics = train_and_evaluate(config, workdir)
        eval_examples = OFFLINE_SPLIT_SIZES[config.dataset.name][config.dataset.eval_split]
    else:
        # mock_data fakes the file system while a pipeline is built; an asynchronous orbax
        # save running at that moment would write into the fake one. Save only at the end.
        config.checkpoint_every_steps = 0
        with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
            metrics = train_and_evaluate(config, workdir)
        eval_examples = MOCK_EXAMPLES
    assert metrics and all(math.isfinite(v) for v in metrics.values()), metrics
    if config.task.name == "classification":
        # Exact evaluation: every test example counted once, padding never (a whole number
        # of correct answers). Other tasks weight their metrics by tokens or pixels.
        correct = metrics["accuracy"] * eval_examples
        assert correct == pytest.approx(round(correct), abs=1e-3), metrics
    if config.dataset.name == "digits" and config.task.name == "classification":
        assert metrics["accuracy"] > 0.2, metrics  # learning within a few steps: chance is 0.1
    rows = read_metrics(os.path.join(workdir, METRICS_FILE))
    # Every task logs some train metrics (a GAN has no single 'loss').
    train = [{k: v for k, v in r.items() if k.startswith("train/")} for r in rows]
    train_steps = [r["step"] for r, t in zip(rows, train, strict=True) if t]
    assert train_steps and train_steps[-1] == config.num_train_steps, rows
    assert all(math.isfinite(v) for t in train for v in t.values()), rows


def test_default_experiment_is_the_adamw_warmup_cosine_clipping_chain():
    from jaxlab.optim import create_schedule

    _, c = load_config("digits_cnn", "")
    assert (c.optimizer.name, c.optimizer.grad_clip_norm) == ("adamw", 1.0)
    assert c.optimizer.weight_decay > 0 and c.schedule.name == "cosine"
    steps = c.num_epochs * 11  # 1437 train images, batch 128
    schedule = create_schedule(c, steps)
    peak, warmup = c.optimizer.learning_rate, c.schedule.warmup_steps
    assert 0 < warmup < steps // 10
    assert float(schedule(0)) == 0.0
    assert float(schedule(warmup // 2)) == pytest.approx(peak * (warmup // 2) / warmup)
    assert float(schedule(warmup)) == pytest.approx(peak)
    assert float(schedule(steps)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.slow
def test_default_experiment_reaches_99_percent(data_dir, tmp_path):
    """configs/digits_cnn.py as documented (220 steps, about 20-40 s on 2 CPU cores):
    measured 99.44% (358/360)."""
    metrics = train_for_real(
        "configs/digits_cnn.py",
        str(tmp_path / "run"),
        f"--config.dataset.data_dir={data_dir}",
        "--config.checkpoint_every_steps=0",
    )
    assert metrics["accuracy"] >= 0.99, metrics
