"""Permutation language modelling (XLNet's objective) on token windows.

Each step draws, per sequence, a uniformly random factorization order of its T positions
(from the step's 'order' rng stream: `sample_rank` gives each position's place in the order)
and trains the model (config.model; 'xlnet') to predict the last K = max(1, round(
predict_fraction * T)) tokens of the order, each from the tokens before it in the order
(partial prediction, as in the paper: the first tokens of an order have too little context
to be worth predicting). The loss is the cross entropy at those K positions.

Metrics (train and eval), token-weighted over the predicted positions (real eval examples
only): `loss` (nats) and `accuracy`. `config.task.predict_fraction` in (0, 1], default 1/6
(XLNet's K = T/6 at its cut 6).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab import losses
from jaxlab.config import ConfigError, check_positive
from jaxlab.metrics import average
from jaxlab.optim import ema_decay
from jaxlab.tasks.base import Batch, Metrics, PyTree, StepContext, TaskSetup
from jaxlab.tasks.masked_lm import build_lm_model
from jaxlab.tasks.supervised import ApplyFn, SupervisedTask


def sample_rank(rng: jax.Array, batch: int, length: int) -> jax.Array:
    """int32 [batch, length]: for each row an independent uniform random permutation, given
    as the place of every position in the factorization order (the ranks of uniform noise)."""
    noise = jax.random.uniform(rng, (batch, length))
    return jnp.argsort(jnp.argsort(noise, axis=-1), axis=-1).astype(jnp.int32)


def make_permutation_lm_task(setup: TaskSetup) -> SupervisedTask:
    """The permutation_lm task of `setup.config` (see the module docstring).

    Raises ConfigError for a dataset without 'inputs' and a vocab_size, or a
    predict_fraction outside (0, 1].
    """
    config, info = setup.config, setup.info
    vocab_size = getattr(info, "vocab_size", None)
    if not vocab_size or "inputs" not in info.features:
        raise ConfigError(
            f"task 'permutation_lm' needs a token dataset with 'inputs' and a vocab_size; "
            f"{info.name!r} has features {', '.join(info.features)}"
        )
    fraction = config.task.get("predict_fraction", 1 / 6)
    check_positive("task.predict_fraction", fraction)
    if fraction > 1:
        raise ConfigError(f"task.predict_fraction must be in (0, 1], got {fraction!r}")
    model = build_lm_model(config, int(vocab_size))

    def forward(
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, Metrics]:
        """(the loss over the predicted positions, the metrics) under a fresh order."""
        tokens = batch["inputs"]
        b, t = tokens.shape
        rank = sample_rank(ctx.rng("order"), b, t)
        k = max(1, round(float(fraction) * t))
        target = rank >= t - k
        if "mask" in batch:
            target = target & losses.broadcast_mask(batch["mask"], target.shape)
        rngs = {"dropout": ctx.rng("dropout")} if train else None
        logits = apply_fn({"params": params, **model_state}, tokens, rank, train=train, rngs=rngs)
        ce = losses.softmax_cross_entropy(logits, tokens)
        metrics = {
            "loss": average(ce, target),
            "accuracy": average(losses.accuracy(logits, tokens), target),
        }
        return losses.masked_mean(ce, target), metrics

    def loss_fn(
        apply_fn: ApplyFn,
        params: PyTree,
        model_state: PyTree,
        batch: Batch,
        ctx: StepContext,
        train: bool,
    ) -> tuple[jax.Array, tuple[PyTree, Metrics]]:
        loss, metrics = forward(apply_fn, params, model_state, batch, ctx, train)
        return loss, (model_state, metrics)

    def eval_fn(
        apply_fn: ApplyFn, params: PyTree, model_state: PyTree, batch: Batch, ctx: StepContext
    ) -> Metrics:
        return forward(apply_fn, params, model_state, batch, ctx, False)[1]

    return SupervisedTask(
        name="permutation_lm",
        model=model,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        optimizer=setup.optimizer(),
        input_key="inputs",
        train_metric_names=("loss", "accuracy"),
        eval_metric_names=("loss", "accuracy"),
        rng_streams=("params", "dropout", "order"),
        ema_decay=ema_decay(config),
        norms_every=config.log_every_steps if config.get("log_norms") else None,
    )
