"""The task protocol through `train_and_evaluate`, on tiny generated data, each task with
exact resume (a run stopped between steps and re-run ends bitwise where an uninterrupted
one does): two models with two optimizers, a recurrent state carried across batches, a
per-pixel task with an ignore label and a whole-set mIoU, two views with in-batch
negatives on 1 and 8 devices, and an evaluator that writes an image.

The tasks live in tests/train/protocol_tasks.py, written as a family would write them.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxlab import data
from jaxlab.config import default_config
from jaxlab.metrics import iou_from_confusion
from jaxlab.optim.defaults import default_optimizer_config
from jaxlab.tasks.base import StepContext, stream_keys
from jaxlab.train import build_experiment, train_and_evaluate
from jaxlab.train.checkpoint import Checkpointer
from jaxlab.train.reporting import read_metrics
from tests.conftest import run_script
from tests.train import protocol_tasks  # noqa: F401  (registers the tasks)

pytestmark = pytest.mark.slow


def base_config(dataset: str, task: str, steps: int, data_dir: str) -> ml_collections.ConfigDict:
    c = default_config()
    c.dataset.name, c.dataset.data_dir = dataset, data_dir
    c.task.name = task
    c.model.name = ""
    c.optimizer.name, c.optimizer.learning_rate = "momentum", 0.05
    c.batch_size, c.eval_batch_size = 16, 32
    c.num_train_steps = steps
    c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 4
    c.best_metric, c.best_mode = "loss", "min"
    return c


def final_state(workdir: str) -> dict:
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    state = ckpt.restore_raw(ckpt.latest_step())
    ckpt.close()
    return state


def logged(workdir: str) -> list[dict]:
    return read_metrics(os.path.join(workdir, "metrics.jsonl"))


def assert_resumes_exactly(config: ml_collections.ConfigDict, tmp_path, stop_at: int) -> str:
    """Runs `config` straight and stopped at `stop_at` then resumed; the two end with the
    same task state (bitwise) and the same logged metrics. Returns the straight workdir."""
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train_and_evaluate(config, straight, async_checkpoints=False)
    total = config.num_train_steps
    config.num_train_steps = stop_at
    train_and_evaluate(config, resumed, async_checkpoints=False)
    config.num_train_steps = total
    train_and_evaluate(config, resumed, async_checkpoints=False)
    a, b = final_state(straight), final_state(resumed)
    jax.tree.map(np.testing.assert_array_equal, a["task"], b["task"])
    strip = lambda rows: [r for r in rows if not any(k.startswith("eval") for k in r)]  # noqa: E731
    assert strip(logged(straight)) == strip(logged(resumed))
    return straight


# --- 1 -----------------------------------------------------------------------------------


def gan_config(data_dir: str) -> ml_collections.ConfigDict:
    c = base_config("toy2d", "test_gan", 10, data_dir)
    c.optimizers = ml_collections.ConfigDict()
    for name, lr in (("generator", 1e-3), ("discriminator", 2e-3)):
        o = default_optimizer_config()
        o.name, o.learning_rate = "adam", lr
        c.optimizers[name] = o
    c.best_metric = ""
    return c


def test_two_optimizers_update_only_their_own_model(data_dir, tmp_path):
    config = gan_config(data_dir)
    exp = build_experiment(config)
    task = exp.task
    batch = data.create_train_iterator(config, exp.info).__next__()
    ctx = StepContext(
        step=jnp.zeros((), jnp.int32), rngs=stream_keys(jax.random.key(0), task.rng_streams)
    )
    state = jax.jit(task.init_state)(batch, ctx)
    after_d = jax.jit(task.discriminator_update)(state, batch, ctx)
    after_g = jax.jit(task.generator_update)(state, batch, ctx)
    same = lambda a, b: jax.tree.map(np.testing.assert_array_equal, a, b)  # noqa: E731
    same(after_d.gen, state.gen)
    same(after_d.gen_opt, state.gen_opt)
    same(after_g.disc, state.disc)
    same(after_g.disc_opt, state.disc_opt)
    changed = lambda a, b: any(  # noqa: E731
        not np.array_equal(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )
    assert changed(after_d.disc, state.disc) and changed(after_g.gen, state.gen)

    workdir = assert_resumes_exactly(config, tmp_path, stop_at=5)
    rows = [r for r in logged(workdir) if "train/d_loss" in r]
    assert [r["step"] for r in rows] == [4, 8, 10]
    assert all(np.isfinite(r["train/g_loss"]) for r in rows)


def test_unused_or_missing_named_optimizer_is_a_config_error(data_dir):
    from jaxlab.config import ConfigError

    config = gan_config(data_dir)
    config.optimizers.critic = default_optimizer_config()
    with pytest.raises(ConfigError, match="config.optimizers has critic, which task"):
        build_experiment(config)
    del config.optimizers["critic"]
    del config.optimizers["generator"]
    with pytest.raises(ConfigError, match="needs optimizer 'generator'"):
        build_experiment(config)


# --- 5 -----------------------------------------------------------------------------------


def test_evaluator_draws_random_numbers_and_writes_an_image(data_dir, tmp_path):
    config = gan_config(data_dir)
    config.evaluators = ml_collections.ConfigDict({"samples": {"every_steps": 5, "num": 64}})
    workdir = str(tmp_path / "run")
    train_and_evaluate(config, workdir, async_checkpoints=False)
    images = sorted(os.listdir(os.path.join(workdir, "images")))
    assert images == ["samples_histogram_10.png", "samples_histogram_5.png"]
    png = __import__("matplotlib.image").image.imread(os.path.join(workdir, "images", images[0]))
    assert png.shape[:2] == (16, 16) and png.max() > 0
    spreads = [r["samples/spread"] for r in logged(workdir) if "samples/spread" in r]
    assert len(spreads) == 2 and spreads[0] != spreads[1]  # new numbers at each step
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(workdir, size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    in_tb = "samples/histogram" in tags.get("images", []) or "samples/histogram" in tags.get(
        "tensors", []
    )
    assert in_tb, tags


# --- 2 -----------------------------------------------------------------------------------


def rnn_config(data_dir: str) -> ml_collections.ConfigDict:
    c = base_config("markov_tokens", "test_char_rnn", 12, data_dir)
    # 64 strips of 32-token windows: 9 steps per epoch of the 20,000 train tokens.
    c.dataset.seq_len = 32
    c.batch_size, c.eval_batch_size = 64, 64
    return c


def test_recurrent_state_is_carried_reset_and_resumed(data_dir, tmp_path):
    config = rnn_config(data_dir)
    exp = build_experiment(config)
    spe = exp.steps_per_epoch
    task = exp.task
    # Frozen parameters: the carried state after k steps is the model run over the k
    # consecutive windows of each strip in one pass; after an epoch boundary, over the
    # windows of the new epoch only.
    config.optimizer.frozen = ".*"
    config.num_train_steps = spe + 2
    config.log_every_steps = config.eval_every_steps = config.checkpoint_every_steps = 1
    config.keep_checkpoints = spe + 2
    workdir = str(tmp_path / "frozen")
    train_and_evaluate(config, workdir, async_checkpoints=False)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    params = ckpt.restore_raw(spe + 2)["task"]["params"]
    hidden = {s: ckpt.restore_raw(s)["task"]["hidden"] for s in (3, spe, spe + 2)}
    ckpt.close()
    windows = list(_take(data.create_train_iterator(config, exp.info), spe + 2))
    h0 = task.zeros(config.batch_size)

    def run(batches):
        tokens = np.concatenate([b["inputs"] for b in batches], axis=1)
        return np.asarray(task.model.apply({"params": params}, tokens, h0)[1])

    np.testing.assert_allclose(hidden[3], run(windows[:3]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hidden[spe], run(windows[:spe]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hidden[spe + 2], run(windows[spe:]), rtol=1e-5, atol=1e-6)

    config = rnn_config(data_dir)
    config.num_train_steps = spe + 3  # through an epoch boundary, stopped between windows
    assert_resumes_exactly(config, tmp_path, stop_at=spe - 1)


def _take(it, n):
    for _ in range(n):
        yield next(it)


# --- 3 -----------------------------------------------------------------------------------


def test_per_pixel_task_ignore_label_and_whole_set_miou(data_dir, tmp_path):
    config = base_config("shapes_seg", "test_segmentation", 12, data_dir)
    config.best_metric, config.best_mode = "iou/mean_iou", "max"
    config.eval_batch_size = 24  # the eval split does not divide: the last batch is padded
    workdir = assert_resumes_exactly(config, tmp_path, stop_at=6)
    exp = build_experiment(config)
    params = final_state(workdir)["task"]["params"]
    matrix = np.zeros((exp.task.classes,) * 2, np.int64)
    per_batch = []
    for batch in data.create_eval_iterator(config, exp.info):
        logits = exp.task.model.apply({"params": params}, batch["image"])
        pred = np.asarray(jnp.argmax(logits, -1))
        labels = batch["label"]
        keep = (labels != 255) & (batch["mask"][:, None, None] > 0)
        batch_matrix = np.zeros_like(matrix)
        np.add.at(batch_matrix, (labels[keep], pred[keep]), 1)
        matrix += batch_matrix
        per_batch.append(iou_from_confusion(batch_matrix)[1])
    ious, miou = iou_from_confusion(matrix)
    assert np.isnan(ious[-1])  # the extra class: neither labelled nor predicted
    assert np.isfinite(miou) and miou == pytest.approx(np.nanmean(ious[:-1]))
    final = [r for r in logged(workdir) if "eval/iou/mean_iou" in r][-1]
    assert final["step"] == 12
    assert final["eval/iou/mean_iou"] == pytest.approx(miou, abs=1e-6)
    assert final["eval/iou/pixel_accuracy"] == pytest.approx(
        np.trace(matrix) / matrix.sum(), abs=1e-6
    )
    assert f"eval/iou/iou/{exp.task.classes - 1}" not in final  # NaN: not written
    assert not np.isclose(miou, np.mean(per_batch))  # not a mean of per-batch values
    # The ignore label counts in no denominator: the pixels the loss averaged over.
    batches = list(data.create_eval_iterator(config, exp.info))
    real = np.concatenate([b["label"][b["mask"] > 0] for b in batches])
    assert matrix.sum() == int((real != 255).sum())
    # Collected outputs, joined on the host over the whole split without the padding.
    assert len(real) == exp.info.num_eval_examples
    assert final["eval/ignored"] == pytest.approx(float(np.mean(real == 255)), abs=1e-9)


# --- 4 -----------------------------------------------------------------------------------


def contrastive_config(data_dir: str) -> ml_collections.ConfigDict:
    c = base_config("digits", "test_contrastive", 6, data_dir)
    c.dataset.num_views = 2
    c.dataset.augment = "flip_lr,pad_crop:1"
    c.batch_size = 32
    c.log_every_steps = 1
    return c


def test_two_view_task_resumes_exactly(data_dir, tmp_path):
    config = contrastive_config(data_dir)
    workdir = assert_resumes_exactly(config, tmp_path, stop_at=3)
    assert len([r for r in logged(workdir) if "train/loss" in r]) == 6


@pytest.fixture(scope="module")
def one_device_losses(data_dir, tmp_path_factory) -> np.ndarray:
    workdir = str(tmp_path_factory.mktemp("one") / "run")
    train_and_evaluate(contrastive_config(data_dir), workdir, async_checkpoints=False)
    return np.array([r["train/loss"] for r in logged(workdir) if "train/loss" in r])


@pytest.mark.parametrize("mode", ["jit", "pmap"])
def test_two_view_in_batch_loss_is_the_same_on_8_devices(
    data_dir, tmp_path, mode, one_device_losses
):
    workdir = str(tmp_path / "eight")
    proc = run_script(
        "tests.train.two_view_run",
        data_dir,
        workdir,
        mode,
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    eight = np.array([r["train/loss"] for r in logged(workdir) if "train/loss" in r])
    assert len(one_device_losses) == len(eight) == 6
    # SGD with momentum: float32 reduction order only (~1e-7); a per-device loss (negatives
    # from an eighth of the batch) differs by ~1e-1.
    np.testing.assert_allclose(eight, one_device_losses, rtol=1e-5)
    # Saved from 8 devices, read back in this 1-device process (init_from, sample scripts).
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        state = ckpt.restore_raw(ckpt.latest_step())
    finally:
        ckpt.close()
    assert int(state["step"]) == 6 and all(
        np.isfinite(x).all() for x in jax.tree.leaves(state["task"]["params"])
    )
