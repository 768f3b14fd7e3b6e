"""Sample quality: the Fréchet distance against independent computations, the class entropy
and confidence against numpy, the classifier's penultimate features, and the evaluator end to
end on a tiny classifier checkpoint and the pixel_baseline task."""

from __future__ import annotations

import importlib.util
import os

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxlab.analysis.pixel_baseline import to_levels
from jaxlab.analysis.sample_quality import (
    FeatureClassifier,
    class_entropy,
    feature_statistics,
    features_and_logits,
    frechet_distance,
    mean_confidence,
    quality_scores,
    second_real_split,
)
from jaxlab.config import ConfigError
from jaxlab.data.gen_digits import gen_digits_examples
from jaxlab.train import train_and_evaluate
from jaxlab.train.reporting import METRICS_FILE, read_metrics
from jaxlab.train.setup import build_experiment
from scripts import sample_quality as sample_quality_script
from tests.conftest import ROOT


def _config(name: str, arg: str = "smoke"):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_frechet_distance_matches_scipy_the_diagonal_closed_form_and_mean_shifts():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    cov1, cov2 = _spd(rng, 5), _spd(rng, 5)
    expected = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(cov1 + cov2)
        - 2 * np.trace(scipy.linalg.sqrtm(cov1 @ cov2)).real
    )
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-8)
    # Diagonal covariances: sum (mu1 - mu2)^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = rng.uniform(0.1, 2, 5), rng.uniform(0.1, 2, 5)
    diagonal = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(diagonal)
    # Identical statistics: 0; a mean shift d with equal covariances: |d|^2.
    assert frechet_distance(mu1, cov1, mu1, cov1) == pytest.approx(0.0, abs=1e-9)
    for scale in (0.5, 3.0):
        d = scale * np.ones(5)
        assert frechet_distance(mu1, cov1, mu1 + d, cov1) == pytest.approx(d @ d, rel=1e-6)


def test_entropy_and_confidence_match_numpy():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=50)
    counts = np.array([np.sum(probs.argmax(1) == k) for k in range(4)])
    p = counts[counts > 0] / 50
    assert class_entropy(probs) == pytest.approx(-np.sum(p * np.log(p)))
    assert mean_confidence(probs) == pytest.approx(np.mean([max(row) for row in probs]))
    assert class_entropy(np.eye(4)) == pytest.approx(np.log(4))  # balanced: ln K
    assert class_entropy(np.tile([[0.1, 0.9]], (3, 1))) == 0.0  # one class
    mu, cov = feature_statistics(rng.normal(size=(20, 3)))
    assert mu.shape == (3,) and cov.shape == (3, 3)


def test_second_real_split():
    assert second_real_split("gen_digits", "validation", ("train", "validation", "test")) == "test"
    assert second_real_split("gen_digits", "test", ("train", "validation", "test")) == (
        "validation"
    )
    assert second_real_split("mnist", "test", ("train", "test")) == "train"


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small_cnn (widths 4, 8) trained 2 steps on gen_digits: configs/gen_digits_classifier
    .py's smoke variant, so this also smoke-tests the config."""
    workdir = str(tmp_path_factory.mktemp("classifier"))
    config = _config("gen_digits_classifier")
    config.checkpoint_every_steps = 0  # saved at the end only
    metrics = train_and_evaluate(config, workdir)
    assert np.isfinite(metrics["loss"])
    return workdir


@pytest.fixture(scope="module")
def classifier(classifier_dir: str) -> FeatureClassifier:
    return FeatureClassifier(classifier_dir)


def test_features_are_the_input_of_the_head(classifier):
    images = jnp.asarray(gen_digits_examples("validation")["image"][:6])
    features, logits = features_and_logits(classifier.model, classifier.variables, images)
    head = classifier.variables["params"]["head"]
    assert features.shape == (6, 8)  # the last block's 8 channels, pooled
    np.testing.assert_allclose(features @ head["kernel"] + head["bias"], logits, atol=1e-5)


def test_real_images_score_lower_than_noise(classifier):
    real = gen_digits_examples("validation")["image"]
    reference = feature_statistics(classifier.stats(real)[0])
    test_images = gen_digits_examples("test")["image"][:200]
    noise = np.random.default_rng(0).uniform(size=(200, 8, 8, 1)).astype(np.float32)
    real_scores = quality_scores(classifier, test_images, reference)
    noise_scores = quality_scores(classifier, noise, reference)
    assert real_scores["fd"] < noise_scores["fd"] / 3, (real_scores, noise_scores)


