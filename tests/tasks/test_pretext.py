"""The pretext tasks: rotations, the jigsaw permutation set and tiles, inpainting masks and
loss region, the Lab conversion on known colours, and each task's train step."""

from __future__ import annotations

import itertools
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxlab.config import ConfigError, default_config
from jaxlab.data.features import Feature
from jaxlab.tasks import pretext
from jaxlab.tasks.base import Optimizer, StepContext, TaskSetup


def test_rotations_match_numpy():
    images = np.arange(2 * 3 * 3).reshape(2, 3, 3, 1).astype(np.float32)
    rotated, labels = pretext.rotations(jnp.asarray(images))
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2, 3, 3])
    for k in range(4):
        np.testing.assert_array_equal(rotated[2 * k : 2 * k + 2], np.rot90(images, k, axes=(1, 2)))


def test_permutation_set_maximizes_hamming_distance_greedily():
    perms = pretext.permutation_set(4, 10, seed=3)
    assert perms.shape == (10, 4) and len({tuple(p) for p in perms}) == 10
    np.testing.assert_array_equal(perms, pretext.permutation_set(4, 10, seed=3))
    assert not np.array_equal(perms, pretext.permutation_set(4, 10, seed=4))
    everything = np.array(list(itertools.permutations(range(4))))
    for k in range(1, 10):
        # each pick is as far as possible (in minimum Hamming distance) from those before it
        best = pretext.hamming(everything, perms[:k]).min(1).max()
        assert pretext.hamming(perms[k : k + 1], perms[:k]).min() == best
    with pytest.raises(ConfigError, match=r"in \[2, 24\]"):
        pretext.permutation_set(4, 25)


def test_tiles_and_their_shuffle():
    images = np.random.default_rng(0).normal(size=(2, 4, 6, 1)).astype(np.float32)
    tiles = np.asarray(pretext.to_tiles(jnp.asarray(images), 2))
    np.testing.assert_array_equal(tiles[:, 1], images[:, :2, 3:])  # row 0, column 1
    np.testing.assert_array_equal(tiles[:, 2], images[:, 2:, :3])
    perms = jnp.asarray([[0, 1, 2, 3], [3, 2, 1, 0]])
    shuffled = pretext.shuffle_tiles(jnp.asarray(tiles), perms, jnp.asarray([1, 0]))
    np.testing.assert_array_equal(shuffled[0], tiles[0, ::-1])
    np.testing.assert_array_equal(shuffled[1], tiles[1])


def test_square_masks_are_squares_of_the_size():
    masks = np.asarray(pretext.square_masks(jax.random.key(0), 50, 8, 8, 3))
    assert (masks.sum((1, 2)) == 9).all()
    ys, xs = np.nonzero(masks[0])
    assert ys.max() - ys.min() == 2 and xs.max() - xs.min() == 2


def test_lab_conversion_on_known_colours():
    rgb = np.array(
        [[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]], np.float32
    )
    # CIE L*a*b* (D65) of the sRGB primaries, white, black and mid grey (Lindbloom's
    # calculator; L of sRGB 0.5 grey = 116 * Y^(1/3) - 16 with Y = ((0.5 + .055)/1.055)^2.4).
    expected = np.array(
        [
            [100, 0, 0],
            [0, 0, 0],
            [53.2408, 80.0925, 67.2032],
            [87.7347, -86.1827, 83.1793],
            [32.2970, 79.1875, -107.8602],
            [53.3889, 0, 0],
        ]
    )
    lab = np.asarray(pretext.rgb_to_lab(rgb))
    np.testing.assert_allclose(lab, expected, atol=0.02)
    colours = np.random.default_rng(1).uniform(size=(100, 3)).astype(np.float32)
    np.testing.assert_allclose(pretext.lab_to_rgb(pretext.rgb_to_lab(colours)), colours, atol=1e-4)


def _task(name: str, channels: int = 1, **options) -> pretext.PretextTask:
    config = default_config()
    config.dataset.name = "gen_digits"  # an offline source: unit images are accepted
    config.model = ml_collections.ConfigDict({"name": "small_cnn", "widths": (4,)})
    config.task = ml_collections.ConfigDict(
        {"name": name, "feature_dim": 4, "hidden_dim": 8, **options}
    )
    info = types.SimpleNamespace(
        name="x", features={"image": Feature((8, 8, channels), "float32", "image")}
    )
    opt = Optimizer(optax.adam(1e-2), lambda s: 1e-2)
    factory = getattr(pretext, f"make_{name}_task")
    return factory(TaskSetup(config, info, 10, 10, None, {"default": opt}))


def _ctx(step: int = 0) -> StepContext:
    keys = jax.random.split(jax.random.key(step), 3)
    names = ("params", "dropout", "pretext")
    return StepContext(step=jnp.int32(step), rngs=dict(zip(names, keys, strict=True)))


@pytest.mark.parametrize(
    "name, channels, options",
    [
        ("rotation", 1, {}),
        ("jigsaw", 1, {"num_permutations": 6}),
        ("inpainting", 1, {}),
        ("colorization", 3, {}),
    ],
)
def test_train_and_eval_steps(name, channels, options):
    task = _task(name, channels, **options)
    images = jax.random.uniform(jax.random.key(1), (4, 8, 8, channels))
    state = jax.jit(task.init_state)({"image": images}, _ctx())
    new_state, metrics = jax.jit(task.train_step)(state, {"image": images}, _ctx())
    assert np.isfinite(float(metrics["loss"].compute()))
    changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), state.params, new_state.params)
    assert all(jax.tree.leaves(changed))
    if name == "rotation":
        # Padding rows never count: the eval loss of [x, y, pad, pad] is that of [x, y].
        eval_step = jax.jit(task.eval_step)
        mask = jnp.asarray([1.0, 1.0, 0.0, 0.0])
        _, full = eval_step(new_state, {"image": images, "mask": mask}, None, _ctx(2))
        half_batch = {"image": images[:2], "mask": jnp.ones(2)}
        _, half = eval_step(new_state, half_batch, None, _ctx(2))
        assert float(full["loss"].compute()) == pytest.approx(float(half["loss"].compute()), 1e-5)
        assert int(full["loss"].count) == int(half["loss"].count) == 8
    assert jax.jit(task.embed)(new_state, images).shape == (4, 4)


def test_inpainting_loss_counts_only_the_hole():
    task = _task("inpainting", mask_size=3)
    images = jax.random.uniform(jax.random.key(2), (2, 8, 8, 1))
    inputs, targets, weights = task.make(images, jnp.ones(2), jax.random.key(3))
    hole = np.asarray(weights) > 0
    assert hole.reshape(2, -1).sum(1).tolist() == [9, 9]
    np.testing.assert_array_equal(np.asarray(inputs)[hole], 0.0)
    np.testing.assert_array_equal(np.asarray(inputs)[~hole], np.asarray(images)[~hole])
    wrong_outside = jnp.where(hole, targets, targets + 5.0)
    loss, _ = jax.jit(task._values)(wrong_outside.reshape(2, -1), targets, weights)
    assert float(loss) == 0.0


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="task.grid must be in"):
        _task("jigsaw", grid=9)
    with pytest.raises(ConfigError, match="needs RGB images"):
        _task("colorization", 1)
    with pytest.raises(ConfigError, match="task.mask_size must be in"):
        _task("inpainting", mask_size=9)
    with pytest.raises(ConfigError, match="task.permutations"):
        _task("rotation", permutations=3)
