"""Language modelling: next-token cross entropy with truncated backpropagation through time,
perplexity and bits per token, and cached generation with temperature and top-k.

The model is any language model of the registry built to its contract
(`jaxlab.models.build_model(config.model.name, ..., vocab_size=info.vocab_size)`):

    model.apply(v, tokens [B, T], carry, train=...) -> (logits [B, T, V], carry)
    model.apply(v, batch_size, method='initial_carry') -> carry   (None: nothing carried)
    model.apply(v, batch_size, max_length, method='init_decode_state') -> state
    model.apply(v, tokens [B, t], state, method='decode') -> (logits [B, t, V], state)

The dataset gives consecutive windows per batch row (`inputs`, and `targets` = inputs shifted
by one token): row b of every batch continues row b of the previous one.

Truncated BPTT. The task's state is `SupervisedTask`'s (params, optimizer state, parameter
EMA) with the carry of every batch row kept in `model_state['carry']` (leaves [B, ...], B =
config.batch_size, the global batch). Each train step starts row b from the carry row b
ended the previous window with, under `stop_gradient` (the gradient stops at the window
boundary), or from `initial_carry` on the first step of an epoch (`ctx.epoch_start`; a
learned initial state gets its gradient there). Models that carry nothing (GPT) keep no
carry. Under jit the batch and the carry are global arrays, row for row. Under pmap every
device holds the whole global carry (the state stays replicated, so checkpoints and the
jit layout need nothing special): device d reads its rows [d b, (d + 1) b) (its slice of
the batch, b = B / devices), and the rows every device ends with are all-gathered back into
the whole carry. In one process device d's rows are the batch's own rows [d b, (d + 1) b), so
the carry means the same under jit and pmap and a checkpoint moves between the two.
Evaluation carries the state the same way through the eval windows (`init_eval_carry` then
`eval_step`), from `initial_carry` at the start of each pass.

Loss and metrics. The cross entropy of every target token, averaged over the scored tokens:
those of real examples (eval 'mask' 1) whose target is in [0, V) and, when the batch has a
'weights' feature [B, T], whose weight is nonzero (a 0/1 per-token mask, e.g. padding
inside windows). Reported: `loss` (nats per token; nats per character for a character
corpus), `perplexity` = exp(mean loss) and `bits_per_token` = mean loss / ln 2, each from
the (sum, count) of the losses accumulated over the whole log window or evaluation set, so
perplexity is exp of the set's mean loss, never a mean of per-batch perplexities.

Gradient clipping comes from the optimizer config (`optimizer.grad_clip_value`, 0.1 the
classic RNN setting; `optimizer.grad_clip_norm`).

Generation (`generate`): prefill the prompt with one `decode` call, then a `lax.scan` of
one-token `decode` steps, each sampling from softmax(logits / temperature) restricted to the
top k logits (temperature 0: greedy). `generate_long` continues past a model's context
length (a fixed key/value cache) by re-prefilling the latest half context.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import metrics as clu_metrics

from jaxlab import losses
from jaxlab.config import ConfigError
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.supervised import ApplyFn, SupervisedState, SupervisedTask

CARRY = "carry"  # the model_state entry holding the carried recurrent state
WEIGHTS = "weights"  # optional per-token 0/1 feature [B, T]
METRIC_NAMES = ("loss", "perplexity", "bits_per_token")
# Model fields that bound the positions a model can attend to (a fixed cache or position
# table); `generate_long` keeps the context within them.
CONTEXT_FIELDS = ("block_size", "max_len", "max_length", "context_length")


@flax.struct.dataclass  # a subclass of a clu metric must be a pytree of its own
class Perplexity(clu_metrics.Average):
    """exp of the mean of the accumulated per-token losses (nats)."""

    def compute(self) -> jax.Array:
        return jnp.exp(super().compute())


@flax.struct.dataclass
class BitsPerToken(clu_metrics.Average):
    """The mean of the accumulated per-token losses in bits (nats / ln 2)."""

    def compute(self) -> jax.Array:
        return super().compute() / math.log(2.0)


def lm_metrics(token_losses: jax.Array, scored: jax.Array) -> Metrics:
    """`loss`, `perplexity` and `bits_per_token` of per-token losses [B, T] (nats) over the
    `scored` tokens: three views of one (sum, count), so each is exact over any number of
    accumulated batches."""
    mean = average(token_losses, scored)
    return {
        "loss": mean,
        "perplexity": Perplexity(total=mean.total, count=mean.count),
        "bits_per_token": BitsPerToken(total=mean.total, count=mean.count),
    }


def scored_tokens(batch: Batch, targets: jax.Array, vocab_size: int) -> jax.Array:
    """bool [B, T]: the target tokens that count (see the module docstring)."""
    scored = losses.valid_label_mask(targets, vocab_size)
    if "mask" in batch:
        scored = scored & losses.broadcast_mask(batch["mask"], targets.shape)
    if WEIGHTS in batch:
        scored = scored & losses.broadcast_mask(batch[WEIGHTS], targets.shape)
    return scored


def _rows_of_device(carry: PyTree, rows: int, axis_name: str | None) -> PyTree:
    """This device's `rows` rows of the global carry (pmap); the carry itself under jit."""
    if not axis_name:
        return carry
    start = jax.lax.axis_index(axis_name) * rows
    return jax.tree.map(lambda c: jax.lax.dynamic_slice_in_dim(c, start, rows, axis=0), carry)


