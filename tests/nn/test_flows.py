"""Flow layers (jaxlab.nn.flows), the flow models and the flow task's likelihood: each
layer's logdet against `log|det J|` of its `jax.jacfwd` Jacobian, exact inverses, ActNorm's
data init, the LU 1x1 conv against `slogdet`, and the dequantization bound against closed
forms."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from jaxlab.models.flows import Glow, RealNVP
from jaxlab.nn import flows
from jaxlab.tasks.flow import FlowLikelihood

SHAPE = (4, 4, 2)  # per-example input: D = 32


def _perturbed(variables, seed=0, scale=0.3):
    """Random non-zero params (the couplings' last conv starts at zero: the identity)."""
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        tree, [v + scale * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys, strict=True)]
    )


def _flat(y):
    return jnp.concatenate([a.reshape(a.shape[0], -1) for a in jax.tree.leaves(y)], axis=1)


LAYERS = {
    "coupling_checkerboard": lambda: flows.AffineCoupling("checkerboard", 1, 8),
    "coupling_channel": lambda: flows.AffineCoupling("channel", 0, 8),
    "actnorm": flows.ActNorm,
    "invconv1x1": lambda: flows.InvConv1x1(seed=3),
    "squeeze": flows.Squeeze,
    "split_learned_prior": lambda: flows.Split(learned_prior=True),
    "multiscale_flow": lambda: flows.Flow(
        (
            flows.AffineCoupling("checkerboard", 0, 8),
            flows.Squeeze(),
            flows.ActNorm(),
            flows.InvConv1x1(seed=1),
            flows.AffineCoupling("channel", 1, 8),
            flows.Split(learned_prior=True),
            flows.AffineCoupling("channel", 0, 8),
        )
    ),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_logdet_is_log_abs_det_jacobian_and_inverse_is_exact(name):
    layer = LAYERS[name]()
    x = jax.random.normal(jax.random.key(1), (2, *SHAPE))
    variables = layer.init(jax.random.key(0), x, method="forward")
    variables = _perturbed(variables, scale=0.1) if variables else variables

    def forward_flat(x_flat):
        y, _ = layer.apply(variables, x_flat.reshape(1, *SHAPE), method="forward")
        return _flat(y)[0]

    expected = [jnp.linalg.slogdet(jax.jacfwd(forward_flat)(xi.ravel()))[1] for xi in x]
    y, logdet = layer.apply(variables, x, method="forward")
    x_back = layer.apply(variables, y, method="inverse")
    np.testing.assert_allclose(logdet, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x_back, x, atol=1e-5)
    if name not in ("squeeze",):
        assert np.abs(expected).max() > 1e-2  # the check is not vacuous


def test_actnorm_data_init_normalizes_the_first_batch_after_the_layers_before_it():
    flow = flows.Flow((flows.AffineCoupling("checkerboard", 0, 8), flows.ActNorm()))
    x = 3.0 + 2.0 * jax.random.normal(jax.random.key(2), (8, *SHAPE))
    variables = _perturbed(flow.init(jax.random.key(0), x, method="forward"))
    variables = flows.actnorm_data_init(flow, variables, x, method="forward")
    assert set(variables) == {"params"}
    (y,), _ = flow.apply(variables, x, method="forward")
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


def test_lu_invconv_logdet_is_slogdet_of_its_weight_times_hw():
    layer = flows.InvConv1x1(seed=5)
    x = jax.random.normal(jax.random.key(3), (2, 3, 5, 4))
    variables = _perturbed(layer.init(jax.random.key(0), x, method="forward"), seed=1)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    perm, _, _, sign, _ = layer._constants(4)  # the fixed permutation and signs
    lower = np.tril(p["lower"], -1) + np.eye(4)
    upper = np.triu(p["upper"], 1) + np.diag(sign * np.exp(p["log_s"]))
    w = perm @ lower @ upper
    y, logdet = jax.jit(lambda v, x: layer.apply(v, x, method="forward"))(variables, x)
    np.testing.assert_allclose(logdet, 3 * 5 * np.linalg.slogdet(w)[1], rtol=1e-5)
    np.testing.assert_allclose(y, np.einsum("dc,bhwc->bhwd", w, x), atol=1e-5)


def test_models_are_invertible_and_start_from_data_normalized():
    x = jax.random.uniform(jax.random.key(4), (4, 8, 8, 1)) - 0.5
    for model in (
        RealNVP(num_scales=2, num_couplings=1, hidden=4, actnorm=True),
        Glow(num_scales=2, num_steps=1, hidden=4),
    ):
        variables = model.init(jax.random.key(0), x)
        variables = _perturbed(flows.actnorm_data_init(model, variables, x), scale=0.05)

        @jax.jit
        def round_trip(v, x, model=model):
            zs, logdet = model.apply(v, x)
            return zs, logdet, model.apply(v, zs, method="inverse")

        zs, logdet, x_back = round_trip(variables, x)
        assert sum(math.prod(z.shape[1:]) for z in zs) == 64 and logdet.shape == (4,)
        np.testing.assert_allclose(x_back, x, atol=1e-5)


def _identity_likelihood(levels: int) -> tuple[FlowLikelihood, dict]:
    """A flow that is the identity at init (zero-initialized coupling nets), standard
    normal prior."""
    flow = RealNVP(num_scales=1, num_couplings=1, hidden=4, mask_types=("checkerboard",))
    model = FlowLikelihood(flow, levels)
    images = jnp.zeros((1, 2, 2, 1))
    variables = model.init({"params": jax.random.key(0), "dequant": jax.random.key(1)}, images)
    return model, variables


def test_uniform_dequantization_of_the_identity_flow_is_the_closed_form_and_a_bound():
    levels = 5
    model, variables = _identity_likelihood(levels)
    k = jnp.asarray([[0, 1], [3, 4]], jnp.float32).reshape(1, 2, 2, 1)
    images = k / (levels - 1)
    u = jax.random.uniform(jax.random.key(7), images.shape)
    nats = model.apply(variables, images, u, method="nats")
    x = np.asarray((k + u) / levels - 0.5, np.float64)
    closed = np.sum(0.5 * x**2 + 0.5 * np.log(2 * np.pi)) + 4 * np.log(levels)
    np.testing.assert_allclose(nats[0], closed, rtol=1e-5)
    # E_u of the bound (x uniform on [a, b): E x^2 = (a^2 + ab + b^2) / 3) >= -log P(k)
    a, b = np.asarray(k) / levels - 0.5, (np.asarray(k) + 1) / levels - 0.5
    expected = np.sum((a * a + a * b + b * b) / 6 + 0.5 * np.log(2 * np.pi)) + 4 * np.log(levels)
    exact_nll = -np.sum(np.log(norm.cdf(b) - norm.cdf(a)))
    assert expected >= exact_nll > expected - 0.05


def test_samples_of_a_grid_image_latents_come_back_to_the_grid():
    model, variables = _identity_likelihood(17)
    k = jax.random.randint(jax.random.key(9), (3, 2, 2, 1), 0, 17).astype(jnp.float32)
    zs = model.apply(variables, k / 16, method="latents")
    back = model.apply(variables, zs, method="inverse")
    np.testing.assert_allclose(back, k / 16, atol=1e-6)


def test_variational_dequantizer_log_q_is_its_change_of_variables():
    deq = flows.VariationalDequantizer(num_couplings=2, hidden=4)
    x = jax.random.uniform(jax.random.key(10), (1, 4, 4, 1)) - 0.5
    eps = jax.random.normal(jax.random.key(11), (1, 4, 4, 1))
    variables = _perturbed(deq.init(jax.random.key(0), x, eps))
    u, log_q = deq.apply(variables, x, eps)
    assert float(u.min()) > 0.0 and float(u.max()) < 1.0
    jac = jax.jacfwd(lambda e: deq.apply(variables, x, e.reshape(eps.shape))[0].ravel())(
        eps.ravel()
    )
    log_n = np.sum(norm.logpdf(np.asarray(eps, np.float64)))
    np.testing.assert_allclose(log_q[0], log_n - np.linalg.slogdet(jac)[1], rtol=1e-4)
