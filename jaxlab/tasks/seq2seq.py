"""Sequence to sequence: training modes, greedy and beam-search decoding, corpus BLEU.

Works with any contract-3 model (`seq2seq_rnn`, `transformer`): batches hold 'source'
[B, S] and 'target' [B, T] (symbols, EOS, PAD); the decoder input is
`target_in = BOS + target[:, :-1]`.

Training (`task.training`):
  teacher_forcing      logits = model(source, target_in) (one `__call__`).
  free_running         the decoder is fed its own samples (drawn from its softmax) at
                       every step: `decode_step` under `lax.scan`.
  scheduled_sampling   (Bengio et al. 2015) at step i each decoder input is the model's own
                       sample with probability p_i = 1 - eps_i, else the teacher token;
                       eps_i = k / (k + exp(i / k)) ('inverse_sigmoid', k = task.ss_k) or
                       max(task.ss_min_teacher, 1 - i / task.ss_decay_steps) ('linear').
  The loss is the token cross entropy over the target positions that are not PAD
  (token-weighted: the mean over all real tokens of the batch). Samples carry no gradient.

Eval metrics: `loss` and `token_accuracy` (teacher forced, token-weighted), `exact_match`
(greedy decoding of T tokens equals the target up to and incl. EOS) and `bleu` (corpus
BLEU of the greedy outputs, `corpus_bleu`). Evaluator `decode` (config.evaluators.decode:
beam_size, alpha, num_examples): beam search over the eval set (exact match and BLEU), the
attention maps of the first examples as images and the decoded examples as text.

Beam search (`beam_search`): K beams per example in one pool; a candidate's score is its
log-probability divided by Wu et al. (2016)'s length penalty ((5 + len) / 6)^alpha, len
counting the tokens up to and incl. EOS. A finished beam stays in the pool extended by PAD
at no cost (its length frozen), so it competes with the live ones by normalized score;
`lax.scan` over the max length, compiled once. Beam size 1 is greedy decoding.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import metrics as clu_metrics

from jaxlab import losses
from jaxlab.config import ConfigError, check_choice, check_positive
from jaxlab.data.text import BOS, EOS, FIRST_SYMBOL, PAD
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.supervised import ApplyFn, SupervisedState, SupervisedTask

TRAINING_MODES = ("teacher_forcing", "free_running", "scheduled_sampling")
SS_SCHEDULES = ("inverse_sigmoid", "linear")
SMOOTHING = ("exp", "none")
NEG = -1e9


# ---- BLEU --------------------------------------------------------------------------------


def strip_ids(ids: Sequence[int]) -> list[int]:
    """The symbols of a decoded or target row: cut at the first EOS, specials removed."""
    out = []
    for i in ids:
        if int(i) == EOS:
            break
        if int(i) >= FIRST_SYMBOL:
            out.append(int(i))
    return out


def _ngrams(tokens: Sequence[int], n: int) -> collections.Counter:
    return collections.Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(
    hypotheses: Sequence[Sequence[int]],
    references: Sequence[Sequence[int]],
    max_order: int = 4,
    smooth: str = "exp",
) -> float:
    """Corpus BLEU in [0, 100] of id sequences, one reference each (Papineni et al. 2002):
    clipped n-gram counts summed over the corpus, geometric mean of the n = 1..4 precisions,
    brevity penalty exp(1 - r / c) when c < r. `smooth='exp'` (sacrebleu's default, NIST
    mteval's): the k-th zero precision counts as 1 / (2^k total_n); 'none': a zero precision
    gives 0; so does a corpus without n-grams of some order n <= 4. Equals
    `sacrebleu.corpus_bleu` with tokenize='none' on the space-joined ids. Written here
    because sacrebleu scores strings; this one takes the ids directly.
    """
    check_choice("BLEU smoothing", smooth, SMOOTHING)
    correct, total = np.zeros(max_order), np.zeros(max_order)
    sys_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp, ref = [int(t) for t in hyp], [int(t) for t in ref]
        sys_len, ref_len = sys_len + len(hyp), ref_len + len(ref)
        for n in range(1, max_order + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            correct[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            total[n - 1] += max(len(hyp) - n + 1, 0)
    if not correct.any():
        return 0.0
    bp = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len else 0.0)
    log_sum, factor = 0.0, 1.0
    for n in range(max_order):
        if total[n] == 0:  # no n-grams this long: precision 0 (no effective order)
            return 0.0
        if correct[n] == 0:
            if smooth == "none":
                return 0.0
            factor *= 2
            log_sum += math.log(100.0 / (factor * total[n]))
        else:
            log_sum += math.log(100.0 * correct[n] / total[n])
    return bp * math.exp(log_sum / max_order)


@flax.struct.dataclass
class BleuMetric(clu_metrics.CollectingMetric.from_outputs(("hypotheses", "references", "mask"))):
    """Collects decoded and target rows on the host; `compute()` is the corpus BLEU of the
    rows with mask 1 (padding examples left out)."""

    def compute(self) -> float:
        values = super().compute()
        keep = np.asarray(values["mask"]) > 0
        hyps = [strip_ids(r) for r in np.asarray(values["hypotheses"])[keep]]
        refs = [strip_ids(r) for r in np.asarray(values["references"])[keep]]
        return float(corpus_bleu(hyps, refs))


# ---- decoding ----------------------------------------------------------------------------


def decoder_input(target: jax.Array) -> jax.Array:
    """BOS + target[:, :-1]."""
    bos = jnp.full((target.shape[0], 1), BOS, target.dtype)
    return jnp.concatenate([bos, target[:, :-1]], axis=1)


def _attention_or_zeros(attention: jax.Array | None, source: jax.Array) -> jax.Array:
    if attention is None:
        return jnp.zeros(source.shape, jnp.float32)
    return attention.astype(jnp.float32)


def greedy_decode(
    apply_fn: ApplyFn, params: PyTree, source: jax.Array, max_length: int
) -> tuple[jax.Array, jax.Array]:
    """(tokens int32 [B, L], attention f32 [B, L, S]): the arg-max token at each step, PAD
    after the first EOS; `lax.scan` over `max_length` steps."""
    variables = {"params": params}
    memory = apply_fn(variables, source, train=False, method="encode")
    state = apply_fn(variables, memory, source, max_length, method="init_decode_state")
    batch = source.shape[0]

    def step(carry, _):
        token, state, done = carry
        logits, state, attention = apply_fn(
            variables, token, state, memory, source, method="decode_step"
        )
        new = jnp.argmax(logits, -1).astype(jnp.int32)
        new = jnp.where(done, PAD, new)
        done = done | (new == EOS)
        return (new, state, done), (new, _attention_or_zeros(attention, source))

    init = (jnp.full((batch,), BOS, jnp.int32), state, jnp.zeros((batch,), bool))
    _, (tokens, attention) = jax.lax.scan(step, init, None, length=max_length)
    return tokens.T, jnp.swapaxes(attention, 0, 1)


def length_penalty(length: jax.Array, alpha: float) -> jax.Array:
    """Wu et al. (2016): ((5 + length) / 6) ** alpha."""
    return ((5.0 + length.astype(jnp.float32)) / 6.0) ** alpha


def _reorder(tree: PyTree, parents: jax.Array, batch: int, beams: int) -> PyTree:
    """Gathers the beams `parents` [B, K] of every leaf whose leading axis is B * K (others,
    e.g. a shared position counter, are kept)."""

    def gather(leaf: jax.Array) -> jax.Array:
        if leaf.ndim == 0 or leaf.shape[0] != batch * beams:
            return leaf
        grouped = leaf.reshape(batch, beams, *leaf.shape[1:])
        index = parents.reshape(batch, beams, *([1] * (leaf.ndim - 1)))
        return jnp.take_along_axis(grouped, index, axis=1).reshape(leaf.shape)

    return jax.tree.map(gather, tree)


def beam_search(
    apply_fn: ApplyFn,
    params: PyTree,
    source: jax.Array,
    max_length: int,
    beam_size: int,
    alpha: float = 0.6,
) -> tuple[jax.Array, jax.Array]:
    """(tokens int32 [B, L] of the best beam, its normalized score f32 [B]); see the
    module docstring."""
    variables = {"params": params}
    batch, k = source.shape[0], beam_size
    tiled = jnp.repeat(source, k, axis=0)
    memory = apply_fn(variables, tiled, train=False, method="encode")
    state = apply_fn(variables, memory, tiled, max_length, method="init_decode_state")
    logp0 = jnp.where(jnp.arange(k) == 0, 0.0, NEG)[None].repeat(batch, 0)

    def step(carry, t):
        tokens, state, logp, length, done, seqs = carry
        logits, state, _ = apply_fn(
            variables, tokens.reshape(-1), state, memory, tiled, method="decode_step"
        )
        step_logp = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(batch, k, -1)
        vocab = step_logp.shape[-1]
        finished_row = jnp.where(jnp.arange(vocab) == PAD, 0.0, NEG)
        step_logp = jnp.where(done[..., None], finished_row, step_logp)
        cand = logp[..., None] + step_logp  # [B, K, V]
        cand_len = jnp.where(done, length, t + 1)[..., None]
        normalized = cand / length_penalty(cand_len, alpha)
        _, flat = jax.lax.top_k(normalized.reshape(batch, -1), k)
        parents, words = flat // vocab, (flat % vocab).astype(jnp.int32)
        pick = lambda a: jnp.take_along_axis(a, parents, axis=1)  # noqa: E731
        new_logp = jnp.take_along_axis(cand.reshape(batch, -1), flat, axis=1)
        was_done = pick(done)
        length = jnp.where(was_done, pick(length), t + 1)
        done = was_done | (words == EOS)
        seqs = jnp.take_along_axis(seqs, parents[..., None], axis=1).at[:, :, t].set(words)
        state = _reorder(state, parents, batch, k)
        return (words, state, new_logp, length, done, seqs), None

    init = (
        jnp.full((batch, k), BOS, jnp.int32),
        state,
        logp0,
        jnp.zeros((batch, k), jnp.int32),
        jnp.zeros((batch, k), bool),
        jnp.zeros((batch, k, max_length), jnp.int32),
    )
    (_, _, logp, length, done, seqs), _ = jax.lax.scan(step, init, jnp.arange(max_length))
    final = logp / length_penalty(jnp.where(done, length, max_length), alpha)
    best = jnp.argmax(final, axis=1)
    rows = jnp.arange(batch)
    return seqs[rows, best], final[rows, best]


# ---- training modes ----------------------------------------------------------------------


def sampling_probability(step: jax.Array, task: ml_collections.ConfigDict) -> jax.Array:
    """Probability of feeding the model's own sample at train step `step` (module doc)."""
    mode = task.get("training", "teacher_forcing")
    if mode == "teacher_forcing":
        return jnp.zeros((), jnp.float32)
    if mode == "free_running":
        return jnp.ones((), jnp.float32)
    i = jnp.asarray(step, jnp.float32)
    if task.get("ss_schedule", "inverse_sigmoid") == "inverse_sigmoid":
        k = float(task.get("ss_k", 1000.0))
        teacher = k / (k + jnp.exp(jnp.minimum(i / k, 80.0)))
    else:
        floor = float(task.get("ss_min_teacher", 0.0))
        teacher = jnp.maximum(floor, 1.0 - i / float(task.get("ss_decay_steps", 10_000)))
    return 1.0 - teacher


def sampled_logits(
    apply_fn: ApplyFn,
    params: PyTree,
    source: jax.Array,
    target: jax.Array,
    p_model: jax.Array,
    key: jax.Array,
    dropout_key: jax.Array | None = None,
) -> jax.Array:
    """Logits [B, T, V] of the decoder fed, at each step, its own sample (drawn from its
    softmax, no gradient) with probability `p_model`, else the teacher token (`decode_step`
    under `lax.scan`; the first input is BOS). `p_model = 0` is teacher forcing."""
    variables = {"params": params}
    train = dropout_key is not None
    rngs = {"dropout": dropout_key} if train else {}
    memory = apply_fn(variables, source, train=train, rngs=rngs, method="encode")
    state = apply_fn(variables, memory, source, target.shape[1], method="init_decode_state")
    teacher = decoder_input(target).T  # [T, B]
    keys = jax.random.split(key, target.shape[1])

    def step(carry, inputs):
        prev_sample, state = carry
        teacher_token, step_key, t = inputs
        coin_key, sample_key = jax.random.split(step_key)
        use_model = (t > 0) & (jax.random.uniform(coin_key, teacher_token.shape) < p_model)
        token = jnp.where(use_model, prev_sample, teacher_token)
        logits, state, _ = apply_fn(variables, token, state, memory, source, method="decode_step")
        sample = jax.random.categorical(sample_key, jax.lax.stop_gradient(logits))
        return (sample.astype(jnp.int32), state), logits

    init = (jnp.full(target.shape[:1], BOS, jnp.int32), state)
    steps = jnp.arange(target.shape[1])
    _, logits = jax.lax.scan(step, init, (teacher, keys, steps))
    return jnp.swapaxes(logits, 0, 1)


# ---- the task ----------------------------------------------------------------------------


def _check_task(task: ml_collections.ConfigDict) -> None:
    check_choice("task.training", task.get("training", "teacher_forcing"), TRAINING_MODES)
    check_choice("task.ss_schedule", task.get("ss_schedule", "inverse_sigmoid"), SS_SCHEDULES)
    check_positive("task.ss_k", task.get("ss_k", 1000.0))
    check_positive("task.ss_decay_steps", task.get("ss_decay_steps", 10_000))
    floor = task.get("ss_min_teacher", 0.0)
    check_positive("task.ss_min_teacher", floor, allow_zero=True)
    if floor > 1:
        raise ConfigError(f"task.ss_min_teacher must be in [0, 1], got {floor!r}")


def token_metrics(logits: jax.Array, target: jax.Array, mask: jax.Array | None) -> Metrics:
    """Token-weighted cross entropy and accuracy over the non-PAD target positions."""
    valid = target != PAD
    if mask is not None:
        valid = valid & losses.broadcast_mask(mask > 0, target.shape)
    return {
        "loss": average(losses.softmax_cross_entropy(logits, target), valid),
        "token_accuracy": average(jnp.argmax(logits, -1) == target, valid),
    }


def exact_match(tokens: jax.Array, target: jax.Array) -> jax.Array:
    """bool [B]: the decoded row equals the target at every position (symbols, EOS, PAD)."""
    return jnp.all(tokens == target, axis=1)


class Seq2SeqTask(SupervisedTask):
    """`SupervisedTask` whose model takes (source, target_in); see the module docstring."""

    def init_state(self, batch: Batch, ctx: StepContext) -> SupervisedState:
        """Initializes the model on one example (source and decoder input)."""
        source = batch["source"][:1]
        variables = self.model.init(
            {"params": ctx.rng("params"), "dropout": ctx.rng("dropout")},
            source,
            decoder_input(batch["target"][:1]),
            train=False,
        )
        return self.from_variables(variables)


def make_seq2seq_fns(task_config: ml_collections.ConfigDict) -> tuple[Callable, Callable]:
    """(loss_fn, eval_fn) of the seq2seq task for `SupervisedTask`."""
    _check_task(task_config)
    mode = task_config.get("training", "teacher_forcing")

    def loss_fn(apply_fn, params, model_state, batch, ctx, train):
        source, target = batch["source"], batch["target"]
        if mode == "teacher_forcing" or not train:
            logits = apply_fn(
                {"params": params},
                source,
                decoder_input(target),
                train=train,
                rngs={"dropout": ctx.rng("dropout")} if train else {},
            )
        else:
            p_model = sampling_probability(ctx.step, task_config)
            logits = sampled_logits(
                apply_fn,
                params,
                source,
                target,
                p_model,
                ctx.rng("sampling"),
                ctx.rng("dropout"),
            )
        metrics = token_metrics(logits, target, batch.get("mask"))
        valid = target != PAD
        loss = losses.masked_mean(losses.softmax_cross_entropy(logits, target), valid)
        if train and mode != "teacher_forcing":
            metrics["sampling_probability"] = average(sampling_probability(ctx.step, task_config))
        return loss, (model_state, metrics)

    def eval_fn(apply_fn, params, model_state, batch, ctx) -> Metrics:
        source, target, mask = batch["source"], batch["target"], batch["mask"]
        logits = apply_fn({"params": params}, source, decoder_input(target), train=False)
        metrics = token_metrics(logits, target, mask)
        tokens, _ = greedy_decode(apply_fn, params, source, target.shape[1])
        metrics["exact_match"] = average(exact_match(tokens, target), mask)
        metrics["bleu"] = BleuMetric.from_model_output(
            hypotheses=tokens, references=target, mask=mask
        )
        return metrics

    return loss_fn, eval_fn


def make_seq2seq_task(setup: TaskSetup) -> Seq2SeqTask:
    """Builds the seq2seq task of `setup.config` (model from `config.model`, vocab_size
    from the dataset). ConfigError for a dataset without 'source' / 'target' or bad keys."""
    config, info = setup.config, setup.info
    if not {"source", "target"} <= set(info.features) or not info.vocab_size:
        raise ConfigError(
            f"task 'seq2seq' needs a dataset with 'source' and 'target' tokens and a "
            f"vocab_size; {info.name!r} has {', '.join(info.features)}"
        )
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    if not kwargs.get("vocab_size"):  # 0: the field's default, filled from the dataset
        kwargs["vocab_size"] = int(info.vocab_size)
    model = build_model(config.model.name, kwargs)
    loss_fn, eval_fn = make_seq2seq_fns(config.task)

    mode = config.task.get("training", "teacher_forcing")
    return Seq2SeqTask(
        name="seq2seq",
        model=model,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        optimizer=setup.optimizer(),
        input_key="source",
        train_metric_names=("loss", "token_accuracy")
        + (("sampling_probability",) if mode != "teacher_forcing" else ()),
        eval_metric_names=("loss", "token_accuracy", "exact_match", "bleu"),
        rng_streams=("params", "dropout", "sampling"),
        ema_decay=ema_decay(config),
        norms_every=config.log_every_steps if config.get("log_norms") else None,
        evaluator_factories={"decode": make_decode_evaluator},
    )


# ---- the decode evaluator ----------------------------------------------------------------


def attention_images(attention: np.ndarray, scale: int = 8) -> np.ndarray:
    """f32 [N, L * scale, S * scale, 1] in [0, 1]: attention maps (rows: decoder steps,
    columns: source positions), each cell drawn as a scale x scale block."""
    maps = np.clip(np.asarray(attention, np.float32), 0.0, 1.0)
    return np.repeat(np.repeat(maps, scale, axis=1), scale, axis=2)[..., None]


def make_decode_evaluator(task: Seq2SeqTask, setup: TaskSetup, options: Any) -> Any:
    """`config.evaluators.decode`: beam search over the eval set (`beam_size` default 4,
    `alpha` 0.6) giving `exact_match` and `bleu`; the greedy attention maps of the first
    `num_examples` (default 4) eval examples as images and their decodings as text."""
    from jaxlab.data.text import tokenizer_for
    from jaxlab.train import EvalResult, Evaluator  # the loop imports the task registry

    beam_size = int(options.get("beam_size", 4))
    alpha = float(options.get("alpha", 0.6))
    num_examples = int(options.get("num_examples", 4))
    check_positive("evaluators.decode.beam_size", beam_size, integer=True)
    check_positive("evaluators.decode.alpha", alpha, allow_zero=True)
    target_len = setup.info.eval_features["target"].shape[0]
    apply_fn = task.model.apply
    beam = jax.jit(lambda p, s: beam_search(apply_fn, p, s, target_len, beam_size, alpha)[0])
    greedy = jax.jit(lambda p, s: greedy_decode(apply_fn, p, s, target_len))
    try:
        tokenizer = tokenizer_for(setup.config)
        show = tokenizer.decode
    except ConfigError:
        show = lambda ids: " ".join(str(int(i)) for i in ids)  # noqa: E731

    class DecodeEvaluator(Evaluator):
        name = "decode"
        every_steps = int(options.get("every_steps", 0))

        def run(self, ctx: Any) -> Any:
            state = ctx.host(ctx.state.task)
            params = state.ema_params if task.ema_decay is not None else state.params
            exact = count = 0
            hyps, refs = [], []
            first = None
            for batch in ctx.eval_batches():
                keep = batch["mask"] > 0
                tokens = np.asarray(beam(params, batch["source"]))
                exact += int(np.all(tokens == batch["target"], axis=1)[keep].sum())
                count += int(keep.sum())
                hyps += [strip_ids(r) for r in tokens[keep]]
                refs += [strip_ids(r) for r in batch["target"][keep]]
                if first is None:
                    first = {k: v[keep][:num_examples] for k, v in batch.items()}
            decoded, attention = greedy(params, first["source"])
            lines = []
            for src, tgt, out, bm in zip(
                first["source"], first["target"], np.asarray(decoded), hyps, strict=False
            ):
                lines.append(
                    f"source {show(strip_ids(src))} | target {show(strip_ids(tgt))} | "
                    f"greedy {show(strip_ids(out))} | beam {show(bm)}"
                )
            return EvalResult(
                scalars={
                    "exact_match": exact / max(count, 1),
                    "bleu": corpus_bleu(hyps, refs),
                },
                images={"attention": attention_images(np.asarray(attention))},
                texts={"examples": "\n\n".join(lines)},
            )

    return DecodeEvaluator()
