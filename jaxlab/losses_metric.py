"""Metric-learning losses: the triplet loss on L2-normalized embeddings, random triplets,
and the three ways of mining triplets inside a batch.

Conventions. Embeddings are L2-normalized (`l2_normalize`), so every distance lies in
[0, 2]. Distances are Euclidean, not squared (Hermans, Beyer and Leibe 2017, "In Defense of
the Triplet Loss": the squared distance makes the hinge collapse-prone and the margin
scale-dependent). The loss of a triplet (anchor a, positive p of a's class, negative n of
another class) is

    l(a, p, n) = max(d(a, p) - d(a, n) + margin, 0).

A margin must lie in (0, 2) (`check_margin`): with unit vectors d(a, n) <= 2 and
d(a, p) >= 0, so a margin >= 2 can never be met (every triplet stays active for ever), and a
margin <= 0 is met by the collapsed embedding (all points equal, every distance 0). A
collapsed embedding sits exactly at the margin: every triplet's loss is `margin` and the
mean pairwise distance is 0, which is what the collapse monitors (`mean_pairwise_distance`
and the active fractions) show.

Mining inside a batch of B embeddings with labels (and a `valid` mask for padding rows):

- `batch_all_triplet_loss`: every valid triplet (a != p, same class; n of another class);
  the loss is the mean over the *active* triplets (those with a positive loss; Hermans et
  al.'s "BA+"), since averaging over all of them lets the many easy ones dilute the signal.
- `batch_hard_triplet_loss`: per anchor, the farthest positive and the nearest negative
  (Hermans et al.); the mean over the anchors that have both.
- `semi_hard_triplet_loss`: per (anchor, positive) pair, the nearest negative that is
  farther than the positive (Schroff, Kalenichenko and Philbin 2015, FaceNet); when none
  is, the farthest negative (the choice of TensorFlow Addons' implementation, so the pair
  still gives a bounded, easy gradient); the mean over the pairs.

Each returns `(loss, active_fraction)`. Written here because neither optax nor flax has
them; each is checked against a direct numpy loop in tests/tasks/test_metric_learning.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab.config import ConfigError

DEFAULT_MARGIN = 0.2
MAX_UNIT_DISTANCE = 2.0
MINING = ("batch_all", "batch_hard", "semi_hard")


def check_margin(margin: float, key: str = "task.margin") -> float:
    """`margin` as a float; ConfigError unless 0 < margin < 2 (the reason in the message)."""
    if isinstance(margin, bool) or not isinstance(margin, int | float):
        raise ConfigError(f"{key} must be a number in (0, 2), got {margin!r}")
    if not 0.0 < margin < MAX_UNIT_DISTANCE:
        raise ConfigError(
            f"{key} must be in (0, 2) for L2-normalized embeddings, got {margin!r}: unit "
            "vectors are at most 2 apart, so a margin >= 2 can never be met, and a margin "
            "<= 0 is met by the collapsed embedding"
        )
    return float(margin)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """Rows of `x` [..., D] divided by their L2 norms (a zero row stays zero)."""
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True))
    return x / jnp.maximum(norm, eps)


def safe_norm_from_squares(squares: jax.Array) -> jax.Array:
    """sqrt(squares), with a zero (not NaN) gradient where `squares` is 0."""
    positive = squares > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squares, 1.0)), 0.0)


def pairwise_distances(x: jax.Array) -> jax.Array:
    """[B, B] Euclidean distances between the rows of `x` [B, D] (exactly 0 on the diagonal,
    differentiable everywhere)."""
    sq = jnp.sum(jnp.square(x), axis=-1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
    d2 = jnp.maximum(d2, 0.0) * (1.0 - jnp.eye(x.shape[0], dtype=x.dtype))
    return safe_norm_from_squares(d2)


def triplet_loss(
    anchor: jax.Array, positive: jax.Array, negative: jax.Array, margin: float
) -> jax.Array:
    """[N] hinge losses max(|a - p| - |a - n| + margin, 0) of N triplets of [N, D] rows."""
    d_ap = safe_norm_from_squares(jnp.sum(jnp.square(anchor - positive), axis=-1))
    d_an = safe_norm_from_squares(jnp.sum(jnp.square(anchor - negative), axis=-1))
    return jax.nn.relu(d_ap - d_an + margin)


def _masks(labels: jax.Array, valid: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """(positive pair mask, negative pair mask) [B, B]: same class and a != p; other class;
    both rows valid."""
    b = labels.shape[0]
    valid = jnp.ones((b,), bool) if valid is None else valid.astype(bool)
    both = valid[:, None] & valid[None, :]
    same = labels[:, None] == labels[None, :]
    return same & ~jnp.eye(b, dtype=bool) & both, ~same & both


def _safe_mean(total: jax.Array, count: jax.Array) -> jax.Array:
    return total / jnp.maximum(count, 1)


def batch_all_triplet_loss(
    embeddings: jax.Array, labels: jax.Array, margin: float, valid: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(mean loss over the active valid triplets, active / valid triplets); see the module
    docstring. `embeddings` [B, D], `labels` [B], `valid` bool [B] (None: all)."""
    d = pairwise_distances(embeddings)
    pos, neg = _masks(labels, valid)
    # [a, p, n]: d(a, p) - d(a, n) + margin over the valid triplets.
    hinge = jax.nn.relu(d[:, :, None] - d[:, None, :] + margin)
    triplets = pos[:, :, None] & neg[:, None, :]
    hinge = jnp.where(triplets, hinge, 0.0)
    active = (hinge > 0) & triplets
    num_active = jnp.sum(active)
    loss = _safe_mean(jnp.sum(hinge), num_active)
    return loss, _safe_mean(num_active, jnp.sum(triplets)).astype(jnp.float32)


