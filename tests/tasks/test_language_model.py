"""The language-model task (truncated BPTT, metrics) and cached generation, with the tiny
contract models of tests/tasks/lm_test_models.py on markov_tokens windows."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.config import ConfigError, default_config, finish_config
from jaxlab.data import get_dataset_info
from jaxlab.data.generated import markov_stream
from jaxlab.tasks import TaskSetup
from jaxlab.tasks.base import Optimizer, StepContext
from jaxlab.tasks.language_model import (
    CARRY,
    LanguageModelTask,
    generate,
    generate_long,
    make_language_model_task,
    sample_logits,
)
from tests.tasks.lm_test_models import TinyAttentionLM, TinyRnnLM

V, B, T = 16, 4, 6


def make_task(model, lr: float = 0.0) -> LanguageModelTask:
    return LanguageModelTask(
        name="language_model",
        model=model,
        optimizer=Optimizer(tx=optax.sgd(lr), schedule=optax.constant_schedule(lr)),
        batch_size=B,
        vocab_size=V,
    )


def ctx(epoch_start: bool, axis_name: str | None = None) -> StepContext:
    key = jax.random.key(1)
    return StepContext(
        step=jnp.zeros((), jnp.int32),
        rngs={"params": key, "dropout": key},
        axis_name=axis_name,
        epoch_start=jnp.asarray(epoch_start),
    )


def windows(n: int, length: int = T) -> list[dict[str, np.ndarray]]:
    """n consecutive windows of B strips of the markov train stream (as the dataset cuts)."""
    stream = markov_stream("train")
    strip = (len(stream) - 1) // B
    offsets = np.arange(B)[:, None] * strip + np.arange(length)[None, :]
    return [
        {"inputs": stream[offsets + t * length], "targets": stream[offsets + t * length + 1]}
        for t in range(n)
    ]


def joined(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([b[k] for b in batches], axis=1) for k in ("inputs", "targets")}


@functools.partial(jax.jit, static_argnums=0)
def token_losses(model, params, batch, carry=None):
    """(per-token cross entropy [B, T], carry after the window) of the full model."""
    logits, carry = model.apply({"params": params}, batch["inputs"], carry, train=False)
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"]), carry


@pytest.fixture(scope="module")
def rnn():
    task = make_task(TinyRnnLM(vocab_size=V, cells=("simple", "gru"), learned_init=True))
    state = task.init_state(windows(1)[0], ctx(True))
    return task, state, jax.jit(task.train_step), jax.jit(task.eval_step)


def test_train_carry_continues_resets_and_stops_the_gradient(rnn):
    task, state0, train_step, _ = rnn
    w1, w2 = windows(2)
    params = state0.params
    # Two consecutive windows with the carried state == one double-length window.
    s1, m1 = train_step(state0, w1, ctx(True))
    s2, m2 = train_step(s1, w2, ctx(False))
    full, full_carry = token_losses(task.model, params, joined([w1, w2]))
    two = (m1["loss"].total + m2["loss"].total) / (m1["loss"].count + m2["loss"].count)
    np.testing.assert_allclose(two, full.mean(), rtol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        s2.model_state[CARRY],
        full_carry,
    )
    # Window 2 from the initial state is another loss (so the check above can fail).
    fresh, _ = token_losses(task.model, params, w2)
    assert abs(fresh.mean() - float(m2["loss"].compute())) > 1e-3
    # Epoch start: the carry in the state is dropped for the initial one.
    _, m_reset = train_step(s2, w2, ctx(True))
    np.testing.assert_allclose(m_reset["loss"].compute(), fresh.mean(), rtol=1e-5)

    # Gradient: none through the carried state (only into this window); the learned
    # initial state gets one at an epoch start only.
    def window2_loss(p, carry_of_p: bool, epoch_start: bool):
        if carry_of_p:  # the carry as a function of p: a gradient path the task must cut
            carry = task.model.apply({"params": p}, w1["inputs"], train=False)[1]
        else:
            carry = s1.model_state[CARRY]
        model_state = {CARRY: carry}
        return task.loss_fn(task.model.apply, p, model_state, w2, ctx(epoch_start), True)[0]

    def full_bptt(p):  # what the gradient would be without the stop
        carry = task.model.apply({"params": p}, w1["inputs"], train=False)[1]
        logits, _ = task.model.apply({"params": p}, w2["inputs"], carry, train=False)
        return optax.softmax_cross_entropy_with_integer_labels(logits, w2["targets"]).mean()

    @jax.jit
    def gradients(p):
        grad = jax.grad(window2_loss)
        return (
            grad(p, True, False),
            grad(p, False, False),
            grad(p, False, True),
            jax.grad(full_bptt)(p),
        )

    g_through, g_const, g_reset, g_full = gradients(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7), g_through, g_const)
    assert np.abs(g_full["embed"]["embedding"] - g_const["embed"]["embedding"]).max() > 1e-6
    assert np.abs(g_const["h0"]).max() == 0 and np.abs(g_reset["h0"]).max() > 0


def test_eval_carries_the_state_and_perplexity_is_of_the_whole_set_mean(rnn):
    task, state, _, eval_step = rnn
    # Sharper predictions than at init, so that the windows' losses differ.
    state = state.replace(params=jax.tree.map(lambda x: 4 * x, state.params))
    w1, w2 = windows(2)
    for w in (w1, w2):
        w["mask"] = np.array([1, 1, 1, 0], np.float32)  # the last row is padding
    carry = task.init_eval_carry(state, w1)
    carry, m1 = eval_step(state, w1, carry, ctx(False))
    carry, m2 = eval_step(state, w2, carry, ctx(False))
    full, full_carry = token_losses(task.model, state.params, joined([w1, w2]))
    full = np.asarray(full)
    merged = {k: m1[k].merge(m2[k]) for k in m1}
    mean = full[:3].mean()  # real rows only
    np.testing.assert_allclose(merged["loss"].compute(), mean, rtol=1e-5)
    np.testing.assert_allclose(merged["perplexity"].compute(), math.exp(mean), rtol=1e-5)
    np.testing.assert_allclose(merged["bits_per_token"].compute(), mean / math.log(2), rtol=1e-5)
    per_batch = np.mean([np.exp(m["loss"].compute()) for m in (m1, m2)])
    assert abs(per_batch - math.exp(mean)) > 1e-3  # the mean of perplexities is not it
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), carry, full_carry
    )


def test_pmap_devices_carry_their_rows_of_the_global_carry(rnn):
    """Two simulated devices (vmap with the pmap axis name): each continues its rows of the
    replicated global carry and ends with the whole new carry, equal to jit's."""
    task, state, train_step, _ = rnn
    w1, w2 = windows(2)
    s1, _ = train_step(state, w1, ctx(True))
    s2, m2 = train_step(s1, w2, ctx(False))

    def device_step(st, batch):
        new, metrics = task.train_step(st, batch, ctx(False, "data"))
        return new, metrics["loss"].total

    split = {k: v.reshape(2, B // 2, T) for k, v in w2.items()}
    per_device, totals = jax.vmap(device_step, in_axes=(None, 0), axis_name="data")(s1, split)
    got, want = per_device.model_state[CARRY], s2.model_state[CARRY]
    for device in range(2):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a[device], b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(totals.sum(), m2["loss"].total, rtol=1e-5)


# --- generation ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["rnn", "attention"])
def lm(request):
    model = (
        TinyRnnLM(vocab_size=V)
        if request.param == "rnn"
        else TinyAttentionLM(vocab_size=V, block_size=8)
    )
    prompt = jnp.asarray(windows(1, 3)[0]["inputs"][:2])
    params = model.init(jax.random.key(0), prompt, train=False)["params"]
    return model, params, prompt


@functools.partial(jax.jit, static_argnums=0)
def forward(model, params, tokens):
    return model.apply({"params": params}, tokens, train=False)[0]


def greedy_by_recomputation(model, params, prompt, n):
    """Greedy tokens by re-running the full model on the sequence so far at every step (on a
    fixed-length buffer: the models are causal, so the tokens after t do not change t's
    logits, and one compiled program serves every step)."""
    b, p = prompt.shape
    seq = np.zeros((b, p + n), np.int32)
    seq[:, :p] = prompt
    for t in range(p, p + n):
        seq[:, t] = np.argmax(forward(model, params, seq)[:, t - 1], axis=-1)
    return seq[:, p:]


def test_cached_generation_equals_recomputation_and_samples_from_the_key(lm):
    model, params, prompt = lm
    n = 5
    greedy = np.asarray(generate(model, params, prompt, n, jax.random.key(0), temperature=0.0))
    np.testing.assert_array_equal(greedy, greedy_by_recomputation(model, params, prompt, n))
    top1 = generate(model, params, prompt, n, jax.random.key(3), temperature=1.0, top_k=1)
    np.testing.assert_array_equal(top1, greedy)
    a = generate(model, params, prompt, n, jax.random.key(7), temperature=2.0)
    b = generate(model, params, prompt, n, jax.random.key(7), temperature=2.0)
    c = generate(model, params, prompt, n, jax.random.key(8), temperature=2.0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, n) and a.dtype == jnp.int32 and np.any(a != c)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, params, prompt, n, jax.random.key(0), top_k=V + 1)


def test_long_generation_re_prefills_the_latest_half_context():
    """With the zoo's GPT, whose cache refuses more than block_size positions."""
    from jaxlab.models import get_model

    model = get_model("gpt", vocab_size=V, num_layers=1, num_heads=2, d_model=16, block_size=8)
    prompt = jnp.asarray(windows(1, 3)[0]["inputs"][:2])
    params = model.init(jax.random.key(0), prompt, train=False)["params"]
    out = generate_long(model, params, prompt, 9, jax.random.key(0), temperature=0.0)
    # Reference by recomputation: after the 3 prompt tokens, round 0 fills the 8 positions
    # (5 new tokens), round 1 sees the latest 4 tokens and adds 4.
    first = greedy_by_recomputation(model, params, prompt, 5)
    context = np.concatenate([prompt, first], axis=1)[:, -4:]
    second = greedy_by_recomputation(model, params, context, 4)
    np.testing.assert_array_equal(out, np.concatenate([first, second], axis=1))


def test_sampling_follows_the_tempered_top_k_softmax():
    logits = jnp.array([2.0, 1.0, 0.5, 0.0, -1.0])
    keys = jax.random.split(jax.random.key(0), 20_000)
    draws = np.asarray(jax.vmap(lambda k: sample_logits(logits, k, 0.5, 3))(keys))
    expected = np.asarray(jax.nn.softmax(logits[:3] / 0.5))
    counts = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(counts[:3], expected, atol=0.015)
    assert counts[3:].sum() == 0
    assert int(sample_logits(logits, keys[0], 0.0)) == 0


# --- config ------------------------------------------------------------------------------------


def lm_config(model: str = "test_rnn_lm"):
    """A tiny language-model run on markov_tokens (tests/test_sample.py trains it through the
    loop and samples from it)."""
    c = default_config()
    c.dataset.name, c.dataset.seq_len = "markov_tokens", 8
    c.task.name, c.model.name = "language_model", model
    c.optimizer.name, c.optimizer.learning_rate = "adam", 5e-2
    c.optimizer.grad_clip_value = 0.1
    c.batch_size, c.eval_batch_size = 8, 64  # 7 eval windows
    c.num_train_steps = 30
    c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 30
    c.best_metric, c.best_mode = "loss", "min"
    return finish_config(c)


def test_bad_inputs_are_config_errors():
    config = lm_config()
    info = get_dataset_info(config)

    def setup(c, i):
        opt = Optimizer(tx=optax.sgd(0.1), schedule=optax.constant_schedule(0.1))
        return TaskSetup(c, i, 1, 1, None, {"default": opt})

    toy = default_config()
    toy.dataset.name = "toy2d"
    with pytest.raises(ConfigError, match="needs a token dataset"):
        make_language_model_task(setup(config, get_dataset_info(toy)))
    config.model.vocab_size = 4
    with pytest.raises(ConfigError, match="model.vocab_size 4 is below"):
        make_language_model_task(setup(config, info))
