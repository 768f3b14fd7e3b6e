"""Tests of jaxlab.tasks.mixing: mixup, cutmix and the mixed cross entropy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import losses
from jaxlab.tasks import mixing

B, H, W, K = 6, 8, 10, 4


def _one_hot_images(labels):
    """Images whose every pixel is the one-hot vector of the label (channels = classes): the
    spatial mean of a mixed image is then exactly the label mixture it should carry."""
    return jnp.broadcast_to(jax.nn.one_hot(labels, K)[:, None, None, :], (len(labels), H, W, K))


LABELS = jnp.array([0, 1, 2, 3, 1, 2])

# Jitted once per module (eager op-by-op dispatch is slow on CPU).
_mix = jax.jit(mixing.mix_batch, static_argnums=(2, 3))
_boxes = jax.jit(jax.vmap(mixing.cutmix_box, in_axes=(0, None, None, 0)), static_argnums=(1, 2))


def test_lam_one_is_the_identity():
    images = jax.random.normal(jax.random.key(0), (B, H, W, 3))
    perm = jnp.arange(B)[::-1]
    np.testing.assert_array_equal(mixing.mixup(images, perm, 1.0), images)
    masks, lams = _boxes(jax.random.split(jax.random.key(1), 4), H, W, jnp.ones(4))
    assert not masks.any() and (lams == 1.0).all()
    logits = jax.random.normal(jax.random.key(2), (B, K))
    np.testing.assert_allclose(
        mixing.mixed_cross_entropy(logits, LABELS, perm, jnp.float32(1.0), 0.1),
        losses.softmax_cross_entropy(logits, LABELS, 0.1),
    )


def test_cutmix_box_area_is_one_minus_lam():
    keys = jax.random.split(jax.random.key(0), 32)
    lams_in = jax.random.uniform(jax.random.key(1), (32,))
    masks, lams = map(np.asarray, _boxes(keys, H, W, lams_in))
    for mask, lam, lam_in in zip(masks, lams, np.asarray(lams_in), strict=True):
        np.testing.assert_allclose(mask.sum(), (1 - lam) * H * W, atol=1e-4)
        if mask.any():  # a solid rectangle
            rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
            assert mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
        # Clipping at the borders only removes pixels: never more than the drawn sides.
        sides = np.floor(H * np.sqrt(1 - lam_in)) * np.floor(W * np.sqrt(1 - lam_in))
        assert mask.sum() <= sides and lam >= lam_in - 1e-6
    assert (masks.sum((1, 2)) > 0).sum() > 16


def test_cutmix_box_inside_matches_the_drawn_lam():
    # A box well inside the image: its area is the floors of the drawn sides.
    keys = jax.random.split(jax.random.key(0), 40)
    masks, lams = map(np.asarray, _boxes(keys, 40, 40, jnp.full((40,), 0.75)))
    inside = masks.sum((1, 2)) == 20 * 20
    assert inside.any()
    np.testing.assert_allclose(lams[inside], 0.75, atol=1e-6)


@pytest.mark.parametrize("alphas", [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_labels_are_mixed_the_same_way_as_images(alphas):
    images = _one_hot_images(LABELS)
    for seed in range(6):
        mixed = _mix(jax.random.key(seed), images, *alphas)
        assert mixed.images.shape == images.shape
        assert sorted(np.asarray(mixed.perm)) == list(range(B))
        target = mixed.lam * jax.nn.one_hot(LABELS, K) + (1 - mixed.lam) * jax.nn.one_hot(
            LABELS[mixed.perm], K
        )
        np.testing.assert_allclose(mixed.images.mean((1, 2)), target, atol=1e-5)


def test_both_alphas_pick_mixup_or_cutmix_per_batch():
    images = _one_hot_images(LABELS)
    kinds = set()
    for seed in range(16):
        mixed = np.asarray(_mix(jax.random.key(seed), images, 0.4, 1.0).images)
        # cutmix pastes whole pixels (one-hot stays one-hot); mixup blends every pixel.
        kinds.add(bool(np.isin(mixed, [0.0, 1.0]).all()))
    assert kinds == {True, False}


def test_mix_batch_is_deterministic_and_jits():
    images = _one_hot_images(LABELS) * 0.5  # the shapes of the tests above: no recompile
    a, b = _mix(jax.random.key(3), images, 0.4, 1.0), _mix(jax.random.key(3), images, 0.4, 1.0)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.lam == b.lam
    with pytest.raises(ValueError, match="alpha"):
        mixing.mix_batch(jax.random.key(0), images, 0.0, 0.0)


def test_dominant_labels():
    perm = jnp.array([1, 0, 3, 2, 5, 4])
    np.testing.assert_array_equal(mixing.dominant_labels(LABELS, perm, 0.7), LABELS)
    np.testing.assert_array_equal(mixing.dominant_labels(LABELS, perm, 0.3), LABELS[perm])