def _global_rows(carry: PyTree, axis_name: str | None) -> PyTree:
    """The global carry from every device's rows, in device order (pmap); the identity
    under jit."""
    if not axis_name:
        return carry
    return jax.tree.map(lambda c: jax.lax.all_gather(c, axis_name, tiled=True), carry)


def make_lm_loss_fn(vocab_size: int):
    """The `SupervisedTask` loss function of truncated BPTT (see the module docstring):
    `(apply_fn, params, model_state, batch, ctx, train) -> (mean loss, (model_state with
    the carry after the window, metrics))`."""

    def loss_fn(
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        tokens, targets = batch["inputs"], batch["targets"]
        variables = {"params": params, **{k: v for k, v in model_state.items() if k != CARRY}}
        carry = None
        if CARRY in model_state:
            rows = tokens.shape[0]
            previous = jax.lax.stop_gradient(
                _rows_of_device(model_state[CARRY], rows, ctx.axis_name)
            )
            initial = apply_fn(variables, rows, method="initial_carry")
            reset = jnp.asarray(False if ctx.epoch_start is None else ctx.epoch_start)
            carry = jax.tree.map(lambda i, p: jnp.where(reset, i, p), initial, previous)
        rngs = {"dropout": ctx.rng("dropout")} if train else {}
        logits, carry = apply_fn(variables, tokens, carry, train=train, rngs=rngs)
        token_losses = losses.softmax_cross_entropy(logits, targets)
        scored = scored_tokens(batch, targets, vocab_size)
        new_state = dict(model_state)
        if CARRY in model_state:
            new_state[CARRY] = _global_rows(jax.lax.stop_gradient(carry), ctx.axis_name)
        loss = losses.masked_mean(token_losses, scored)
        return loss, (new_state, lm_metrics(token_losses, scored))

    return loss_fn


class LanguageModelTask(SupervisedTask):
    """`SupervisedTask` with the recurrent carry kept across train and eval windows (see
    the module docstring). `batch_size` is the global train batch (rows of the carry)."""

    def __init__(self, *, batch_size: int, vocab_size: int, **kwargs: Any) -> None:
        super().__init__(
            loss_fn=make_lm_loss_fn(vocab_size),
            eval_fn=lambda *args: {},  # unused: `eval_step` (overridden) carries the state
            input_key="inputs",
            train_metric_names=METRIC_NAMES,
            eval_metric_names=METRIC_NAMES,
            **kwargs,
        )
        self.batch_size = batch_size
        self.vocab_size = vocab_size

    def initial_carry(self, params: PyTree, batch_size: int) -> PyTree:
        """The model's initial carry for `batch_size` rows (None when it carries nothing)."""
        return self.model.apply({"params": params}, batch_size, method="initial_carry")

    def from_variables(self, variables: Mapping[str, PyTree]) -> SupervisedState:
        """A fresh state around `variables` with the carry at its initial value."""
        variables = {k: v for k, v in variables.items() if k != CARRY}
        state = super().from_variables(variables)
        carry = self.initial_carry(state.params, self.batch_size)
        if carry is None:
            return state
        return state.replace(model_state={**state.model_state, CARRY: carry})

    def variables(self, state: SupervisedState) -> dict[str, PyTree]:
        """The model variables (the carry is task state, not a model variable)."""
        model_state = {k: v for k, v in state.model_state.items() if k != CARRY}
        return {"params": state.params, **model_state}

    def _eval_params(self, state: SupervisedState) -> PyTree:
        return state.ema_params if self.ema_decay is not None else state.params

    def init_eval_carry(self, state: SupervisedState, batch: Batch) -> PyTree:
        """The initial carry of the eval batch's rows (the device's rows under pmap)."""
        return self.initial_carry(self._eval_params(state), batch["inputs"].shape[0])

    def eval_step(
        self, state: SupervisedState, batch: Batch, carry: PyTree, ctx: StepContext
    ) -> tuple[PyTree, Metrics]:
        """The metrics of one eval window, continuing each row from `carry`."""
        variables = self.variables(state) | {"params": self._eval_params(state)}
        logits, carry = self.model.apply(variables, batch["inputs"], carry, train=False)
        token_losses = losses.softmax_cross_entropy(logits, batch["targets"])
        scored = scored_tokens(batch, batch["targets"], self.vocab_size)
        return carry, lm_metrics(token_losses, scored)


def model_kwargs(model_config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The model section as `build_model` kwargs: without `name`, without a `vocab_size` of 0
    (unset: the dataset's fills it), and with lists (a config read back from config.json)
    as tuples, so the module stays hashable (a static argument of `generate`)."""
    kwargs = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in model_config.to_dict().items()
        if k != "name"
    }
    if not kwargs.get("vocab_size"):
        kwargs.pop("vocab_size", None)
    return kwargs


def build_language_model(config: ml_collections.ConfigDict, vocab_size: int) -> nn.Module:
    """The model of `config.model` with the dataset's `vocab_size`; ConfigError for a
    model.vocab_size set below it."""
    kwargs = model_kwargs(config.model)
    if kwargs.get("vocab_size", vocab_size) < vocab_size:
        raise ConfigError(
            f"model.vocab_size {kwargs['vocab_size']} is below the dataset's {vocab_size} "
            "token ids; leave it 0 to take the dataset's"
        )
    return build_model(config.model.name, kwargs, vocab_size=vocab_size)


def make_language_model_task(setup: TaskSetup) -> LanguageModelTask:
    """Builds the language-model task of `setup.config` (see the module docstring).

    Raises ConfigError for a dataset without 'inputs' and 'targets' tokens or a vocabulary.
    """
    config, info = setup.config, setup.info
    missing = [k for k in ("inputs", "targets") if k not in info.features]
    if missing or not info.vocab_size:
        raise ConfigError(
            f"task 'language_model' needs a token dataset with 'inputs', 'targets' and a "
            f"vocabulary; {info.name!r} has features {', '.join(info.features)} and "
            f"vocab_size {info.vocab_size}"
        )
    vocab_size = int(info.vocab_size)
    return LanguageModelTask(
        name="language_model",
        model=build_language_model(config, vocab_size),
        optimizer=setup.optimizer(),
        batch_size=int(config.batch_size),
        vocab_size=vocab_size,
        ema_decay=ema_decay(config),
        norms_every=config.log_every_steps if config.get("log_norms") else None,
    )


# --- generation ----------------------------------------------------------------------------


def sample_logits(
    logits: jax.Array, key: jax.Array, temperature: float | jax.Array, top_k: int | None = None
) -> jax.Array:
    """int32 [...]: a token drawn from softmax(logits [..., V] / temperature) over the
    `top_k` largest logits (None: all; ties with the k-th are kept); temperature 0 takes the
    arg-max."""
    if top_k is not None:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    temperature = jnp.asarray(temperature, jnp.float32)
    greedy = jnp.argmax(logits, axis=-1)
    scaled = logits / jnp.where(temperature > 0, temperature, 1.0)
    sampled = jax.random.categorical(key, scaled, axis=-1)
    return jnp.where(temperature > 0, sampled, greedy).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model", "num_tokens", "top_k"))
def _generate(
    model: nn.Module,
    params: PyTree,
    prompt: jax.Array,
    num_tokens: int,
    key: jax.Array,
    temperature: jax.Array,
    top_k: int | None,
) -> jax.Array:
    variables = {"params": params}
    batch, prompt_len = prompt.shape
    state = model.apply(variables, batch, prompt_len + num_tokens, method="init_decode_state")
    logits, state = model.apply(variables, prompt, state, method="decode")
    keys = jax.random.split(key, num_tokens)
    first = sample_logits(logits[:, -1], keys[0], temperature, top_k)

    def step(carry: tuple[jax.Array, PyTree], k: jax.Array) -> tuple[Any, jax.Array]:
        token, state = carry
        logits, state = model.apply(variables, token[:, None], state, method="decode")
        following = sample_logits(logits[:, -1], k, temperature, top_k)
        return (following, state), following

    _, rest = jax.lax.scan(step, (first, state), keys[1:])
    return jnp.concatenate([first[:, None], rest.T], axis=1)


def generate(
    model: nn.Module,
    params: PyTree,
    prompt: jax.Array,
    num_tokens: int,
    key: jax.Array,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> jax.Array:
    """int32 [B, num_tokens]: the tokens sampled after `prompt` (int32 [B, P], P >= 1).

    Pure and jit-compiled (once per model, shapes, num_tokens and top_k; the temperature is
    traced): `init_decode_state` for P + num_tokens positions, one `decode` call on the
    whole prompt, then a `lax.scan` feeding each sampled token back, one per step. Token i
    is drawn with `split(key, num_tokens)[i]` (`sample_logits`). Raises ValueError for
    num_tokens < 1, a negative temperature or top_k outside [1, V].
    """
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
    if isinstance(temperature, int | float) and temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    vocab = getattr(model, "vocab_size", 0)
    if top_k is not None and not (1 <= top_k and (not vocab or top_k <= vocab)):
        raise ValueError(f"top_k must be in [1, {vocab or 'V'}], got {top_k}")
    prompt = jnp.asarray(prompt, jnp.int32)
    return _generate(model, params, prompt, int(num_tokens), key, jnp.float32(temperature), top_k)


def context_length(model: nn.Module) -> int | None:
    """The positions a model can attend to (its `CONTEXT_FIELDS` field), None if unbounded
    (recurrent models)."""
    for field in CONTEXT_FIELDS:
        value = getattr(model, field, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def generate_long(
    model: nn.Module,
    params: PyTree,
    prompt: np.ndarray,
    num_tokens: int,
    key: jax.Array,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> np.ndarray:
    """int32 [B, num_tokens] like `generate`, past the model's `context_length` too.

    A model without a context length (recurrent) generates in one call. Otherwise, with
    context L: while prompt plus new tokens fit in L, one call; beyond, rounds that each
    prefill the latest max(L // 2, 1) tokens and sample until the cache is full (so every
    token sees between L / 2 and L - 1 tokens of context). A prompt longer than L - 1 keeps
    its last L - 1 tokens. The rounds run in Python, each one compiled `generate` call with
    the key folded with the round index.
    """
    prompt = np.asarray(prompt, np.int32)
    limit = context_length(model)
    if limit is None or prompt.shape[1] + num_tokens <= limit:
        return np.asarray(generate(model, params, prompt, num_tokens, key, temperature, top_k))
    if limit < 2:
        raise ValueError(f"a context length of {limit} leaves no room to generate")
    keep = max(limit // 2, 1)
    sequence = prompt[:, -(limit - 1) :]
    produced: list[np.ndarray] = []
    remaining, round_index = num_tokens, 0
    while remaining > 0:
        context = sequence if round_index == 0 else sequence[:, -keep:]
        count = min(remaining, limit - context.shape[1])
        new = np.asarray(
            generate(
                model,
                params,
                context,
                count,
                jax.random.fold_in(key, round_index),
                temperature,
                top_k,
            )
        )
        produced.append(new)
        sequence = np.concatenate([sequence, new], axis=1)
        remaining -= count
        round_index += 1
    return np.concatenate(produced, axis=1)
