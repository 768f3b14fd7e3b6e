"""DDPM's U-Net: shapes on the three image sizes, dependence on t, the paper's size."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.models import get_model
from jaxlab.models.unet import timestep_embedding


def _init_shapes(model, shape):
    x, t = jnp.zeros(shape), jnp.zeros(shape[:1], jnp.int32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, t, train=False))
    out = jax.eval_shape(lambda v: model.apply(v, x, t, train=False), variables)
    return variables, out


def test_output_shape_equals_input_shape_on_8_28_and_32_pixel_images():
    for shape, mults, attention in (
        ((2, 8, 8, 1), (1, 2), (4,)),
        ((2, 28, 28, 1), (1, 2, 2), (14,)),  # 28 -> 14 -> 7 and back
        ((2, 32, 32, 3), (1, 2, 2, 2), (16,)),
    ):
        model = get_model(
            "unet",
            channels=8,
            channel_mults=mults,
            num_res_blocks=1,
            attention_resolutions=attention,
        )
        _, out = _init_shapes(model, shape)
        assert out.shape == shape and out.dtype == jnp.float32, shape


def test_paper_cifar10_model_has_35_7m_parameters():
    model = get_model("unet", channels=128, channel_mults=(1, 2, 2, 2), attention_resolutions=(16,))
    variables, _ = _init_shapes(model, (1, 32, 32, 3))
    count = sum(leaf.size for leaf in jax.tree.leaves(variables))
    assert round(count / 1e6, 1) == 35.7, count


def test_output_depends_on_t():
    model = get_model(
        "unet", channels=4, channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(4,)
    )
    x = jnp.linspace(-1, 1, 2 * 64).reshape(2, 8, 8, 1)
    variables, _ = _init_shapes(model, x.shape)
    # Random weights from one draw (the output convs are zero-initialized, and on XLA:CPU
    # each random op compiles slowly: model.init has one per parameter).
    leaves, treedef = jax.tree.flatten(variables)
    flat = 0.3 * jax.random.normal(jax.random.key(2), (sum(a.size for a in leaves),))
    parts = jnp.split(flat, np.cumsum([a.size for a in leaves])[:-1])
    variables = jax.tree.unflatten(
        treedef, [p.reshape(a.shape) for p, a in zip(parts, leaves, strict=True)]
    )
    apply = jax.jit(lambda t: model.apply(variables, x, t, train=False))
    out = apply(jnp.array([3, 3]))
    assert out.shape == x.shape
    assert not np.allclose(out, apply(jnp.array([7, 7])), atol=1e-4)


def test_timestep_embedding_is_sin_cos_of_geometric_frequencies():
    emb = timestep_embedding(jnp.array([0.0, 5.0]), 8)
    freqs = 10_000.0 ** (-np.arange(4) / 4)
    np.testing.assert_allclose(
        emb[1], np.concatenate([np.sin(5 * freqs), np.cos(5 * freqs)]), rtol=1e-5
    )
    np.testing.assert_allclose(emb[0], [0, 0, 0, 0, 1, 1, 1, 1])
