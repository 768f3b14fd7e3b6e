"""Contrastive losses: NT-Xent (SimCLR), InfoNCE against a queue of keys (MoCo) and
InfoNCE with in-batch negatives (CPC), plus the uniformity score used to watch for collapse.

All losses take embeddings, L2-normalize them where the method does (SimCLR, MoCo compare
cosine similarities; CPC scores raw dot products `z^T W_k c`), and return one loss per
anchor so that callers can mask and average them with `jaxlab.metrics.average`.

    nt_xent:    z = normalize([z1; z2]) (2N rows), s_ij = z_i . z_j / tau, s_ii = -inf,
                l_i = -log softmax_j(s_ij)[pos(i)],  pos(i) = i + N mod 2N
    info_nce:   s_0 = q . k+ / tau, s_j = q . n_j / tau (the queue), l = -log softmax(s)[0]
    in-batch:   s_ij = p_i . t_j (all targets of the batch are candidates), l_i = -log
                softmax_j(s_ij)[i], candidates with valid_j = 0 excluded

optax has no contrastive losses; each is a few lines of `jax.nn.log_softmax`, checked in
tests/tasks/test_simclr.py, test_moco.py and test_cpc.py against direct numpy loops.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """x / ||x|| along the last axis (rows of norm below eps are divided by eps)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def nt_xent(z1: jax.Array, z2: jax.Array, temperature: float) -> tuple[jax.Array, jax.Array]:
    """Per-anchor NT-Xent over the 2N embeddings of two views (z1[i], z2[i] a positive
    pair): float32 [2N] losses (anchors z1 then z2) and bool [2N], whether the positive
    has the highest similarity (the contrastive accuracy). Self-similarities are masked."""
    z = l2_normalize(jnp.concatenate([z1, z2]).astype(jnp.float32))
    n2 = z.shape[0]
    n = n2 // 2
    sim = z @ z.T / temperature
    sim = jnp.where(jnp.eye(n2, dtype=bool), -jnp.inf, sim)
    positive = (jnp.arange(n2) + n) % n2
    log_prob = jax.nn.log_softmax(sim, axis=-1)
    loss = -jnp.take_along_axis(log_prob, positive[:, None], axis=-1)[:, 0]
    return loss, jnp.argmax(sim, axis=-1) == positive


def info_nce(
    query: jax.Array, key: jax.Array, negatives: jax.Array, temperature: float
) -> tuple[jax.Array, jax.Array]:
    """Per-query InfoNCE of MoCo: query [N, D] against its key [N, D] (the positive) and the
    shared negatives [K, D] (the queue); all normalized. Returns float32 [N] losses and bool
    [N], whether the key outscores every negative."""
    q = l2_normalize(query.astype(jnp.float32))
    k = l2_normalize(key.astype(jnp.float32))
    n = l2_normalize(negatives.astype(jnp.float32))
    logits = jnp.concatenate([jnp.sum(q * k, -1, keepdims=True), q @ n.T], axis=-1) / temperature
    loss = -jax.nn.log_softmax(logits, axis=-1)[:, 0]
    return loss, jnp.argmax(logits, axis=-1) == 0


def in_batch_info_nce(
    predictions: jax.Array, targets: jax.Array, valid: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """InfoNCE with in-batch negatives: prediction i [M, D] scores every target j [M, D] by
    the dot product; its positive is target i, the other valid targets its negatives.
    `valid` bool [M] drops targets (and their rows) that do not exist. Returns float32 [M]
    losses (0 where not valid) and bool [M], whether target i scored highest."""
    p, t = predictions.astype(jnp.float32), targets.astype(jnp.float32)
    logits = p @ t.T
    if valid is not None:
        logits = jnp.where(valid[None, :], logits, -jnp.inf)
    log_prob = jax.nn.log_softmax(logits, axis=-1)
    loss = -jnp.diagonal(log_prob)
    correct = jnp.argmax(logits, axis=-1) == jnp.arange(logits.shape[0])
    if valid is not None:
        loss, correct = jnp.where(valid, loss, 0.0), correct & valid
    return loss, correct


def uniformity(z: jax.Array, weights: jax.Array | None = None, t: float = 2.0) -> jax.Array:
    """Wang & Isola's uniformity of normalized embeddings, log E_{i != j} exp(-t ||z_i -
    z_j||^2) over the pairs of rows with weight 1 (a scalar; -4 for t = 2 is the value of
    points spread on a high-dimensional sphere, 0 that of a collapsed embedding)."""
    z = l2_normalize(z.astype(jnp.float32))
    n = z.shape[0]
    w = jnp.ones((n,), jnp.float32) if weights is None else weights.astype(jnp.float32)
    sq = jnp.maximum(2.0 - 2.0 * z @ z.T, 0.0)
    pair = w[:, None] * w[None, :] * (1.0 - jnp.eye(n))
    total = jnp.sum(pair * jnp.exp(-t * sq))
    return jnp.log(jnp.maximum(total, 1e-30) / jnp.maximum(jnp.sum(pair), 1.0))
