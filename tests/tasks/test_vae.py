"""The vae and autoencoder tasks: the analytic KL against Monte Carlo, the likelihoods
against scipy, the IWAE bound tightening with k, masked evaluation, the KL warm-up, the
binarizations and the denoising input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats

from jaxlab.config import ConfigError, default_config
from jaxlab.data.gen_digits import gen_digits_examples
from jaxlab.tasks.base import StepContext
from jaxlab.tasks.latent_images import binarize
from jaxlab.tasks.vae import (
    decoder_mean,
    gaussian_kl,
    gaussian_log_density,
    kl_weight,
    log_likelihood,
)
from jaxlab.train.setup import build_experiment
from jaxlab.train.state import init_context


def _config(task: dict, model: dict) -> ml_collections.ConfigDict:
    c = default_config()
    c.dataset.name, c.dataset.eval_split, c.dataset.shuffle_buffer = "gen_digits", "validation", 100
    c.task = ml_collections.ConfigDict(task)
    c.model = ml_collections.ConfigDict(model)
    c.batch_size, c.num_train_steps, c.best_metric, c.best_mode = 8, 2, "loss", "min"
    return c


def _ctx(step: int = 0, seed: int = 0, names=("params", "dropout", "binarize", "latent", "noise")):
    keys = jax.random.split(jax.random.key(seed), len(names))
    return StepContext(step=jnp.asarray(step, jnp.int32), rngs=dict(zip(names, keys, strict=True)))


@pytest.fixture(scope="module")
def vae():
    """A random 2-latent categorical VAE on gen_digits, its state and the validation images."""
    config = _config(
        {"name": "vae", "likelihood": "categorical"},
        {"name": "vae", "sizes": (16,), "latent_dim": 2},
    )
    task = build_experiment(config).task
    images = jnp.asarray(gen_digits_examples("validation")["image"])
    state = task.init_state({"image": images[:1]}, init_context(task, 0))
    return task, state, images


def test_analytic_kl_equals_monte_carlo_within_three_standard_errors():
    @jax.jit
    def kl_and_estimate(key):
        key_m, key_v, key_z = jax.random.split(key, 3)
        mean = jax.random.normal(key_m, (3, 4))
        logvar = 0.5 * jax.random.normal(key_v, (3, 4))
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key_z, (20_000, 3, 4))
        log_ratio = gaussian_log_density(z, mean, logvar) - gaussian_log_density(
            z, 0.0, jnp.zeros_like(z)
        )
        se = log_ratio.std(0) / np.sqrt(z.shape[0])
        return gaussian_kl(mean, logvar), log_ratio.mean(0), se

    kl, estimate, se = kl_and_estimate(jax.random.key(0))
    assert np.all(np.abs(kl - estimate) < 3 * se), (kl, estimate, se)


def test_log_likelihoods_equal_scipy_and_numpy_references():
    rng = np.random.default_rng(0)
    out = rng.normal(size=(2, 3, 3, 1, 17)).astype(np.float32)
    binary = (rng.random((2, 3, 3, 1)) > 0.5).astype(np.float32)
    p = 1 / (1 + np.exp(-out[..., 0]))
    np.testing.assert_allclose(
        log_likelihood(jnp.asarray(out[..., :1]), binary, "bernoulli"),
        stats.bernoulli.logpmf(binary, p).reshape(2, -1).sum(1),
        rtol=1e-5,
    )
    x = rng.random((2, 3, 3, 1)).astype(np.float32)
    ref = stats.norm.logpdf(x, out[..., 0], np.exp(out[..., 1])).reshape(2, -1).sum(1)
    np.testing.assert_allclose(
        log_likelihood(jnp.asarray(out[..., :2]), x, "gaussian"), ref, rtol=1e-5
    )
    levels = rng.integers(0, 17, size=(2, 3, 3, 1))
    log_probs = out - np.log(np.exp(out).sum(-1, keepdims=True))
    ref = np.take_along_axis(log_probs, levels[..., None], -1).reshape(2, -1).sum(1)
    got = log_likelihood(jnp.asarray(out), jnp.asarray(levels / 16, jnp.float32), "categorical")
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    np.testing.assert_allclose(
        decoder_mean(jnp.asarray(out), "categorical"),
        (np.exp(log_probs) * np.arange(17) / 16).sum(-1),
        rtol=1e-5,
    )


def test_iwae_bound_tightens_with_k_and_k1_is_the_elbo_in_expectation(vae):
    task, state, images = vae
    variables = task.eval_variables(state)

    @jax.jit
    def bounds(key):
        nll = {k: task.iwae_nll(variables, images, key, k, 25).mean() for k in (1, 10, 100)}
        # k = 1 against recon + analytic KL (own draws), 4 draws per image.
        keys = jax.random.split(key, 4)
        draws = jax.vmap(lambda k: task.iwae_nll(variables, images, k, 1, 1))(keys)
        elbo = jax.vmap(lambda s: sum(task.terms(variables, images, _ctx(seed=s))))(jnp.arange(4))
        return nll, (draws - elbo).ravel()

    nll, diff = bounds(jax.random.key(7))
    assert nll[1] > nll[10] > nll[100], nll
    assert abs(float(diff.mean())) < 3 * float(diff.std()) / np.sqrt(diff.size), diff.mean()


def test_padded_eval_rows_do_not_count(vae):
    task, state, images = vae
    padded = jnp.concatenate([images[:5], jnp.ones((3, 8, 8, 1))])  # garbage in the padding
    batch = {"image": padded, "mask": jnp.asarray([1, 1, 1, 1, 1, 0, 0, 0], jnp.float32)}
    iwae_step = task.iwae_eval_step((3,), 2)

    @jax.jit
    def run(ctx):
        metrics = task.eval_step(state, batch, None, ctx)[1]
        metrics.update(iwae_step(state, batch, None, ctx)[1])
        variables = task.eval_variables(state)
        recon, kl = task.terms(variables, padded, ctx)
        key = jax.random.fold_in(ctx.rng("latent"), 3)
        return metrics, recon + kl, kl, task.iwae_nll(variables, padded, key, 3, 2)

    metrics, nats, kl, nll = run(_ctx())
    # The masked averages equal the plain means of the real rows' per-row values.
    assert metrics["loss"].count == 5 and metrics["nll_k3"].count == 5
    np.testing.assert_allclose(metrics["loss"].compute(), nats[:5].mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["kl"].compute(), kl[:5].mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["nll_k3"].compute(), nll[:5].mean(), rtol=1e-5)
    bpd = float(nats[:5].mean()) / (64 * np.log(2))
    assert float(metrics["bits_per_dim"].compute()) == pytest.approx(bpd, rel=1e-5)


def test_kl_warmup_and_binarizations():
    assert float(kl_weight(jnp.asarray(0), 0.5, 100)) == 0.0
    assert float(kl_weight(jnp.asarray(50), 0.5, 100)) == pytest.approx(0.25)
    assert float(kl_weight(jnp.asarray(500), 0.5, 100)) == 0.5
    assert float(kl_weight(jnp.asarray(0), 0.5, 0)) == 0.5
    x = jnp.full((20_000,), 0.3).at[0].set(0.6)
    np.testing.assert_array_equal(binarize(x, "threshold")[:2], [1.0, 0.0])
    sample = binarize(x[1:], "dynamic", jax.random.key(0))
    assert set(np.unique(sample)) == {0.0, 1.0} and float(sample.mean()) == pytest.approx(
        0.3, abs=0.02
    )
    assert binarize(x, "") is x


def test_denoising_autoencoder_corrupts_only_the_input():
    config = _config(
        {"name": "autoencoder", "loss": "mse", "denoise_std": 0.5},
        {"name": "mlp_autoencoder", "sizes": (8,), "code_dim": 2},
    )
    task = build_experiment(config).task
    images = jnp.asarray(gen_digits_examples("validation")["image"][:4])
    inputs, target = task.model_input(images, _ctx(), train=True)
    np.testing.assert_array_equal(target, images)
    noise = np.asarray(inputs - images)
    assert noise.std() == pytest.approx(0.5, rel=0.15) and abs(noise.mean()) < 0.1
    inputs, target = task.model_input(images, _ctx(), train=False)
    np.testing.assert_array_equal(inputs, images)


def test_bad_task_options_are_config_errors():
    model = {"name": "vae", "sizes": (4,), "latent_dim": 2}
    bad = [
        ({"name": "vae", "likelihood": "poisson"}, "unknown task.likelihood 'poisson'"),
        ({"name": "vae", "kl_warmup": 3}, "no option.*task.kl_warmup"),
        ({"name": "vae", "binarize": "yes"}, "unknown task.binarize"),
        ({"name": "vae", "beta": -1.0}, "task.beta must be > 0"),
    ]
    for task, message in bad:
        with pytest.raises(ConfigError, match=message):
            build_experiment(_config(task, model))
    with pytest.raises(ConfigError, match="model.likelihood 'gaussian' differs"):
        build_experiment(_config({"name": "vae"}, {**model, "likelihood": "gaussian"}))


def test_latent_scatter_projection_is_sklearns_pca():
    from sklearn.decomposition import PCA

    from jaxlab.tasks.latent_images import principal_components

    z = np.random.default_rng(0).normal(size=(50, 5)) * np.arange(1, 6)
    points, explained = principal_components(z)
    pca = PCA(2).fit(z)
    np.testing.assert_allclose(np.abs(points), np.abs(pca.transform(z)), rtol=1e-6, atol=1e-9)
    assert explained == pytest.approx(pca.explained_variance_ratio_.sum())
