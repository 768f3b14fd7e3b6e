"""Tests of the classification task: label smoothing, mixup/cutmix, metrics, aux losses."""

import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.config import ConfigError, default_config
from jaxlab.tasks import StepContext, mixing
from jaxlab.tasks.classification import make_classification_fns

B, K = 8, 10


class AuxNet(nn.Module):
    """GoogLeNet's contract in miniature: batch statistics, dropout, and two auxiliary
    logits sown into 'intermediates' under 'aux_logits' when training."""

    sow_aux: bool = True

    @nn.compact
    def __call__(self, x, *, train: bool):
        h = nn.BatchNorm(use_running_average=not train)(x.reshape(x.shape[0], -1))
        h = nn.Dropout(0.5, deterministic=not train)(h)
        aux = [nn.Dense(K, name=f"aux{i}")(h) for i in (1, 2)]  # parameters always exist
        if self.sow_aux and train and not self.is_initializing():
            for a in aux:
                self.sow("intermediates", "aux_logits", a)
        return nn.Dense(K, name="head")(h)


def _setup(sow_aux=True):
    model = AuxNet(sow_aux)
    x = jax.random.normal(jax.random.key(0), (B, 6, 6, 3))
    labels = jax.random.randint(jax.random.key(1), (B,), 0, K)
    variables = dict(model.init(jax.random.key(2), x, train=False))
    params = variables.pop("params")
    return model, params, variables, {"image": x, "label": labels}


def _ctx(rng):
    """Dropout draws from `rng` itself, mixing from fold_in(rng, 1)."""
    return StepContext(
        step=jnp.zeros((), jnp.int32), rngs={"dropout": rng, "mix": jax.random.fold_in(rng, 1)}
    )


def _task(aux_loss_weight=0.0, **task):
    """The classification functions with (apply, params, state, batch, rng, train) calls;
    metrics come back as their computed means."""
    config = default_config()
    for key, value in task.items():
        config.task[key] = value
    loss_fn, eval_fn, train_names, eval_names = make_classification_fns(
        config.task, K, aux_loss_weight
    )

    def loss(apply, params, state, batch, rng, train):
        value, (new_state, metrics) = loss_fn(apply, params, state, batch, _ctx(rng), train)
        return value, (new_state, {k: m.compute() for k, m in metrics.items()})

    def evaluate(apply, params, state, batch):
        metrics = eval_fn(apply, params, state, batch, _ctx(jax.random.key(0)))
        return {k: m.compute() for k, m in metrics.items()}

    return types.SimpleNamespace(
        loss_fn=loss,
        eval_fn=evaluate,
        train_metric_names=train_names,
        eval_metric_names=eval_names,
    )


def _ce(logits, labels, eps=0.0):
    """Cross entropy with smoothed targets, by hand."""
    targets = np.full(logits.shape, eps / K)
    targets[np.arange(len(labels)), np.asarray(labels)] += 1 - eps
    return -(targets * jax.nn.log_softmax(np.asarray(logits, np.float64))).sum(-1)


def _train_logits(model, params, state, x, rng, mutable=("batch_stats",)):
    return model.apply(
        {"params": params, **state}, x, train=True, rngs={"dropout": rng}, mutable=list(mutable)
    )


def test_metric_names_top_k_at_eval_only():
    task = _task(top_k=5)
    assert task.train_metric_names == ("loss", "accuracy")
    assert task.eval_metric_names == ("loss", "accuracy", "top5_accuracy")
    assert _task(top_k=0).eval_metric_names == ("loss", "accuracy")
    model, params, state, batch = _setup()
    _, (_, per_example) = task.loss_fn(model.apply, params, state, batch, jax.random.key(0), True)
    assert tuple(per_example) == task.train_metric_names
    assert tuple(task.eval_fn(model.apply, params, state, batch)) == task.eval_metric_names


def test_label_smoothing_loss_by_hand():
    model, params, state, batch = _setup()
    rng = jax.random.key(5)
    loss, (new_state, per_example) = _task(label_smoothing=0.2).loss_fn(
        model.apply, params, state, batch, rng, True
    )
    logits, expected_state = _train_logits(model, params, state, batch["image"], rng)
    expected = _ce(logits, batch["label"], 0.2)
    np.testing.assert_allclose(per_example["loss"], expected.mean(), rtol=1e-5)
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-5)
    assert set(new_state) == {"batch_stats"}
    jax.tree.map(np.testing.assert_array_equal, dict(new_state), dict(expected_state))