def batch_hard_triplet_loss(
    embeddings: jax.Array, labels: jax.Array, margin: float, valid: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(mean over the anchors with a positive and a negative of max(max_p d(a, p) -
    min_n d(a, n) + margin, 0), the fraction of those anchors whose loss is positive)."""
    d = pairwise_distances(embeddings)
    pos, neg = _masks(labels, valid)
    hardest_pos = jnp.max(jnp.where(pos, d, -jnp.inf), axis=1)
    hardest_neg = jnp.min(jnp.where(neg, d, jnp.inf), axis=1)
    usable = jnp.any(pos, axis=1) & jnp.any(neg, axis=1)
    hinge = jnp.where(usable, jax.nn.relu(hardest_pos - hardest_neg + margin), 0.0)
    count = jnp.sum(usable)
    active = _safe_mean(jnp.sum((hinge > 0) & usable), count).astype(jnp.float32)
    return _safe_mean(jnp.sum(hinge), count), active


def semi_hard_triplet_loss(
    embeddings: jax.Array, labels: jax.Array, margin: float, valid: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(mean over the (anchor, positive) pairs that have a negative of the hinge with the
    pair's semi-hard negative, the fraction of those pairs whose loss is positive). The
    semi-hard negative is the nearest one farther than the positive, else the farthest."""
    d = pairwise_distances(embeddings)
    pos, neg = _masks(labels, valid)
    d_ap = d[:, :, None]  # [a, p, 1]
    d_an = d[:, None, :]  # [a, 1, n]
    neg3 = jnp.broadcast_to(neg[:, None, :], pos.shape + (pos.shape[0],))
    outside = neg3 & (d_an > d_ap)
    nearest_outside = jnp.min(jnp.where(outside, d_an, jnp.inf), axis=2)
    farthest = jnp.max(jnp.where(neg3, d_an, -jnp.inf), axis=2)
    chosen = jnp.where(jnp.any(outside, axis=2), nearest_outside, farthest)
    usable = pos & jnp.any(neg, axis=1)[:, None]
    hinge = jnp.where(usable, jax.nn.relu(d - jnp.where(usable, chosen, 0.0) + margin), 0.0)
    count = jnp.sum(usable)
    active = _safe_mean(jnp.sum((hinge > 0) & usable), count).astype(jnp.float32)
    return _safe_mean(jnp.sum(hinge), count), active


def mined_triplet_loss(
    mining: str,
    embeddings: jax.Array,
    labels: jax.Array,
    margin: float,
    valid: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """The loss of `mining` ('batch_all' | 'batch_hard' | 'semi_hard'); ValueError otherwise."""
    fns = {
        "batch_all": batch_all_triplet_loss,
        "batch_hard": batch_hard_triplet_loss,
        "semi_hard": semi_hard_triplet_loss,
    }
    if mining not in fns:
        raise ValueError(f"unknown mining {mining!r}; valid choices: {', '.join(MINING)}")
    return fns[mining](embeddings, labels, margin, valid)


def sample_random_triplets(
    key: jax.Array, labels: jax.Array, valid: jax.Array | None = None
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One random triplet per anchor row of a batch.

    Returns `(positive, negative, has_positive, has_negative)`, each [B]: `positive[i]` is a
    uniformly drawn row j != i of anchor i's class, `negative[i]` a uniformly drawn row of
    another class (valid rows only). Where anchor i has no such row (`has_* [i]` False)
    the index is meaningless: the caller uses an augmented copy of the anchor as its
    positive, and drops anchors without a negative. Sampled with the Gumbel-max trick
    (argmax of uniform noise over the candidates), so it is one jit-able op.
    """
    pos, neg = _masks(labels, valid)
    kp, kn = jax.random.split(key)
    b = labels.shape[0]

    def draw(k: jax.Array, candidates: jax.Array) -> jax.Array:
        noise = jax.random.uniform(k, (b, b))
        return jnp.argmax(jnp.where(candidates, noise, -1.0), axis=1)

    return draw(kp, pos), draw(kn, neg), jnp.any(pos, axis=1), jnp.any(neg, axis=1)


def mean_pairwise_distance(embeddings: jax.Array, valid: jax.Array | None = None) -> jax.Array:
    """The mean distance over the pairs i != j of valid rows (0 for a collapsed embedding)."""
    b = embeddings.shape[0]
    valid = jnp.ones((b,), bool) if valid is None else valid.astype(bool)
    pairs = valid[:, None] & valid[None, :] & ~jnp.eye(b, dtype=bool)
    return _safe_mean(
        jnp.sum(jnp.where(pairs, pairwise_distances(embeddings), 0.0)), jnp.sum(pairs)
    )