@pytest.fixture(scope="module")
def baseline_run(classifier_dir, tmp_path_factory) -> tuple[str, dict[str, float]]:
    """(workdir, final metrics) of configs/gen_digits_pixel_baseline.py as documented (5
    steps of 200: the train split once) with the sample_quality evaluator."""
    config = _config("gen_digits_pixel_baseline", "")
    config.evaluators = {"sample_quality": {"classifier": classifier_dir, "num": 150}}
    config.checkpoint_every_steps = 0
    workdir = str(tmp_path_factory.mktemp("baseline"))
    return workdir, train_and_evaluate(config, workdir, async_checkpoints=False)


def _logged_scores(workdir: str) -> dict[str, float]:
    rows = read_metrics(os.path.join(workdir, METRICS_FILE))
    return next(
        {k.split("/")[1]: v for k, v in r.items() if k.startswith("sample_quality/")}
        for r in rows
        if "sample_quality/fd" in r
    )


def test_evaluator_end_to_end_on_the_pixel_baseline_task(baseline_run):
    """The validation NLL is numpy's (110.46 nats; issue 10: 110.5); the task's samples are
    the baseline, so `fd` is close to `fd_baseline` (other draws of the same model), and
    held-out real images are closer to the eval split still."""
    workdir, metrics = baseline_run
    train = to_levels(gen_digits_examples("train")["image"], 17).reshape(1000, 64)
    valid = to_levels(gen_digits_examples("validation")["image"], 17).reshape(350, 64)
    probs = np.stack([(train == k).sum(0) for k in range(17)], -1) + 0.5
    probs = probs / probs.sum(-1, keepdims=True)
    expected = -np.log(probs[np.arange(64), valid]).sum(1).mean()
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)
    assert round(metrics["loss"], 1) == 110.5
    assert metrics["bits_per_dim"] == pytest.approx(expected / 64 / np.log(2), rel=1e-5)
    scores = _logged_scores(workdir)
    assert set(scores) == {
        f"{m}{s}" for m in ("fd", "entropy", "confidence") for s in ("", "_real", "_baseline")
    }
    assert scores["fd"] == pytest.approx(scores["fd_baseline"], rel=0.35), scores
    assert scores["fd_real"] < scores["fd_baseline"], scores
    assert 0 <= scores["entropy"] <= np.log(10) + 1e-6 and 0 < scores["confidence"] <= 1


def _run_script(capsys, *args: str) -> tuple[int, str, str]:
    try:
        sample_quality_script.main(["sample_quality", *args])
        status = 0
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def test_script_prints_the_evaluators_scores_and_refuses_bad_input(
    baseline_run, classifier_dir, capsys
):
    workdir = baseline_run[0]
    status, out, _ = _run_script(
        capsys, f"--workdir={workdir}", f"--classifier={classifier_dir}", "--num=150"
    )
    assert status == 0
    scores = _logged_scores(workdir)
    rows = {line.split()[0]: line.split()[1:] for line in out.strip().splitlines()[1:]}
    assert set(rows) == {"samples", "real", "baseline"}
    for row, suffix in (("samples", ""), ("real", "_real"), ("baseline", "_baseline")):
        fd, entropy, confidence = map(float, rows[row])
        assert fd == pytest.approx(scores["fd" + suffix], abs=2e-3)
        assert entropy == pytest.approx(scores["entropy" + suffix], abs=1e-4)
        assert confidence == pytest.approx(scores["confidence" + suffix], abs=1e-4)
    for args, message in (
        ((f"--workdir={workdir}",), "--classifier is required"),
        ((f"--workdir={classifier_dir}", f"--classifier={classifier_dir}"), "not a generative"),
    ):
        status, out, err = _run_script(capsys, *args)
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_missing_classifier_is_a_config_error_naming_the_option(
    tmp_path, classifier_dir, baseline_run
):
    config = _config("gen_digits_pixel_baseline")
    exp = build_experiment(config)
    from jaxlab.analysis.sample_quality import SampleQualityEvaluator

    for options, match in (
        ({}, "sample_quality.classifier is required"),
        ({"classifier": str(tmp_path)}, "sample_quality.classifier: .* is not a jaxlab workdir"),
        ({"classifier": classifier_dir, "nums": 3}, "unknown option.*nums"),
        ({"classifier": baseline_run[0]}, "'pixel_baseline' run; the features need"),
    ):
        with pytest.raises(ConfigError, match=match):
            SampleQualityEvaluator(exp.task, exp.setup, options)