@pytest.mark.parametrize("alphas", [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixed_loss_by_hand(alphas):
    model, params, state, batch = _setup()
    rng = jax.random.key(7)
    task = _task(label_smoothing=0.1, mixup_alpha=alphas[0], cutmix_alpha=alphas[1])

    @jax.jit
    def run(params, state, batch):
        # One compilation for the task and the reference inputs (beta sampling compiles
        # slowly): the 'mix' stream mixes, the 'dropout' stream drives dropout.
        out = task.loss_fn(model.apply, params, state, batch, rng, True)
        mixed = mixing.mix_batch(jax.random.fold_in(rng, 1), batch["image"], *alphas)
        logits, _ = _train_logits(model, params, state, mixed.images, rng)
        return out, mixed, logits

    (loss, (_, per_example)), mixed, logits = run(params, state, batch)
    lam = float(mixed.lam)
    assert 0 < lam < 1
    labels, other = batch["label"], batch["label"][mixed.perm]
    expected = lam * _ce(logits, labels, 0.1) + (1 - lam) * _ce(logits, other, 0.1)
    np.testing.assert_allclose(per_example["loss"], expected.mean(), rtol=1e-4)
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-4)
    dominant = labels if lam >= 0.5 else other
    np.testing.assert_allclose(
        per_example["accuracy"], np.mean(np.argmax(logits, -1) == dominant), rtol=1e-6
    )


def test_no_mixing_without_alphas_and_at_eval_time():
    model, params, state, batch = _setup()
    rng = jax.random.key(3)
    plain_loss, _ = _task().loss_fn(model.apply, params, state, batch, rng, True)
    logits, _ = _train_logits(model, params, state, batch["image"], rng)
    np.testing.assert_allclose(plain_loss, _ce(logits, batch["label"]).mean(), rtol=1e-5)
    # loss_fn with train=False neither mixes nor uses dropout.
    mixing_task = _task(mixup_alpha=1.0, cutmix_alpha=1.0)
    eval_loss, (eval_state, _) = mixing_task.loss_fn(model.apply, params, state, batch, rng, False)
    eval_logits = model.apply({"params": params, **state}, batch["image"], train=False)
    np.testing.assert_allclose(eval_loss, _ce(eval_logits, batch["label"]).mean(), rtol=1e-5)
    assert eval_state is state


def test_eval_fn_is_unchanged_by_mixing_and_smoothing():
    model, params, state, batch = _setup()
    plain = _task().eval_fn(model.apply, params, state, batch)
    recipe = _task(label_smoothing=0.3, mixup_alpha=0.2, cutmix_alpha=1.0)
    got = recipe.eval_fn(model.apply, params, state, batch)
    assert set(got) == set(plain)
    for name in plain:
        np.testing.assert_array_equal(got[name], plain[name])
    logits = model.apply({"params": params, **state}, batch["image"], train=False)
    np.testing.assert_allclose(got["loss"], _ce(logits, batch["label"]).mean(), rtol=1e-5)


def test_aux_losses_are_weighted_and_intermediates_dropped():
    model, params, state, batch = _setup()
    rng = jax.random.key(11)
    loss, (new_state, per_example) = _task(aux_loss_weight=0.3).loss_fn(
        model.apply, params, state, batch, rng, True
    )
    logits, mutated = _train_logits(
        model, params, state, batch["image"], rng, ("batch_stats", "intermediates")
    )
    aux = mutated["intermediates"]["aux_logits"]
    assert len(aux) == 2
    labels = batch["label"]
    expected = _ce(logits, labels) + 0.3 * (_ce(aux[0], labels) + _ce(aux[1], labels))
    np.testing.assert_allclose(per_example["loss"], expected.mean(), rtol=1e-5)
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-5)
    assert set(new_state) == {"batch_stats"}
    # The gradient reaches the auxiliary heads only through the auxiliary loss.
    grads = jax.grad(
        lambda p: _task(aux_loss_weight=0.3).loss_fn(model.apply, p, state, batch, rng, True)[0]
    )(params)
    assert float(jnp.abs(grads["aux1"]["kernel"]).sum()) > 0
    # Without the weight the aux logits are ignored (and not collected).
    plain_loss, (plain_state, _) = _task().loss_fn(model.apply, params, state, batch, rng, True)
    np.testing.assert_allclose(plain_loss, _ce(logits, labels).mean(), rtol=1e-5)
    assert set(plain_state) == {"batch_stats"}


