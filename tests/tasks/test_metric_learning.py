"""Metric learning: the triplet losses and miners against numpy loops, the random-triplet
sampler, P x K batches, the NCA split and kNN against scikit-learn, Recall@k, the task's
steps (collapse monitors, projector head) and the embedding pictures and projector files."""

from __future__ import annotations

import itertools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from jaxlab import data
from jaxlab import losses_metric as lm
from jaxlab.analysis.embedding_plots import export_image_projector, scatter_2d, sprite_image
from jaxlab.analysis.metric_baselines import nca_split
from jaxlab.config import ConfigError
from jaxlab.data.pk_sampler import nca_digits_examples, pk_batch_rows
from jaxlab.tasks.base import StepContext
from jaxlab.tasks.metric_learning import recall_at_k, strong_augment
from jaxlab.tasks.representation import knn_predict

MARGIN = 0.3


# --- losses against numpy loops -----------------------------------------------------------


def _unit(rng, n, d):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _numpy_mining(z, labels, valid, margin):
    """(batch_all, batch_hard, semi_hard) losses and active fractions by direct loops."""
    n = len(z)
    d = np.linalg.norm(z[:, None] - z[None], axis=-1)
    ok = [i for i in range(n) if valid[i]]
    trip = [
        (a, p, q)
        for a, p, q in itertools.product(ok, ok, ok)
        if a != p and labels[a] == labels[p] and labels[q] != labels[a]
    ]
    h = [max(d[a, p] - d[a, q] + margin, 0) for a, p, q in trip]
    active = [x for x in h if x > 0]
    batch_all = (sum(active) / max(len(active), 1), len(active) / len(trip))
    hard = []
    for a in ok:
        pos = [d[a, p] for p in ok if p != a and labels[p] == labels[a]]
        neg = [d[a, q] for q in ok if labels[q] != labels[a]]
        if pos and neg:
            hard.append(max(max(pos) - min(neg) + margin, 0))
    batch_hard = (np.mean(hard), np.mean([x > 0 for x in hard]))
    semi = []
    for a, p in itertools.product(ok, ok):
        if a == p or labels[a] != labels[p]:
            continue
        neg = [d[a, q] for q in ok if labels[q] != labels[a]]
        farther = [x for x in neg if x > d[a, p]]
        chosen = min(farther) if farther else max(neg)
        semi.append(max(d[a, p] - chosen + margin, 0))
    semi_hard = (np.mean(semi), np.mean([x > 0 for x in semi]))
    return {"batch_all": batch_all, "batch_hard": batch_hard, "semi_hard": semi_hard}


def test_miners_match_numpy_loops():
    rng = np.random.default_rng(0)
    z = _unit(rng, 9, 3)
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 3, 0])
    valid = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1], bool)
    expected = _numpy_mining(z, labels, valid, MARGIN)
    fn = jax.jit(lm.mined_triplet_loss, static_argnums=0)
    for mining, (loss, active) in expected.items():
        ours = fn(mining, jnp.asarray(z, jnp.float32), jnp.asarray(labels), MARGIN, valid)
        np.testing.assert_allclose(ours, (loss, active), rtol=1e-5, atol=1e-6, err_msg=mining)


def test_triplet_loss_and_distances_match_numpy():
    rng = np.random.default_rng(1)
    a, p, n = (_unit(rng, 5, 4) for _ in range(3))
    expected = np.maximum(np.linalg.norm(a - p, axis=1) - np.linalg.norm(a - n, axis=1) + MARGIN, 0)
    np.testing.assert_allclose(jax.jit(lm.triplet_loss)(a, p, n, MARGIN), expected, rtol=1e-5)
    d = np.linalg.norm(a[:, None] - a[None], axis=-1)
    np.testing.assert_allclose(jax.jit(lm.pairwise_distances)(a), d, atol=1e-5)
    # Equal rows: a zero distance with a finite (zero) gradient, not NaN.
    grad = jax.jit(jax.grad(lambda x: jnp.sum(lm.pairwise_distances(x))))(jnp.ones((3, 2)))
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("margin", [0.0, -0.1, 2.0, 2.5, "0.2", True])
def test_margin_outside_zero_two_is_a_config_error_with_the_reason(margin):
    with pytest.raises(ConfigError, match=r"\(0, 2\)"):
        lm.check_margin(margin)
    assert lm.check_margin(0.2) == 0.2


