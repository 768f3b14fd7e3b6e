"""The captioning task and models: teacher forcing feeds BOS + tokens[:-1] (the loss equals
a numpy cross entropy of the shifted logits), `decode_step` stepped over the teacher tokens
gives the teacher-forced logits (all three decoders), decoding stops at EOS (greedy, beam,
sampling), sampling draws from softmax(logits / T), the attention overlays, BLEU over
caption words equals sacrebleu's, and bad options fail."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import sacrebleu

from jaxlab.config import ConfigError
from jaxlab.data import digit_captions as dc
from jaxlab.data.text import BOS, EOS, PAD
from jaxlab.models import captioning as captioning_models
from jaxlab.models import get_model
from jaxlab.tasks import captioning
from jaxlab.tasks.base import StepContext
from jaxlab.tasks.seq2seq import beam_search, corpus_bleu, decoder_input, greedy_decode, strip_ids

TINY = {
    "caption_rnn": {"widths": (4, 4), "features": 4, "embed_dim": 4, "hidden": 8},
    "caption_attention": {
        "widths": (4, 4),
        "features": 4,
        "embed_dim": 4,
        "hidden": 8,
        "attention_dim": 4,
    },
    "caption_transformer": {
        "widths": (4, 4),
        "features": 4,
        "d_model": 8,
        "num_heads": 2,
        "mlp_dim": 8,
        "num_layers": 1,
        "encoder_layers": 1,
    },
}


@pytest.fixture(scope="module")
def batch():
    arrays = dc.digit_caption_examples("test", 3, data_seed=0)
    return {"image": jnp.asarray(arrays["image"]), "tokens": jnp.asarray(arrays["tokens"])}


@pytest.mark.parametrize("name", sorted(TINY))
def test_decode_steps_reproduce_the_teacher_forced_logits(name, batch):
    model = get_model(name, vocab_size=dc.VOCAB_SIZE, **TINY[name])
    image, target_in = batch["image"], decoder_input(batch["tokens"])

    @jax.jit
    def forced_and_stepped(key):
        variables = model.init(key, image, target_in, train=False)
        forced = model.apply(variables, image, target_in, train=False)
        memory = model.apply(variables, image, method="encode")
        state = model.apply(
            variables, memory, image, target_in.shape[1], method="init_decode_state"
        )

        def step(state, token):
            logits, state, _ = model.apply(
                variables, token, state, memory, image, method="decode_step"
            )
            return state, logits

        stepped = jnp.swapaxes(jax.lax.scan(step, state, target_in.T)[1], 0, 1)
        return forced, stepped

    forced, stepped = forced_and_stepped(jax.random.key(0))
    assert forced.shape == (3, dc.TOKENS_LEN, dc.VOCAB_SIZE)
    assert float(jnp.std(forced)) > 1e-3  # not a constant output
    np.testing.assert_allclose(stepped, forced, atol=2e-5)


def test_teacher_forcing_loss_is_the_shifted_cross_entropy(batch):
    """The task's loss: the model sees BOS + tokens[:-1] and is scored on tokens, PAD
    positions left out (a numpy log-softmax reference)."""
    model = get_model("caption_rnn", vocab_size=dc.VOCAB_SIZE, **TINY["caption_rnn"])
    tokens = np.asarray(batch["tokens"])
    shifted = np.concatenate([np.full((3, 1), BOS), tokens[:, :-1]], axis=1)
    np.testing.assert_array_equal(decoder_input(batch["tokens"]), shifted)
    variables = model.init(jax.random.key(1), batch["image"], shifted, train=False)
    loss_fn, _ = captioning.make_captioning_fns(ml_collections.ConfigDict({"name": "captioning"}))
    key = jax.random.key(2)
    ctx = StepContext(step=jnp.zeros((), jnp.int32), rngs={"dropout": key, "sampling": key})
    loss, (_, metrics) = loss_fn(model.apply, variables["params"], {}, batch, ctx, False)
    logits = np.asarray(model.apply(variables, batch["image"], shifted, train=False), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, tokens[..., None], -1)[..., 0]
    valid = tokens != PAD
    assert float(loss) == pytest.approx(-picked[valid].mean(), rel=1e-5)
    assert float(metrics["loss"].compute()) == pytest.approx(float(loss), rel=1e-5)


class ScriptedCaptioner:
    """A contract-3 stand-in: step t's logits put 8 on `SCRIPT[t]` (EOS at step 2) and 0
    elsewhere, whatever the input; tokens after EOS must come out as PAD."""

    V = 6
    SCRIPT = (4, 3, EOS, 5, 5, 4)

    def apply(self, variables, *args, method, train=False, rngs=None):
        if method == "encode":
            return {}
        if method == "init_decode_state":
            return jnp.zeros(args[1].shape[0], jnp.int32)
        step = args[1]  # the token is ignored
        logits = 8.0 * jax.nn.one_hot(jnp.asarray(self.SCRIPT)[step], self.V)
        return logits, step + 1, None


def test_decoding_stops_at_eos():
    source = jnp.zeros((2, 4, 4, 1))
    model = ScriptedCaptioner()
    expected = np.array([[4, 3, EOS, PAD, PAD, PAD]] * 2)
    np.testing.assert_array_equal(greedy_decode(model.apply, {}, source, 6)[0], expected)
    np.testing.assert_array_equal(beam_search(model.apply, {}, source, 6, 3)[0], expected)
    sampled = captioning.sample_decode(model.apply, {}, source, 6, jax.random.key(0), 0.05)
    np.testing.assert_array_equal(sampled, expected)


def test_sampling_draws_from_the_tempered_softmax():
    class Fixed:
        def apply(self, variables, *args, method, train=False, rngs=None):
            if method == "encode":
                return {}
            if method == "init_decode_state":
                return jnp.zeros(args[1].shape[0])
            return jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0, 2.0]), (2048, 5)), args[1], None

    temperature = 2.0
    tokens = captioning.sample_decode(
        Fixed().apply, {}, jnp.zeros((2048, 1)), 1, jax.random.key(3), temperature
    )
    freq = np.bincount(np.asarray(tokens[:, 0]), minlength=5) / 2048
    p = np.exp(np.array([0.0, 0, 0, 1, 2]) / temperature)
    p /= p.sum()
    np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(p * (1 - p) / 2048).max())


def test_attention_overlays_upsample_each_step_map():
    images = np.zeros((1, 4, 4, 1), np.float32)
    images[0, 0, 0] = 1.0
    attention = np.zeros((1, 3, 4))  # a 2x2 grid of regions, 3 steps
    attention[0, 0, 3] = 1.0  # step 0 looks at the bottom-right region
    attention[0, 1, 0] = 1.0
    tokens = np.array([[5, EOS, PAD]])
    out = captioning.attention_overlays(images, attention, tokens)
    assert out.shape == (1, 4, 16, 3)
    np.testing.assert_array_equal(out[0, :, :4, 0], images[0, ..., 0])  # the image panel
    step0 = out[0, :, 4:8]
    np.testing.assert_array_equal(step0[2:, 2:, 0], 1.0)
    assert step0[0, 0, 0] == 0.5 and step0[0, 0, 1] == 0.5 and step0[0, 1, 0] == 0.0
    np.testing.assert_array_equal(out[0, :2, 8:10, 0], 1.0)  # step 1 (EOS) is drawn
    assert not out[0, :, 12:].any()  # after EOS: black
    big = captioning.attention_overlays(images, attention, tokens, scale=2)
    np.testing.assert_array_equal(big[:, ::2, ::2], out)
    with pytest.raises(ValueError, match="no square grid"):
        captioning.attention_overlays(images, np.zeros((1, 3, 3)), tokens)


def test_bleu_over_caption_ids_equals_sacrebleu_over_words():
    vocab = dc.WordVocab()
    refs = dc.digit_caption_examples("test", 6, data_seed=1)["tokens"]
    hyps = refs.copy()
    hyps[0, 1], hyps[2, 2:4] = hyps[0, 2], (EOS, PAD)  # a wrong word; a truncated caption
    ours = corpus_bleu([strip_ids(r) for r in hyps], [strip_ids(r) for r in refs])
    words = lambda rows: [vocab.decode(r) for r in rows]  # noqa: E731
    theirs = sacrebleu.corpus_bleu(words(hyps), [words(refs)], tokenize="none").score
    assert 0 < ours < 100 and ours == pytest.approx(theirs, abs=1e-9)


def test_bad_options_fail_with_one_line():
    with pytest.raises(ConfigError, match="temperature"):
        captioning.make_captions_evaluator(None, None, {"temperature": 0.0})
    with pytest.raises(ConfigError, match="beam_size"):
        captioning.make_captions_evaluator(None, None, {"beam_size": 0})
    info = type(
        "Info",
        (),
        {"features": {"image": None, "label": None}, "vocab_size": None, "name": "digits"},
    )()
    setup = type("Setup", (), {"config": None, "info": info})()
    with pytest.raises(ConfigError, match="needs a dataset with 'image' and 'tokens'"):
        captioning.make_captioning_task(setup)


def test_caption_rnn_initial_state_cannot_saturate(batch):
    """caption_rnn's h_0, c_0 = tanh(LN(W LN(a))): whatever the projection's scale (here its
    kernel times 1000, what Adam's steps on the image-independent part of a did to the old
    tanh(W LN(a))), the pre-activations stay normalized per image; without the LayerNorm they
    saturate at +-1. caption_rnn's encoder has no CoordConv channels (1 input channel)."""
    pooled = jax.random.normal(jax.random.key(0), (3, 40))
    for project_norm in (True, False):
        module = captioning_models._InitCarry("lstm", 16, project_norm=project_norm)
        params = module.init(jax.random.key(1), pooled)["params"]
        params = jax.tree_util.tree_map_with_path(
            lambda path, x: x * 1000.0 if "kernel" in jax.tree_util.keystr(path) else x, params
        )
        c0, h0 = module.apply({"params": params}, pooled)
        for state in (c0, h0):
            z = np.arctanh(np.clip(np.asarray(state, np.float64), -1 + 1e-7, 1 - 1e-7))
            if project_norm:
                np.testing.assert_allclose(z.mean(-1), 0.0, atol=1e-3)
                np.testing.assert_allclose(z.std(-1), 1.0, atol=1e-2)
            else:
                assert np.mean(np.abs(np.asarray(state)) > 0.999) > 0.9
    model = get_model("caption_rnn", vocab_size=dc.VOCAB_SIZE, **TINY["caption_rnn"])
    shapes = jax.eval_shape(
        lambda: model.init(jax.random.key(0), batch["image"], batch["tokens"], train=False)
    )
    assert shapes["params"]["encoder"]["Conv_0"]["kernel"].shape == (3, 3, 1, 4)
    assert "init_h_norm" in shapes["params"]["init_proj"]
