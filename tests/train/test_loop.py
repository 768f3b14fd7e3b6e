"""End-to-end tests of train_and_evaluate on the offline digits data (in-process)."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import optax
import pytest

from jaxlab import data
from jaxlab.config import ConfigError
from jaxlab.train import NonFiniteLossError, WorkdirBusyError, train_and_evaluate
from jaxlab.train.checkpoint import Checkpointer
from jaxlab.train.reporting import read_metrics
from jaxlab.train.setup import build_experiment
from jaxlab.train.state import make_init_fn
from jaxlab.train.stepper import MAX_STEPS_AHEAD
from jaxlab.train.workdir import workdir_lock

pytestmark = pytest.mark.slow


def final_params(workdir: str) -> dict:
    """The task state (params, opt_state, model_state) of the latest checkpoint."""
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    step = ckpt.latest_step()
    state = ckpt.restore_raw(step)
    ckpt.close()
    return state["task"]


def rows(workdir: str, prefix: str) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k == "step" or k.startswith(prefix)}
        for r in read_metrics(os.path.join(workdir, "metrics.jsonl"))
        if any(k.startswith(prefix) for k in r)
    ]


def test_run_writes_workdir_and_reaches_accuracy(tiny_config, tmp_path):
    workdir = str(tmp_path / "run")
    metrics = train_and_evaluate(tiny_config, workdir)
    names = set(os.listdir(workdir))
    assert {"config.json", "metrics.jsonl", "curves.png", "checkpoints"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    record = json.load(open(os.path.join(workdir, "config.json")))
    assert record["config"]["num_train_steps"] == 30
    assert record["versions"]["jax"] == jax.__version__
    assert record["topology"]["device_count"] == jax.device_count()
    train_rows = rows(workdir, "train/")
    assert [r["step"] for r in train_rows] == [5, 10, 15, 20, 25, 30]
    assert train_rows[-1]["train/loss"] < train_rows[0]["train/loss"]
    assert [r["step"] for r in rows(workdir, "eval/")] == [15, 30]
    # 1437 // 32 = 44 steps per epoch: no epoch ends within 30 steps.
    assert rows(workdir, "epoch/") == []
    assert metrics["accuracy"] > 0.5  # 30 steps of a tiny net: far above chance (0.1)
    steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
    assert steps == [10, 20, 30]  # every checkpoint_every_steps and at the end


def test_epoch_metrics_are_logged_per_epoch(tiny_config, tmp_path):
    tiny_config.num_train_steps = 90  # 44 steps per epoch
    tiny_config.log_every_steps = 45
    tiny_config.eval_every_steps = 0
    tiny_config.checkpoint_every_steps = 0
    workdir = str(tmp_path / "run")
    train_and_evaluate(tiny_config, workdir)
    epoch_rows = rows(workdir, "epoch/")
    assert [r["step"] for r in epoch_rows] == [44, 88]
    assert epoch_rows[1]["epoch/loss"] < epoch_rows[0]["epoch/loss"]
    assert [r["step"] for r in rows(workdir, "eval/")] == [90]


def test_resume_is_exact(tiny_config, tmp_path):
    tiny_config.model.dropout = 0.3  # the per-step dropout rng must survive the restart too
    tiny_config.eval_every_steps = 0
    straight = str(tmp_path / "straight")
    train_and_evaluate(tiny_config, straight)

    resumed = str(tmp_path / "resumed")
    tiny_config.num_train_steps = 13  # stops off the log and checkpoint grids
    train_and_evaluate(tiny_config, resumed)
    tiny_config.num_train_steps = 30
    train_and_evaluate(tiny_config, resumed)

    a, b = final_params(straight), final_params(resumed)
    jax.tree.map(np.testing.assert_array_equal, a["params"], b["params"])
    jax.tree.map(np.testing.assert_array_equal, a["opt_state"], b["opt_state"])
    assert rows(straight, "train/") == rows(resumed, "train/")


def test_rerun_of_finished_run_resumes_without_training(tiny_config, tmp_path):
    workdir = str(tmp_path / "run")
    first = train_and_evaluate(tiny_config, workdir)
    before = rows(workdir, "train/")
    again = train_and_evaluate(tiny_config, workdir)
    assert again == first  # the final eval metrics, read back from the last checkpoint
    assert set(first) == {"loss", "accuracy", "top5_accuracy"}
    assert rows(workdir, "train/") == before


def test_train_step_compiles_once(tiny_config, tmp_path, monkeypatch):
    from jaxlab.train import Trainer

    runs = []
    original = Trainer.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        runs.append(self)

    monkeypatch.setattr(Trainer, "__init__", spy)
    train_and_evaluate(tiny_config, str(tmp_path / "run"))
    (run,) = runs
    assert run.stepper._step._cache_size() == 1
    (evaluator,) = run.evaluators
    assert evaluator._step._cache_size() == 1  # two evaluations, one compilation


def test_nonfinite_loss_stops_with_step_and_last_checkpoint(tiny_config, tmp_path):
    tiny_config.optimizer.name = "sgd"
    tiny_config.optimizer.learning_rate = 1e12
    tiny_config.checkpoint_every_steps = 1
    tiny_config.log_every_steps = 1
    workdir = str(tmp_path / "run")
    with pytest.raises(NonFiniteLossError, match=r"non-finite at step \d+; last good checkpoint"):
        train_and_evaluate(tiny_config, workdir)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    steps = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()]
    for step in steps:
        ckpt = Checkpointer(ckpt_dir)
        state = ckpt.restore_raw(step)
        ckpt.close()
        assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state["task"]["params"]))


def test_second_run_on_busy_workdir_refuses(tiny_config, tmp_path):
    workdir = str(tmp_path / "run")
    with workdir_lock(workdir, 0):
        with pytest.raises(WorkdirBusyError, match="in use by another run"):
            train_and_evaluate(tiny_config, workdir)
    assert os.listdir(workdir) == [".lock-0"]


def test_bad_config_writes_nothing(tiny_config, tmp_path):
    workdir = str(tmp_path / "run")
    tiny_config.model.name = "resnet9000"
    with pytest.raises(ConfigError, match="unknown model 'resnet9000'; valid choices"):
        train_and_evaluate(tiny_config, workdir)
    assert not os.path.exists(workdir)


def test_eval_is_exact_for_any_eval_batch_size(tiny_config, tmp_path):
    tiny_config.num_train_steps = 10
    tiny_config.checkpoint_every_steps = 0
    tiny_config.eval_every_steps = 0
    results = []
    for eval_batch in (64, 100):
        tiny_config.eval_batch_size = eval_batch
        results.append(train_and_evaluate(tiny_config, str(tmp_path / f"e{eval_batch}")))
    assert results[0]["accuracy"] == results[1]["accuracy"]
    correct = results[0]["accuracy"] * 360
    assert abs(correct - round(correct)) < 1e-3  # a count over exactly the 360 test images
    np.testing.assert_allclose(results[0]["loss"], results[1]["loss"], rtol=1e-5)


def test_tta_is_reported_next_to_single_view(tiny_config, tmp_path):
    tiny_config.eval_tta = "flip,crops"
    tiny_config.checkpoint_every_steps = 0
    workdir = str(tmp_path / "run")
    train_and_evaluate(tiny_config, workdir)
    (row,) = rows(workdir, "eval_tta/")
    assert row["step"] == 30 and 0.0 <= row["eval_tta/accuracy"] <= 1.0
    correct = row["eval_tta/accuracy"] * 360
    assert abs(correct - round(correct)) < 1e-3  # exact over the 360 test images


def test_long_evaluations_report_progress(tiny_config, tmp_path, monkeypatch, capsys):
    from jaxlab.train import evaluation

    monkeypatch.setattr(evaluation, "PROGRESS_EVERY_S", -1.0)  # report after every batch
    tiny_config.num_train_steps = 2
    tiny_config.eval_every_steps = tiny_config.checkpoint_every_steps = 0
    train_and_evaluate(tiny_config, str(tmp_path / "run"))
    out = capsys.readouterr().out
    assert [f"eval at step 2: batch {i}/6" in out for i in range(1, 7)] == [True] * 6


def test_keeps_latest_and_best_checkpoints(tiny_config, tmp_path):
    tiny_config.keep_checkpoints = 1
    tiny_config.checkpoint_every_steps = 5
    tiny_config.eval_every_steps = 5
    tiny_config.best_mode = "min"  # "best" = lowest accuracy: an early one, not the latest
    workdir = str(tmp_path / "run")
    train_and_evaluate(tiny_config, workdir)
    evals = {r["step"]: r["eval/accuracy"] for r in rows(workdir, "eval/")}
    worst = {s for s in evals if evals[s] == min(evals.values())}
    ckpt = Checkpointer(
        os.path.join(workdir, "checkpoints"), best_metric="accuracy", best_mode="min"
    )
    kept, best = ckpt.all_steps(), ckpt.best_step()
    ckpt.close()
    assert 30 in kept and len(kept) == 2  # the latest, and the best by the metric
    assert set(kept) - {30} <= worst and min(kept) < 30
    assert best == min(kept)  # not the latest


def test_window_metrics_are_fetched_later_without_waiting(tiny_config, tmp_path):
    """The metrics of the step that ends a log window come back from a later call once
    computed (the host waits only to stay MAX_STEPS_AHEAD steps ahead of the device), with
    the step that ended it; `flush` returns the rest."""
    from jaxlab import data
    from jaxlab.train import Trainer, build_experiment

    tiny_config.log_every_steps = 2
    exp = build_experiment(tiny_config)
    run = Trainer(exp, str(tmp_path / "run"))
    run.start(run.initial_state()[0])
    batches = data.create_train_iterator(tiny_config, exp.info)
    returned = []
    for step in range(8):
        logged = run.train_one_step(next(batches), step, 8)
        returned.append([(item.kind, item.step) for item in logged])
        assert len(run.stepper._in_flight) <= MAX_STEPS_AHEAD  # the host stays close
    # Nothing comes back before the next step is dispatched; step 2's metrics at the latest
    # once the host has waited for that step (MAX_STEPS_AHEAD steps later); all in order.
    assert returned[0] == returned[1] == []
    assert ("train", 2) in sum(returned[2 : 3 + MAX_STEPS_AHEAD], [])
    flushed = [(item.kind, item.step) for item in run.flush()]
    assert sum(returned, []) + flushed == [("train", s) for s in (2, 4, 6, 8)]
    assert run.flush() == []
    # The window of step 8 holds steps 7 and 8: the step after 6 started an empty one.
    counts = run.host(run.state.train_metrics)["loss"].count
    assert int(counts) == 2 * tiny_config.batch_size
    run.checkpointer.close()


def test_log_norms_logs_the_parameter_norm_of_the_checkpoint(tiny_config, tmp_path):
    """With log_norms the window's last step logs the global norms; param_norm is the norm of
    the parameters saved at that step. Without it no norm is computed or logged."""
    tiny_config.log_norms = True
    tiny_config.num_train_steps = tiny_config.checkpoint_every_steps = 10
    tiny_config.log_every_steps = 5
    workdir = str(tmp_path / "norms")
    train_and_evaluate(tiny_config, workdir)
    train = [r for r in rows(workdir, "train/") if "train/param_norm" in r]
    assert [r["step"] for r in train] == [5, 10]
    params = final_params(workdir)["params"]
    expected = float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(params))))
    assert train[-1]["train/param_norm"] == pytest.approx(expected, rel=1e-5)
    assert train[-1]["train/grad_norm"] > 0 and train[-1]["train/update_norm"] > 0

    tiny_config.log_norms = False
    plain = str(tmp_path / "plain")
    train_and_evaluate(tiny_config, plain)
    assert not any("train/grad_norm" in r for r in rows(plain, "train/"))


def test_loop_equals_an_independent_minimal_training_loop(tiny_config, tmp_path):
    """The loop's parameters after 8 steps equal those of a plain jit + optax loop written
    here (the same model, initial variables, optimizer and batches): the loop adds nothing
    to the optimization, on any CPU (a portable replacement for a parameter digest)."""
    c = tiny_config
    c.num_train_steps, c.eval_every_steps, c.checkpoint_every_steps = 8, 0, 0
    workdir = str(tmp_path / "run")
    train_and_evaluate(c, workdir, async_checkpoints=False)
    exp = build_experiment(c)
    initial = exp.task.variables(jax.jit(make_init_fn(exp.task, exp.example_batch, c.seed))().task)
    model, tx = exp.task.model, exp.task.optimizer.tx

    @jax.jit
    def step(variables, opt_state, batch):
        def loss(params):
            logits, updates = model.apply(
                {**variables, "params": params}, batch["image"], train=True, mutable=["batch_stats"]
            )
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
            return ce.mean(), updates

        (loss_value, updates), grads = jax.value_and_grad(loss, has_aux=True)(variables["params"])
        deltas, opt_state = tx.update(grads, opt_state, variables["params"], value=loss_value)
        params = optax.apply_updates(variables["params"], deltas)
        return {"params": params, **updates}, opt_state

    variables, opt_state = initial, tx.init(initial["params"])
    batches = data.create_train_iterator(c, exp.info)
    for _ in range(c.num_train_steps):
        variables, opt_state = step(variables, opt_state, next(batches))
    looped = final_params(workdir)
    for ours, theirs in zip(
        jax.tree.leaves(variables["params"]), jax.tree.leaves(looped["params"]), strict=True
    ):
        np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=2e-6)
    assert not np.allclose(
        jax.tree.leaves(initial["params"])[0], jax.tree.leaves(variables["params"])[0]
    )