def test_random_triplets_never_pair_an_example_with_itself():
    labels = jnp.asarray([0, 0, 1, 1, 1, 2, 3, 3])
    sample = jax.jit(jax.vmap(lm.sample_random_triplets, in_axes=(0, None)))
    draws = sample(jax.random.split(jax.random.key(0), 40), labels)
    draws = [tuple(x[s] for x in draws) for s in range(40)]
    pos = np.stack([np.asarray(d[0]) for d in draws])
    neg = np.stack([np.asarray(d[1]) for d in draws])
    has_pos = np.asarray(draws[0][2])
    lab = np.asarray(labels)
    rows = np.arange(len(lab))
    np.testing.assert_array_equal(has_pos, [1, 1, 1, 1, 1, 0, 1, 1])
    assert np.all(pos[:, has_pos] != rows[has_pos])  # never itself
    assert np.all(lab[pos[:, has_pos]] == lab[has_pos])  # same class
    assert np.all(lab[neg] != lab)  # another class
    # Uniform among the candidates: anchor 2 draws both rows 3 and 4 as positives.
    assert set(pos[:, 2]) == {3, 4} and len(set(neg[:, 0])) == 6


# --- data: P x K batches, the NCA split -----------------------------------------------------


def test_pk_batches_are_p_classes_of_k_and_a_function_of_seed_and_step():
    labels = np.repeat(np.arange(6), [5, 5, 5, 5, 5, 1])
    rows = pk_batch_rows(labels, 3, 4, seed=7, step=11)
    classes = labels[rows].reshape(3, 4)
    assert np.all(classes == classes[:, :1]) and len(set(classes[:, 0])) == 3
    for c in classes[:, 0]:
        if c != 5:  # enough examples: drawn without replacement
            assert len(set(rows[labels[rows] == c])) == 4
    np.testing.assert_array_equal(rows, pk_batch_rows(labels, 3, 4, seed=7, step=11))
    assert not np.array_equal(rows, pk_batch_rows(labels, 3, 4, seed=7, step=12))


def _nca_config(**dataset) -> ml_collections.ConfigDict:
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "digits_triplet.py")
    spec = importlib.util.spec_from_file_location("digits_triplet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("smoke")
    for key, value in dataset.items():
        config.dataset[key] = value
    return config


def test_pk_train_iterator_resumes_exactly_and_interleaves_processes():
    config = _nca_config()
    info = data.get_dataset_info(config)
    stream = data.create_train_iterator(config, info)
    first = [next(stream) for _ in range(4)]
    resumed = data.create_train_iterator(config, info, state={"step": 2})
    np.testing.assert_array_equal(next(resumed)["image"], first[2]["image"])
    labels = first[0]["label"].reshape(10, 2)
    assert np.all(labels == labels[:, :1]) and len(set(labels[:, 0])) == 10
    parts = [
        next(data.create_train_iterator(config, info, process_index=p, process_count=2))
        for p in range(2)
    ]
    np.testing.assert_array_equal(parts[1]["label"], first[0]["label"][1::2])
    for bad in ({"pk_classes": 11}, {"pk_classes": 3}, {"pk_classes": 1}):
        with pytest.raises(ConfigError, match="pk_classes"):
            data.validate_data_config(_nca_config(**bad))


def test_nca_digits_is_the_nca_example_split_and_knn_matches_scikit_learn():
    x_train, y_train, x_test, y_test = nca_split()
    train, test = nca_digits_examples("train"), nca_digits_examples("test")
    np.testing.assert_array_equal(train["image"].reshape(-1, 64) * 16, x_train)
    np.testing.assert_array_equal(test["label"], y_test)
    # The knn evaluator's rule (k 3, 'l2') gives scikit-learn's KNeighborsClassifier(3)
    # predictions; on the raw pixels that is the example's 0.987.
    ours = knn_predict(x_train, y_train, x_test, k=3, metric="l2", num_classes=10)
    sk = KNeighborsClassifier(n_neighbors=3).fit(x_train, y_train).predict(x_test)
    np.testing.assert_array_equal(ours, sk)
    assert round(float(np.mean(ours == y_test)), 3) == 0.987


def test_recall_at_k_matches_brute_force_neighbours():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 4, 40)
    ks = (1, 2, 5)
    ours = recall_at_k(x, y, ks)
    _, idx = NearestNeighbors(n_neighbors=6).fit(x).kneighbors(x)
    idx = idx[:, 1:]  # the first neighbour is the query itself
    for k in ks:
        assert ours[k] == pytest.approx(np.mean([np.any(y[idx[i, :k]] == y[i]) for i in range(40)]))


def test_strong_augment_translates_by_at_most_the_shift_without_jitter():
    images = jnp.asarray(np.random.default_rng(3).random((6, 5, 5, 1)), jnp.float32)
    augment = jax.jit(strong_augment, static_argnums=2)
    out = np.asarray(augment(jax.random.key(0), images, 1, 0.0))
    padded = np.pad(np.asarray(images), ((0, 0), (1, 1), (1, 1), (0, 0)))
    for i in range(6):
        crops = [padded[i, dy : dy + 5, dx : dx + 5] for dy in range(3) for dx in range(3)]
        assert any(np.allclose(out[i], c) for c in crops)
    jittered = augment(jax.random.key(0), images, 1, 0.3)
    assert not np.allclose(jittered, out)