def test_aux_weight_without_sown_logits_fails():
    model, params, state, batch = _setup(sow_aux=False)
    with pytest.raises(ValueError, match="sowed no 'aux_logits'"):
        _task(aux_loss_weight=0.3).loss_fn(
            model.apply, params, state, batch, jax.random.key(0), True
        )


@pytest.mark.parametrize(
    "task, weight, message",
    [
        ({"mixup_alpha": -0.1}, 0.0, "task.mixup_alpha must be >= 0"),
        ({"cutmix_alpha": -1.0}, 0.0, "task.cutmix_alpha must be >= 0"),
        ({"label_smoothing": 1.0}, 0.0, r"label_smoothing must be in \[0, 1\)"),
        ({"label_smoothing": -0.1}, 0.0, "label_smoothing must be >= 0"),
        ({"top_k": -1}, 0.0, "task.top_k must be >= 0"),
        ({}, -0.3, "aux_loss_weight must be >= 0"),
    ],
)
def test_bad_task_config(task, weight, message):
    with pytest.raises(ConfigError, match=message):
        _task(weight, **task)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_googlenet_aux_contract_abstractly(norm):
    # The real model, traced only (jax.eval_shape): the task collects its two aux logits and
    # returns the model state without 'intermediates'.
    from jaxlab.models import get_model

    model = get_model("googlenet", num_classes=K, norm=norm)
    x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    variables = dict(jax.eval_shape(lambda inp: model.init(jax.random.key(0), inp, train=False), x))
    params = variables.pop("params")
    task = _task(getattr(model, "aux_loss_weight", 0.0), mixup_alpha=0.2, cutmix_alpha=1.0)
    batch = {"image": x, "label": jax.ShapeDtypeStruct((2,), jnp.int32)}
    loss, (state, per_example) = jax.eval_shape(
        lambda p, s, b: task.loss_fn(model.apply, p, s, b, jax.random.key(0), True),
        params,
        variables,
        batch,
    )
    assert loss.shape == () and set(per_example) == {"loss", "accuracy"}
    assert set(state) == ({"batch_stats"} if norm == "batch" else set())


def test_ignored_labels_leave_loss_and_metric_denominators():
    """Labels outside [0, K) (255, -1) count in no denominator: the loss is the mean over the
    valid examples, the metrics count them only (against a hand count)."""
    model, params, state, batch = _setup()
    labels = np.asarray(batch["label"]).copy()
    labels[[1, 4]] = 255
    labels[6] = -1
    batch = {**batch, "label": jnp.asarray(labels)}
    config = default_config()
    loss_fn, eval_fn, _, _ = make_classification_fns(config.task, K)
    rng = jax.random.key(3)
    loss, (_, metrics) = loss_fn(model.apply, params, state, batch, _ctx(rng), True)
    logits, _ = _train_logits(model, params, state, batch["image"], rng)
    valid = np.array([i not in (1, 4, 6) for i in range(B)])
    expected = _ce(np.asarray(logits)[valid], labels[valid])
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-5)
    assert int(metrics["loss"].count) == int(metrics["accuracy"].count) == valid.sum() == 5
    np.testing.assert_allclose(metrics["loss"].compute(), expected.mean(), rtol=1e-5)
    hits = np.argmax(np.asarray(logits)[valid], -1) == labels[valid]
    np.testing.assert_allclose(metrics["accuracy"].compute(), hits.mean(), rtol=1e-6)
    # At eval the padding mask and the ignore label combine.
    mask = np.ones(B, np.float32)
    mask[0] = 0.0
    out = eval_fn(model.apply, params, state, {**batch, "mask": jnp.asarray(mask)}, _ctx(rng))
    assert int(out["loss"].count) == int((valid & (mask > 0)).sum()) == 4
