"""Masked language modelling (BERT's pre-training objective) on token windows.

Each step corrupts the batch's `inputs` [B, T] with `mask_tokens` (an rng draw from the
step's 'mask' stream, so a run is reproducible and resumes exactly): in every row,
round(mask_rate * n) of the n eligible positions are chosen uniformly (at least one when
n > 0; eligible: not one of `task.special_ids`, e.g. PAD, BOS, EOS for text datasets); of the
chosen positions 80% become [MASK], 10% a token drawn uniformly from the non-special ids
(which may be the original token), 10% keep their token. The model sees the corrupted
tokens and the loss is the cross entropy of the original tokens at the chosen positions
only.

Metrics (train and eval), token-weighted over the chosen positions (and over real eval
examples only): `loss` (the masked-token cross entropy in nats) and `accuracy` (arg-max
equals the original token). Eval masks with the eval step's rng, so the positions differ
from one evaluation to the next but the estimate is unbiased.

The model (config.model; 'bert' by default) is built with `vocab_size` from the dataset and
must reserve the [MASK] id as its `mask_id` property (`Bert`: vocab_size, one past the
dataset's ids). `config.task` keys: `mask_rate` (in (0, 1), default 0.15), `mask_token_frac`
and `random_token_frac` (>= 0, sum <= 1; defaults 0.8 and 0.1), `special_ids` (a tuple of
ids never chosen nor drawn; default ()).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxlab import losses
from jaxlab.config import ConfigError, check_positive
from jaxlab.metrics import average
from jaxlab.models import build_model
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.supervised import ApplyFn, SupervisedTask


class MaskedTokens(NamedTuple):
    """The corrupted tokens [B, T] and the bool [B, T] positions chosen for the loss."""

    inputs: jax.Array
    chosen: jax.Array


def mask_tokens(
    rng: jax.Array,
    tokens: jax.Array,
    *,
    mask_id: int,
    vocab_size: int,
    special_ids: Sequence[int] = (),
    mask_rate: float = 0.15,
    mask_token_frac: float = 0.8,
    random_token_frac: float = 0.1,
) -> MaskedTokens:
    """BERT's corruption of `tokens` int32 [B, T] (see the module docstring).

    Per row, exactly k = max(1, round(mask_rate * n)) of the n eligible positions are chosen
    (k = 0 when n = 0), the top k of uniform scores. A chosen position becomes `mask_id`
    with probability `mask_token_frac`, a uniform draw from the non-special ids of [0,
    vocab_size) with probability `random_token_frac`, and stays as it is otherwise.
    """
    k_choose, k_action, k_random = jax.random.split(rng, 3)
    special = jnp.asarray(list(special_ids), tokens.dtype)
    eligible = (
        ~jnp.any(tokens[..., None] == special, axis=-1)
        if len(special_ids)
        else (jnp.ones(tokens.shape, bool))
    )
    scores = jnp.where(eligible, jax.random.uniform(k_choose, tokens.shape), -1.0)
    rank = jnp.argsort(jnp.argsort(-scores, axis=-1), axis=-1)  # 0 = highest score
    n = jnp.sum(eligible, axis=-1, keepdims=True)
    k = jnp.where(n > 0, jnp.maximum(1, jnp.round(mask_rate * n)), 0)
    chosen = eligible & (rank < k)
    u = jax.random.uniform(k_action, tokens.shape)
    allowed = np.setdiff1d(np.arange(vocab_size), np.asarray(list(special_ids), int))
    random_tokens = jnp.asarray(allowed, tokens.dtype)[
        jax.random.randint(k_random, tokens.shape, 0, len(allowed))
    ]
    replaced = jnp.where(
        u < mask_token_frac,
        jnp.asarray(mask_id, tokens.dtype),
        jnp.where(u < mask_token_frac + random_token_frac, random_tokens, tokens),
    )
    return MaskedTokens(jnp.where(chosen, replaced, tokens), chosen)


def build_lm_model(config: ml_collections.ConfigDict, vocab_size: int) -> nn.Module:
    """The model of `config.model` with `vocab_size` from the dataset: a `model.vocab_size`
    of 0 (the default that `finish_config` writes into the section) means "the dataset's";
    ConfigError for a positive one that does not match it."""
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    given = kwargs.pop("vocab_size", 0)
    if given not in (0, None, vocab_size):
        raise ConfigError(
            f"model.vocab_size {given} differs from the dataset's vocab_size {vocab_size}; "
            "leave it 0 (the dataset's)"
        )
    return build_model(config.model.name, kwargs, vocab_size=vocab_size)


def _check_config(task: ml_collections.ConfigDict) -> dict:
    rate = task.get("mask_rate", 0.15)
    check_positive("task.mask_rate", rate)
    if not 0 < rate < 1:
        raise ConfigError(f"task.mask_rate must be in (0, 1), got {rate!r}")
    fracs = {k: task.get(k, d) for k, d in (("mask_token_frac", 0.8), ("random_token_frac", 0.1))}
    for key, value in fracs.items():
        check_positive(f"task.{key}", value, allow_zero=True)
    if sum(fracs.values()) > 1:
        raise ConfigError(
            f"task.mask_token_frac + task.random_token_frac must be <= 1, got {fracs}"
        )
    special = tuple(task.get("special_ids", ()))
    for i in special:
        check_positive("task.special_ids entries", i, allow_zero=True, integer=True)
    return {
        "mask_rate": float(rate),
        "special_ids": special,
        **{k: float(v) for k, v in fracs.items()},
    }


def make_masked_lm_task(setup: TaskSetup) -> SupervisedTask:
    """The masked_lm task of `setup.config` (see the module docstring).

    Raises ConfigError for a dataset without a vocabulary or 'inputs', a model without a
    `mask_id`, and bad `config.task` values.
    """
    config, info = setup.config, setup.info
    vocab_size = getattr(info, "vocab_size", None)
    if not vocab_size or "inputs" not in info.features:
        raise ConfigError(
            f"task 'masked_lm' needs a token dataset with 'inputs' and a vocab_size; "
            f"{info.name!r} has features {', '.join(info.features)}"
        )
    options = _check_config(config.task)
    model = build_lm_model(config, int(vocab_size))
    if not hasattr(model, "mask_id"):
        raise ConfigError(
            f"task 'masked_lm' needs a model that reserves a [MASK] id (e.g. 'bert'); "
            f"{config.model.name!r} has no mask_id"
        )

    def corrupt(batch: Batch, ctx: StepContext) -> tuple[jax.Array, jax.Array, jax.Array]:
        tokens = batch["inputs"]
        inputs, chosen = mask_tokens(
            ctx.rng("mask"), tokens, mask_id=model.mask_id, vocab_size=int(vocab_size), **options
        )
        if "mask" in batch:
            chosen = chosen & losses.broadcast_mask(batch["mask"], chosen.shape)
        return tokens, inputs, chosen

    def metrics_of(logits: jax.Array, tokens: jax.Array, chosen: jax.Array) -> Metrics:
        return {
            "loss": average(losses.softmax_cross_entropy(logits, tokens), chosen),
            "accuracy": average(losses.accuracy(logits, tokens), chosen),
        }

    def loss_fn(
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        tokens, inputs, chosen = corrupt(batch, ctx)
        rngs = {"dropout": ctx.rng("dropout")} if train else None
        logits = apply_fn({"params": params, **model_state}, inputs, train=train, rngs=rngs)
        loss = losses.masked_mean(losses.softmax_cross_entropy(logits, tokens), chosen)
        return loss, (model_state, metrics_of(logits, tokens, chosen))

    def eval_fn(
        apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        tokens, inputs, chosen = corrupt(batch, ctx)
        logits = apply_fn({"params": params, **model_state}, inputs, train=False)
        return metrics_of(logits, tokens, chosen)

    return SupervisedTask(
        name="masked_lm",
        model=model,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        optimizer=setup.optimizer(),
        input_key="inputs",
        train_metric_names=("loss", "accuracy"),
        eval_metric_names=("loss", "accuracy"),
        rng_streams=("params", "dropout", "mask"),
        ema_decay=ema_decay(config),
        norms_every=config.log_every_steps if config.get("log_norms") else None,
    )
