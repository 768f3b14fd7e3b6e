"""Image captioning: the seq2seq task with an image as the source.

Batches hold 'image' [B, H, W, C] and 'tokens' [B, T] (the caption's word ids, EOS, PAD;
`jaxlab.data.digit_captions`). The model is a captioner of `jaxlab.models.captioning`
(`caption_rnn`, `caption_attention`, `caption_transformer`): contract 3 with the image in
place of the source tokens, so this task reuses `jaxlab.tasks.seq2seq` whole: its loss
(token cross entropy over the non-PAD positions, the decoder fed BOS + tokens[:, :-1]:
teacher forcing, or `task.training` = free_running / scheduled_sampling), its eval metrics
(`loss`, `token_accuracy`, `exact_match`: the greedy caption equals the reference up to and
incl. EOS, `bleu`: corpus BLEU of the greedy captions) and its `greedy_decode`,
`beam_search`, `corpus_bleu` and `strip_ids`. Only the batch keys differ: `as_seq2seq`
renames them ('image' -> 'source', 'tokens' -> 'target').

Evaluator `captions` (config.evaluators.captions: beam_size (4), alpha (0.6), temperature
(1.0), num_examples (4), every_steps): decodes the whole eval set three ways, greedy, beam
search and sampling at `temperature` (`sample_decode`, each step drawn from
softmax(logits / temperature) until EOS), and reports `<way>/exact_match` (the fraction of
captions equal to the reference) and `<way>/bleu` (corpus BLEU, 0-100); the first
`num_examples` captions of each way as text, and for a model with attention the greedy
attention maps as images (`attention_overlays`: each example a row, the image then one
panel per decoded word with the map upsampled over it in red).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_positive
from jaxlab.data.text import BOS, EOS, PAD
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, StepContext, TaskSetup
from jaxlab.tasks.seq2seq import (
    Seq2SeqTask,
    beam_search,
    corpus_bleu,
    greedy_decode,
    make_seq2seq_fns,
    strip_ids,
)
from jaxlab.tasks.supervised import ApplyFn, SupervisedState

PyTree = Any


def as_seq2seq(batch: Batch) -> Batch:
    """The batch with 'image' as 'source' and 'tokens' as 'target' (other keys kept)."""
    out = {k: v for k, v in batch.items() if k not in ("image", "tokens")}
    out["source"], out["target"] = batch["image"], batch["tokens"]
    return out


def sample_decode(
    apply_fn: ApplyFn,
    params: PyTree,
    source: jax.Array,
    max_length: int,
    key: jax.Array,
    temperature: float = 1.0,
) -> jax.Array:
    """int32 [B, L]: captions sampled token by token from softmax(logits / temperature),
    PAD after the first EOS; `lax.scan` over `max_length` steps. (The seq2seq module decodes
    greedily or by beam; sampling is written here.)"""
    variables = {"params": params}
    memory = apply_fn(variables, source, train=False, method="encode")
    state = apply_fn(variables, memory, source, max_length, method="init_decode_state")
    batch = source.shape[0]

    def step(carry, step_key):
        token, state, done = carry
        logits, state, _ = apply_fn(variables, token, state, memory, source, method="decode_step")
        new = jax.random.categorical(step_key, logits / temperature).astype(jnp.int32)
        new = jnp.where(done, PAD, new)
        return (new, state, done | (new == EOS)), new

    init = (jnp.full((batch,), BOS, jnp.int32), state, jnp.zeros((batch,), bool))
    _, tokens = jax.lax.scan(step, init, jax.random.split(key, max_length))
    return tokens.T


class CaptioningTask(Seq2SeqTask):
    """`Seq2SeqTask` on 'image' / 'tokens' batches (see the module docstring)."""

    def init_state(self, batch: Batch, ctx: StepContext) -> SupervisedState:
        """Initializes the captioner on one example (image and decoder input)."""
        return super().init_state(as_seq2seq(batch), ctx)


def make_captioning_fns(task_config: ml_collections.ConfigDict) -> tuple[Callable, Callable]:
    """(loss_fn, eval_fn): the seq2seq task's, on renamed batches."""
    loss_fn, eval_fn = make_seq2seq_fns(task_config)

    def caption_loss(apply_fn, params, model_state, batch, ctx, train):
        return loss_fn(apply_fn, params, model_state, as_seq2seq(batch), ctx, train)

    def caption_eval(apply_fn, params, model_state, batch, ctx):
        return eval_fn(apply_fn, params, model_state, as_seq2seq(batch), ctx)

    return caption_loss, caption_eval


def make_captioning_task(setup: TaskSetup) -> CaptioningTask:
    """Builds the captioning task of `setup.config` (model from `config.model`, vocab_size
    from the dataset). ConfigError for a dataset without 'image' and 'tokens' or bad keys."""
    config, info = setup.config, setup.info
    if not {"image", "tokens"} <= set(info.features) or not info.vocab_size:
        raise ConfigError(
            f"task 'captioning' needs a dataset with 'image' and 'tokens' features and a "
            f"vocab_size (e.g. digit_captions); {info.name!r} has {', '.join(info.features)}"
        )
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    if not kwargs.get("vocab_size"):
        kwargs["vocab_size"] = int(info.vocab_size)
    model = build_model(config.model.name, kwargs)
    loss_fn, eval_fn = make_captioning_fns(config.task)
    mode = config.task.get("training", "teacher_forcing")
    return CaptioningTask(
        name="captioning",
        model=model,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        optimizer=setup.optimizer(),
        input_key="image",
        train_metric_names=("loss", "token_accuracy")
        + (("sampling_probability",) if mode != "teacher_forcing" else ()),
        eval_metric_names=("loss", "token_accuracy", "exact_match", "bleu"),
        rng_streams=("params", "dropout", "sampling"),
        ema_decay=ema_decay(config),
        evaluator_factories={"captions": make_captions_evaluator},
    )