# --- the task -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def experiments():
    """(task, compiled train step) of the smoke config: batch-hard mining with a projector
    head, and random triplets with augmented positives."""
    import optax

    from jaxlab.tasks import Optimizer, TaskSetup, get_task

    adam = Optimizer(tx=optax.adam(1e-2), schedule=optax.constant_schedule(1e-2))

    out = {}
    for sampling, head in (("batch_hard", (6, 5)), ("random", ())):
        config = _nca_config()
        config.task.sampling, config.task.projector_dims = sampling, head
        config.task.embedding_dim = 4
        config.task.augment_positives = sampling == "random"
        setup = TaskSetup(
            config=config,
            info=data.get_dataset_info(config),
            num_train_steps=12,
            steps_per_epoch=44,
            axis_name=None,
            optimizers={"default": adam},
        )
        task = get_task(setup)
        out[sampling] = (task, jax.jit(task.train_step))
    return out


def _ctx(step=0):
    names = ("params", "dropout", "triplets", "augment")
    keys = jax.random.split(jax.random.key(step), len(names))
    return StepContext(step=jnp.asarray(step), rngs=dict(zip(names, keys, strict=True)))


def _batch(n=8):
    ex = nca_digits_examples("train")
    rows = np.array([0, 1, 2, 3, 4, 5, 6, 7][:n])
    return {"image": jnp.asarray(ex["image"][rows]), "label": jnp.asarray(ex["label"][rows])}


def test_collapsed_embedding_sits_at_the_margin_with_every_triplet_active(experiments):
    for task, step in experiments.values():
        state = task.init_state(_batch(), _ctx())
        collapsed = state.replace(params=jax.tree.map(jnp.zeros_like, state.params))
        _, metrics = step(collapsed, _batch(), _ctx(1))
        assert float(metrics["loss"].compute()) == pytest.approx(task.margin, abs=1e-6)
        assert float(metrics["mean_distance"].compute()) == 0.0
        assert float(metrics["active_fraction"].compute()) == 1.0


def test_train_steps_lower_the_loss_and_the_head_keeps_the_pre_head_embedding(experiments):
    for sampling, (task, step) in experiments.items():
        batch = _batch()
        state = task.init_state(batch, _ctx())
        losses = []
        for _ in range(12):  # the same triplets and views every step
            state, metrics = step(state, batch, _ctx(0))
            losses.append(float(metrics["loss"].compute()))
        assert losses[-1] < losses[0], (sampling, losses)
        emb = task.embed(state, batch["image"])
        assert emb.shape == (8, 4), sampling  # the embedding, never the head's 5 outputs
        if not task.has_head:
            np.testing.assert_allclose(jnp.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_random_sampling_embeds_anchor_positive_negative_in_one_pass(experiments):
    task, _ = experiments["random"]
    batch = _batch()
    state = task.init_state(batch, _ctx())
    calls = []
    apply = task.model.apply

    def counting_apply(variables, x, **kwargs):
        calls.append(x.shape[0])
        return apply(variables, x, **kwargs)

    loss = jax.jit(
        lambda st, b, c: task._random_loss(counting_apply, st.params, st.model_state, b, c)
    )
    loss(state, batch, _ctx())
    assert calls == [3 * 8]  # traced once: one forward pass of anchors, positives, negatives


def test_bad_task_options_are_config_errors():
    from jaxlab.train.setup import build_experiment

    for key, value, match in (
        ("sampling", "hardest", "task.sampling"),
        ("margin", 2.0, r"\(0, 2\)"),
        ("embedding_dim", 0, "embedding_dim"),
    ):
        config = _nca_config()
        config.task[key] = value
        with pytest.raises(ConfigError, match=match):
            build_experiment(config)


# --- pictures and projector files -----------------------------------------------------------


def test_scatter_png_and_projector_files_with_sprite(tmp_path):
    rng = np.random.default_rng(4)
    features, labels = rng.normal(size=(10, 3)), np.arange(10) % 3
    images = rng.random((10, 4, 4, 1))
    points = scatter_2d(features, labels, str(tmp_path / "pca.png"), "pca")
    assert points.shape == (10, 2) and Image.open(tmp_path / "pca.png").size[0] > 100
    grid = sprite_image(images)
    assert grid.shape == (16, 16, 1)  # 10 images on a 4 x 4 grid
    np.testing.assert_array_equal(grid[4:8, 8:12, 0], np.round(images[6, ..., 0] * 255))
    paths = export_image_projector(str(tmp_path / "proj"), features, labels, images)
    assert np.loadtxt(paths["vectors"]).shape == (10, 3)
    assert open(paths["metadata"]).read().split() == [str(v) for v in labels]
    text = open(paths["config"]).read()
    assert 'image_path: "sprite.png"' in text and "single_image_dim: 4" in text
