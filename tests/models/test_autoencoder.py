"""Autoencoder and VAE models: shapes round-trip, the likelihood heads, the code statistics,
and the encoder/decoder parameter-count explanation of scripts/inspect.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.analysis import parameter_table
from jaxlab.models import get_model
from jaxlab.models.autoencoder import CODE_STATS, explain_parameter_counts


def _shapes(model, x, *args, method=None):
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, *args))
    out = jax.eval_shape(lambda v: model.apply(v, x, *args, method=method), variables)
    return variables, out


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3)])
def test_autoencoders_give_back_their_input_size(shape):
    x = jnp.zeros((2, *shape))
    for name, sizes in (("mlp_autoencoder", (8,)), ("conv_autoencoder", (4, 8))):
        _, out = _shapes(get_model(name, sizes=sizes, code_dim=3), x)
        assert out.shape == x.shape, (name, shape)
    vae = get_model(
        "vae",
        backbone="conv",
        sizes=(4, 8),
        latent_dim=2,
        likelihood="categorical",
        num_levels=17,
        image_shape=shape,
    )
    variables, (out, mean, logvar) = _shapes(vae, x, jax.random.key(1))
    assert out.shape == (2, *shape, 17) and mean.shape == logvar.shape == (2, 2)
    decoded = jax.eval_shape(
        lambda v: vae.apply(v, jnp.zeros((5, 2)), method=vae.decode), variables
    )
    assert decoded.shape == (5, *shape, 17)


def test_vae_heads_and_reparameterization():
    x = jax.random.uniform(jax.random.key(0), (3, 8, 8, 1))
    for likelihood, per_value in (("bernoulli", 1), ("gaussian", 2)):
        vae = get_model("vae", sizes=(8,), latent_dim=2, likelihood=likelihood)
        _, (out, _, _) = _shapes(vae, x)
        assert out.shape == (3, 8, 8, 1, per_value), likelihood
    vae = get_model(
        "vae",
        sizes=(8,),
        latent_dim=2,
        likelihood="gaussian",
        fixed_log_scale=-1.0,
        image_shape=(8, 8, 1),
    )
    key = jax.random.key(3)

    @jax.jit
    def run(x):
        variables = vae.init(jax.random.key(0), x)
        out, mean, logvar = vae.apply(variables, x, key)
        # z = mean + exp(logvar / 2) * eps: decoding that z by hand gives the same output.
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
        return out, vae.apply(variables, z, method="decode")

    out, by_hand = run(x)
    assert out.shape == (3, 8, 8, 1, 2)
    np.testing.assert_array_equal(out[..., 1], -1.0)
    np.testing.assert_allclose(out, by_hand, rtol=1e-5, atol=1e-5)


def test_code_statistics_are_an_ema_of_the_training_codes():
    model = get_model("mlp_autoencoder", sizes=(8,), code_dim=3, code_momentum=0.9)
    x = jax.random.uniform(jax.random.key(0), (6, 8, 8, 1))

    @jax.jit
    def run(x):
        variables = model.init(jax.random.key(1), x)
        _, new = model.apply(variables, x, train=True, mutable=[CODE_STATS])
        return new[CODE_STATS], model.apply(variables, x, method="encode")

    stats, codes = run(x)
    np.testing.assert_allclose(stats["mean"], 0.1 * codes.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * codes.var(0), rtol=1e-5)
    np.testing.assert_allclose(
        stats["var"], optax.incremental_update(codes.var(0), jnp.ones(3), 0.1), rtol=1e-6
    )


def test_parameter_explanation_pairs_mirrored_layers_and_their_bias_difference():
    model = get_model("mlp_autoencoder", sizes=(32, 16), code_dim=4)
    table = parameter_table(model, (1, 8, 8, 1), flops=False)
    lines = explain_parameter_counts(table.rows)
    # encoder 64-32-16-4, decoder 4-16-32-64: mirrored pairs (in, out) of the encoder.
    pairs = [(16, 4), (32, 16), (64, 32)]
    assert len(lines) == 2 + len(pairs)
    for line, (n_in, n_out) in zip(lines[1:-1], pairs, strict=True):
        enc, dec = n_in * n_out + n_out, n_out * n_in + n_in
        assert f"= {enc:,} vs" in line and f"= {dec:,}: same weights" in line, line
        assert line.endswith(f"= {dec - enc:+,}") and dec - enc == n_in - n_out, line
    enc = sum(r.count for r in table.rows if r.path.startswith("encoder/"))
    assert lines[-1].startswith(f"  encoder {enc:,} vs decoder {table.total - enc:,} ")
    assert table.total - 2 * enc == 64 - 4  # telescoped: input size - code size
    conv = get_model("conv_autoencoder", sizes=(4, 8), code_dim=3)
    conv_lines = explain_parameter_counts(parameter_table(conv, (1, 8, 8, 1), flops=False).rows)
    # the first encoder conv (1 -> 4 channels, 4x4) against the last transposed conv.
    assert conv_lines[-2].endswith(f"= {1 - 4:+,}")
    assert f"{4 * 4 * 1 * 4:,} + 4 = {4 * 4 * 4 + 4:,}" in conv_lines[-2]
    vae = get_model("vae", sizes=(8,), latent_dim=2, likelihood="categorical", num_levels=17)
    vae_lines = explain_parameter_counts(parameter_table(vae, (1, 8, 8, 1), flops=False).rows)
    assert all("not a mirror" in line for line in vae_lines[1:-1])  # 2*latent / 17*64 heads
    assert (
        explain_parameter_counts(
            parameter_table(get_model("mlp", num_classes=3, width=4), (1, 8), flops=False).rows
        )
        == []
    )