# ---- the captions evaluator --------------------------------------------------------------


def attention_overlays(
    images: np.ndarray, attention: np.ndarray, tokens: np.ndarray, scale: int = 1
) -> np.ndarray:
    """f32 [N, s H, s (L + 1) W, 3] in [0, 1] (s = `scale`, pixels repeated): per example
    the grey image, then per decoded token (up to and incl. EOS; black panels after) the
    image dimmed to half with the step's attention map [h * w] (a square grid, upsampled
    to H x W by repetition and scaled to its maximum) in the red channel. ValueError when
    the maps are not square grids that divide the image."""
    images = np.asarray(images, np.float32)
    n, height, width = images.shape[:3]
    steps, regions = attention.shape[1:]
    side = math.isqrt(regions)
    if side * side != regions or height % side or width % side:
        raise ValueError(f"{regions} attention regions are no square grid over {height}x{width}")
    grey = images.mean(-1)
    grey = grey / np.maximum(grey.max(axis=(1, 2), keepdims=True), 1e-6)
    maps = np.asarray(attention, np.float32).reshape(n, steps, side, side)
    maps = np.repeat(np.repeat(maps, height // side, axis=2), width // side, axis=3)
    maps = maps / np.maximum(maps.max(axis=(2, 3), keepdims=True), 1e-6)
    panels = np.zeros((n, steps + 1, height, width, 3), np.float32)
    panels[:, 0] = grey[..., None]
    dim = 0.5 * grey[:, None]
    panels[:, 1:] = dim[..., None]
    panels[:, 1:, ..., 0] = np.maximum(dim, maps)
    ended = np.cumsum(np.asarray(tokens) == EOS, axis=1) - (np.asarray(tokens) == EOS) > 0
    panels[:, 1:][ended] = 0.0
    strip = panels.transpose(0, 2, 1, 3, 4).reshape(n, height, (steps + 1) * width, 3)
    return np.repeat(np.repeat(strip, scale, axis=1), scale, axis=2)


def make_captions_evaluator(task: CaptioningTask, setup: TaskSetup, options: Any) -> Any:
    """`config.evaluators.captions` (see the module docstring)."""
    from jaxlab.data.text import tokenizer_for
    from jaxlab.train import EvalResult, Evaluator  # the loop imports the task registry

    beam_size = int(options.get("beam_size", 4))
    alpha = float(options.get("alpha", 0.6))
    temperature = float(options.get("temperature", 1.0))
    num_examples = int(options.get("num_examples", 4))
    check_positive("evaluators.captions.beam_size", beam_size, integer=True)
    check_positive("evaluators.captions.alpha", alpha, allow_zero=True)
    check_positive("evaluators.captions.temperature", temperature)
    check_positive("evaluators.captions.num_examples", num_examples, integer=True)
    length = setup.info.eval_features["tokens"].shape[0]
    apply_fn = task.model.apply
    decoders = {
        "greedy": jax.jit(lambda p, s, k: greedy_decode(apply_fn, p, s, length)),
        "beam": jax.jit(lambda p, s, k: beam_search(apply_fn, p, s, length, beam_size, alpha)[0]),
        "sample": jax.jit(lambda p, s, k: sample_decode(apply_fn, p, s, length, k, temperature)),
    }
    try:
        show = tokenizer_for(setup.config).decode
    except ConfigError:
        show = lambda ids: " ".join(str(int(i)) for i in ids)  # noqa: E731

    class CaptionsEvaluator(Evaluator):
        name = "captions"
        every_steps = int(options.get("every_steps", 0))

        def run(self, ctx: Any) -> Any:
            state = ctx.host(ctx.state.task)
            params = state.ema_params if task.ema_decay is not None else state.params
            outputs: dict[str, list[np.ndarray]] = {way: [] for way in decoders}
            refs, first, attention = [], None, None
            for i, batch in enumerate(ctx.eval_batches()):
                keep = batch["mask"] > 0
                key = jax.random.fold_in(ctx.rng, i)
                for way, decode in decoders.items():
                    result = decode(params, batch["image"], key)
                    tokens = result[0] if way == "greedy" else result
                    outputs[way].append(np.asarray(tokens)[keep])
                    if way == "greedy" and first is None:
                        attention = np.asarray(result[1])[keep][:num_examples]
                refs.append(np.asarray(batch["tokens"])[keep])
                if first is None:
                    first = {k: np.asarray(v)[keep][:num_examples] for k, v in batch.items()}
            references = np.concatenate(refs)
            ref_ids = [strip_ids(r) for r in references]
            scalars, lines = {}, []
            for way, rows in outputs.items():
                tokens = np.concatenate(rows)
                scalars[f"{way}/exact_match"] = float(np.mean(np.all(tokens == references, 1)))
                scalars[f"{way}/bleu"] = corpus_bleu([strip_ids(r) for r in tokens], ref_ids)
            for j in range(len(first["tokens"])):
                decoded = " | ".join(f"{way} {show(outputs[way][0][j])}" for way in outputs)
                lines.append(f"reference {show(first['tokens'][j])} | {decoded}")
            images = {}
            if attention is not None and attention.ndim == 3:
                images["attention"] = attention_overlays(
                    first["image"], attention, outputs["greedy"][0][: len(attention)], scale=4
                )
            return EvalResult(
                scalars=scalars, images=images, texts={"examples": "\n\n".join(lines)}
            )

    return CaptionsEvaluator()
