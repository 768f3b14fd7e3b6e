"""The interpretability machinery on tiny models, against closed forms and numpy / scipy /
scikit-learn references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.analysis.attacks import PixelSpace
from jaxlab.analysis.interpret import Options, attribution, checks, parse_methods, visualize
from jaxlab.analysis.interpret.measures import reinitialized
from jaxlab.analysis.interpret.probe import Probe, first_layer_filters
from jaxlab.config import ConfigError
from jaxlab.models import get_model

SPACE = PixelSpace((0.3054,), (0.3760,))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.asarray(SPACE.from_pixels(rng.random((4, 8, 8, 1), np.float32)))


@pytest.fixture(scope="module")
def cnn(images) -> Probe:
    model = get_model("small_cnn", num_classes=3, widths=(4, 6), convs_per_block=1)
    init = jax.jit(lambda k, x: model.init(k, x, train=False))
    return Probe(model, init(jax.random.key(0), jnp.asarray(images)), SPACE)


@pytest.fixture(scope="module")
def linear(images) -> Probe:
    model = get_model("linear", num_classes=3)
    init = jax.jit(lambda k, x: model.init(k, x, train=False))
    return Probe(model, init(jax.random.key(1), jnp.asarray(images)), SPACE)


def test_probe_finds_penultimate_features_layers_and_filters(cnn, linear, images):
    head = cnn.variables["params"]["head"]
    feats = cnn.features(images)
    np.testing.assert_allclose(feats @ head["kernel"] + head["bias"], cnn.logits(images), atol=1e-5)
    np.testing.assert_allclose(linear.features(images), images.reshape(4, -1))
    layers = cnn.layers(images)
    assert [(i.path, i.kind) for i in layers] == [
        (("conv0_0",), "conv"),
        (("conv1_0",), "conv"),
        (("head",), "dense"),
    ]
    capture = jax.jit(
        lambda v, x: cnn.model.apply(v, x, train=False, capture_intermediates=True)[1]
    )
    state = capture(cnn.variables, images)
    np.testing.assert_allclose(
        cnn.layer_output(images, 1), state["intermediates"]["conv1_0"]["__call__"][0], atol=1e-6
    )
    kernel = cnn.variables["params"]["conv0_0"]["kernel"]
    np.testing.assert_array_equal(first_layer_filters(cnn, images), np.moveaxis(kernel, -1, 0))
    w = linear.variables["params"]["head"]["kernel"]  # [64, 3]
    np.testing.assert_array_equal(first_layer_filters(linear, images)[2], w[:, 2].reshape(8, 8, 1))


def test_gradients_of_a_linear_model_are_its_weights(linear, images):
    w = np.asarray(linear.variables["params"]["head"]["kernel"])
    targets = jnp.asarray([0, 1, 2, 1])
    grad, ig, gxi = jax.jit(
        lambda x: (
            attribution.class_gradient(linear.logits_fn, x, targets),
            attribution.integrated_gradients(
                linear.logits_fn, x, targets, jnp.asarray(SPACE.lo), steps=3
            ),
            attribution.gradient_times_input(linear.logits_fn, x, targets, jnp.asarray(SPACE.lo)),
        )
    )(jnp.asarray(images))
    expected = w[:, np.asarray(targets)].T.reshape(images.shape)
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    np.testing.assert_allclose(attribution.saliency_map(grad, "abs"), np.abs(expected)[..., 0])
    np.testing.assert_allclose(
        attribution.saliency_map(grad, "negative"), np.maximum(-expected, 0)[..., 0]
    )
    # integrated gradients of a linear model: exactly (x - x') * w
    np.testing.assert_allclose(ig, (images - SPACE.lo) * expected, atol=1e-5)
    # gradient x input from the black image: the pixel-space gradient times the pixels
    pixel_grad = expected / np.asarray(SPACE.std)
    np.testing.assert_allclose(gxi, pixel_grad * SPACE.to_pixels(images), atol=1e-5)


def test_smoothgrad_without_noise_is_the_gradient_and_ig_is_complete(cnn, images):
    x, t = jnp.asarray(images), jnp.asarray([0, 1, 2, 0])
    baseline = jnp.asarray(SPACE.lo)

    @jax.jit
    def run(x, t):
        grad = attribution.class_gradient(cnn.logits_fn, x, t)
        key = jax.random.key(0)
        smooth = attribution.smoothgrad(cnn.logits_fn, x, t, key, sigma=0.0, samples=3)
        ig = attribution.integrated_gradients(cnn.logits_fn, x, t, baseline, steps=32)
        return grad, smooth, ig

    grad, smooth, ig = run(x, t)
    np.testing.assert_allclose(smooth, grad, atol=1e-6)
    gain = cnn.logits(x) - cnn.logits(jnp.broadcast_to(baseline, x.shape))
    gain = np.asarray(gain)[np.arange(4), np.asarray(t)]
    # completeness up to the midpoint rule's error on a ReLU network (32 points)
    np.testing.assert_allclose(np.asarray(ig).reshape(4, -1).sum(1), gain, atol=0.03)


def test_occlusion_matches_a_numpy_loop(linear, images):
    windows = attribution.occlusion_windows(8, 8, 3, 2)
    assert windows.shape == (9, 8, 8) and windows.sum() == 9 * 9
    targets = np.asarray([2, 0, 1, 1])
    fill = float(SPACE.lo[0])
    heat = jax.jit(lambda x, t: attribution.occlusion_map(linear.logits_fn, x, t, fill, windows))(
        jnp.asarray(images), jnp.asarray(targets)
    )
    w = np.asarray(linear.variables["params"]["head"]["kernel"], np.float64)
    b = np.asarray(linear.variables["params"]["head"]["bias"], np.float64)

    def prob(x, t):
        s = x.reshape(-1) @ w + b
        e = np.exp(s - s.max())
        return e[t] / e.sum()

    expected = np.zeros((4, 8, 8))
    for n in range(4):
        total, count = np.zeros((8, 8)), np.zeros((8, 8))
        for m in windows:
            occluded = np.where(m[..., None] > 0, fill, images[n])
            total += m * (prob(images[n], targets[n]) - prob(occluded, targets[n]))
            count += m
        expected[n] = total / np.maximum(count, 1)
    np.testing.assert_allclose(heat, expected, atol=1e-5)
    with pytest.raises(ValueError, match="patch must be in 1..8"):
        attribution.occlusion_windows(8, 8, 9, 1)


def test_max_activating_patches_are_the_top_activations_with_3x3_fields(cnn, images):
    layer_fn = cnn.layer_output_fn(0)  # the first 3x3 'SAME' conv
    tops = visualize.max_activating_patches(layer_fn, images, channel=1, k=5)
    acts = np.asarray(cnn.layer_output(images, 0))[..., 1]
    np.testing.assert_allclose(
        [t.value for t in tops], np.sort(acts.reshape(-1))[::-1][:5], rtol=1e-6
    )
    for t in tops:
        r0, r1, c0, c1 = t.box
        i, j = t.position
        assert acts[t.image, i, j] == pytest.approx(t.value)
        assert (
            r0 == max(i - 1, 0)
            and r1 == min(i + 2, 8)
            and c0 == max(j - 1, 0)
            and c1 == min(j + 2, 8)
        )


def test_class_visualization_raises_its_class_score_within_range(cnn, images):
    classes = jnp.asarray([0, 2])
    x = jax.jit(
        lambda k: visualize.class_visualization(
            cnn.logits_fn, classes, images.shape[1:], SPACE, k, steps=12, blur_every=4
        )
    )(jax.random.key(0))
    gray = jnp.broadcast_to(jnp.asarray(SPACE.from_pixels(np.float32(0.5))), x.shape)
    gain = (cnn.logits(x) - cnn.logits(gray))[jnp.arange(2), classes]
    assert bool(jnp.all(gain > 0))
    assert float(x.min()) >= SPACE.lo[0] - 1e-6 and float(x.max()) <= SPACE.hi[0] + 1e-6


def test_gaussian_blur_matches_scipy():
    from scipy.ndimage import gaussian_filter

    x = np.random.default_rng(1).random((2, 7, 9, 1)).astype(np.float32)
    ours = jax.jit(lambda z: visualize.gaussian_blur(z, 1.0))(jnp.asarray(x))
    ref = gaussian_filter(x, sigma=(0, 1.0, 1.0, 0), mode="nearest", truncate=2.0)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_deletion_masks_and_check_on_a_known_classifier():
    rng = np.random.default_rng(0)
    ink = rng.random((50, 8, 8)) > 0.3
    ink[:, 0, 0] = True
    scores = rng.random((50, 8, 8))
    top = checks.top_ink_masks(scores, ink, 5)
    assert (top.reshape(50, -1).sum(1) == np.minimum(5, ink.reshape(50, -1).sum(1))).all()
    assert not (top & ~ink).any()
    kept = np.where(ink & ~top, scores, -1).reshape(50, -1).max(1)
    assert (np.where(top, scores, 2).reshape(50, -1).min(1) >= kept).all()
    rand = checks.random_ink_masks(rng, ink, 5)
    assert (rand.sum((1, 2)) == 5).all() and not (rand & ~ink).any()
    # a classifier that is right exactly while pixel (0, 0) is inked
    images = ink[..., None].astype(np.float32)
    labels = np.ones(50, int)
    predict = lambda x: (x[:, 0, 0, 0] > 0).astype(int)  # noqa: E731
    maps = {"oracle": np.where(np.arange(64).reshape(8, 8) == 0, 1.0, 0.0)[None].repeat(50, 0)}
    out = checks.deletion_check(predict, images, labels, maps, ink, np.zeros(1), 1, random_draws=20)
    assert out["clean"] == 1.0 and out["oracle"] == 0.0
    assert 0.0 < 1.0 - out["random"] < 0.2 and out["ratio_oracle"] > 5


def test_rank_correlation_is_spearman():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(2)
    a = rng.random((3, 4, 4))
    b = a + rng.normal(scale=0.3, size=a.shape)
    b[1] = np.round(b[1], 1)  # ties
    ours = checks.rank_correlation(a, b)
    ref = [spearmanr(a[i].ravel(), b[i].ravel()).statistic for i in range(3)]
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_nearest_neighbours_match_brute_force():
    rng = np.random.default_rng(3)
    q, m = rng.normal(size=(5, 4)), rng.normal(size=(20, 4))
    l2 = np.argsort(((q[:, None] - m[None]) ** 2).sum(-1), axis=1)[:, :3]
    np.testing.assert_array_equal(checks.nearest_neighbours(q, m, 3, "l2"), l2)
    cos = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (
        m / np.linalg.norm(m, axis=1, keepdims=True)
    ).T
    np.testing.assert_array_equal(
        checks.nearest_neighbours(q, m, 3, "cosine"), np.argsort(-cos, 1)[:, :3]
    )
    with pytest.raises(ConfigError, match="valid choices: l2, cosine"):
        checks.nearest_neighbours(q, m, 3, "l1")
    xy = checks.embed_2d(m, "pca")
    assert xy.shape == (20, 2) and xy[:, 0].var() >= xy[:, 1].var()


def test_reinitialized_model_has_new_weights_of_the_same_shapes(cnn, images):
    fresh = reinitialized(cnn, images[:1], seed=5)
    shapes = jax.tree.map(np.shape, cnn.variables)
    assert jax.tree.map(np.shape, fresh.variables) == shapes
    k0, k1 = (
        cnn.variables["params"]["conv0_0"]["kernel"],
        fresh.variables["params"]["conv0_0"]["kernel"],
    )
    assert not np.allclose(k0, k1)


def test_methods_and_options_are_validated():
    assert parse_methods("all")[0] == "filters"
    assert parse_methods("sanity, saliency") == ["saliency", "sanity"]
    with pytest.raises(ConfigError, match="unknown method salency; valid choices: all, filters"):
        parse_methods("salency")
    with pytest.raises(
        ConfigError, match="unknown saliency_mode 'pos'; valid choices: abs, negative"
    ):
        Options(saliency_mode="pos").validate()
    with pytest.raises(ConfigError, match="--epsilons must lie in"):
        Options(epsilons=(0.1, 2.0)).validate()
    with pytest.raises(ConfigError, match="--patch must be >= 1"):
        Options(patch=0).validate()


def test_script_rejects_bad_input_with_one_line(tmp_path, capsys):
    from scripts.interpret import main

    for argv, message in (
        (["--method=salency"], "unknown method salency"),
        (["--epsilons=0.1,x"], "--epsilons must be a comma-separated list"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["interpret", f"--workdir={tmp_path}", *argv])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err
    assert not (tmp_path / "interpret").exists()


@pytest.mark.slow
def test_script_draws_figures_and_numbers_of_a_trained_workdir(tiny_config, tmp_path, capsys):
    import json

    from jaxlab.train import train_and_evaluate
    from scripts.interpret import main

    tiny_config.num_train_steps = 2
    tiny_config.eval_every_steps = tiny_config.checkpoint_every_steps = 0
    workdir = str(tmp_path / "run")
    train_and_evaluate(tiny_config, workdir)
    with pytest.raises(SystemExit) as e:  # checked before any figure is written
        main(["interpret", f"--workdir={workdir}", "--method=saliency,patches", "--layer=9"])
    assert e.value.code == 2 and "--layer must be in 0..3" in capsys.readouterr().err
    assert not (tmp_path / "run" / "interpret").exists()
    results = main(
        ["interpret", f"--workdir={workdir}", "--num_eval=24", "--num_images=3",
         "--method=saliency,filters,integrated_gradients", "--ig_steps=4"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "[3/3] integrated_gradients" in out and "wrote 3 figures" in out
    names = sorted(p.name for p in (tmp_path / "run" / "interpret").glob("*.png"))
    assert names == ["filters.png", "integrated_gradients.png", "saliency.png"]
    saved = json.loads((tmp_path / "run" / "interpret" / "results.json").read_text())
    assert saved["integrated_gradients"] == pytest.approx(results["integrated_gradients"])
    assert saved["filters"]["num_filters"] == 8  # the tiny config's first conv width
    assert any(
        p.name.startswith("events.out.tfevents") for p in (tmp_path / "run" / "interpret").iterdir()
    )
