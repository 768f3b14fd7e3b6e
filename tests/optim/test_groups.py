"""Parameter groups (frozen, lr multipliers, weight-decay mask) and gradient accumulation."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from jax import numpy as jnp

from jaxlab import optim
from jaxlab.config import ConfigError, default_config
from jaxlab.optim import groups


def mlp_params():
    k = jax.random.split(jax.random.key(0), 4)
    return {
        "backbone": {
            "conv": {"kernel": jax.random.normal(k[0], (3, 4)), "bias": jnp.zeros(4)},
            "norm": {"scale": jnp.ones(4), "bias": jnp.zeros(4)},
        },
        "head": {"kernel": jax.random.normal(k[1], (4, 2)), "bias": jnp.zeros(2)},
    }


def loss_fn(params, x):
    h = jnp.tanh(x @ params["backbone"]["conv"]["kernel"] + params["backbone"]["conv"]["bias"])
    h = h * params["backbone"]["norm"]["scale"] + params["backbone"]["norm"]["bias"]
    return jnp.mean((h @ params["head"]["kernel"] + params["head"]["bias"]) ** 2) + 0.1


def config(name="adam", **overrides):
    c = default_config()
    c.optimizer.name = name
    for k, v in overrides.items():
        c.optimizer[k] = v
    return c


def train(c, params, steps=10, batches=None):
    tx = optim.create_optimizer(c, 100)
    state = tx.init(params)

    @jax.jit
    def step(params, state, x):
        value, grads = jax.value_and_grad(loss_fn)(params, x)
        hvp = lambda v: jax.jvp(jax.grad(lambda p: loss_fn(p, x)), (params,), (v,))[1]
        updates, state = tx.update(grads, state, params, value=value, hvp_fn=hvp)
        return optax.apply_updates(params, updates), state

    for i in range(steps):
        x = batches[i] if batches is not None else jax.random.normal(jax.random.key(i), (8, 3))
        params, state = step(params, state, x)
    return params, state


def state_size(state) -> int:
    """Number of float entries in non-scalar state leaves (PRNG keys and counters excluded)."""
    leaves = jax.tree.leaves(state)
    return sum(x.size for x in leaves if x.ndim > 0 and jnp.issubdtype(x.dtype, jnp.floating))


@pytest.mark.parametrize("name", ["adam", "esgd", "eve"])
def test_frozen_parameters_are_bit_identical_and_have_no_state(name):
    params = mlp_params()
    c = config(name, frozen="backbone/.*", weight_decay=0.1, weight_decay_type="l2")
    new, state = train(c, params)
    for a, b in zip(
        jax.tree.leaves(params["backbone"]), jax.tree.leaves(new["backbone"]), strict=True
    ):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(new["head"]["kernel"], params["head"]["kernel"])
    trainable = sum(x.size for x in jax.tree.leaves(params["head"]))
    per_param = {"adam": 2, "eve": 2, "esgd": 1}[name]
    assert state_size(state) == per_param * trainable
    _, unfrozen_state = train(config(name), params, steps=1)
    assert state_size(unfrozen_state) > state_size(state)


def test_frozen_esgd_uses_the_hessian_of_the_trainable_part():
    """ESGD with the backbone frozen equals ESGD on the head alone (same probes)."""
    params = mlp_params()
    new, _ = train(config("esgd", frozen="backbone/.*", learning_rate=0.01), params, steps=25)
    tx = optim.create_optimizer(config("esgd", learning_rate=0.01), 100)
    head, state = params["head"], tx.init(params["head"])
    head_loss = lambda h, x: loss_fn({**params, "head": h}, x)

    @jax.jit
    def step(head, state, x):
        grads = jax.grad(head_loss)(head, x)
        hvp = lambda v: jax.jvp(jax.grad(lambda h: head_loss(h, x)), (head,), (v,))[1]
        updates, state = tx.update(grads, state, head, hvp_fn=hvp)
        return optax.apply_updates(head, updates), state

    for i in range(25):
        head, state = step(head, state, jax.random.normal(jax.random.key(i), (8, 3)))
    for a, b in zip(jax.tree.leaves(head), jax.tree.leaves(new["head"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["sgd", "adam", "lamb"])
def test_lr_multiplier_scales_the_update(name):
    params = mlp_params()
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.3) + 0.1 * p, params)
    results = []
    for spec in ("", "backbone/.*=0.1"):
        tx = optim.create_optimizer(config(name, lr_multipliers=spec), 100)
        results.append(tx.update(grads, tx.init(params), params)[0])
    base, scaled = results
    for a, b in zip(
        jax.tree.leaves(base["backbone"]), jax.tree.leaves(scaled["backbone"]), strict=True
    ):
        np.testing.assert_allclose(b, 0.1 * a, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(base["head"]), jax.tree.leaves(scaled["head"]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_every_parameter_falls_in_exactly_one_group():
    params = mlp_params()
    c = config(frozen="backbone/norm/.*", lr_multipliers="backbone/conv/.*=0.1,head/kernel=2")
    g = optim.param_groups(c, params)
    assert set(g) == set(groups.param_paths(params))
    assert g == {
        "backbone/conv/bias": "0.1",
        "backbone/conv/kernel": "0.1",
        "backbone/norm/bias": "frozen",
        "backbone/norm/scale": "frozen",
        "head/bias": "1.0",
        "head/kernel": "2.0",
    }


def test_overlapping_or_unmatched_patterns_fail():
    params = mlp_params()
    with pytest.raises(
        ConfigError,
        match="parameter 'backbone/conv/bias' matches several group patterns: optimizer.frozen "
        "'backbone/.\\*', optimizer.lr_multipliers '.\\*'",
    ):
        optim.validate_param_groups(config(frozen="backbone/.*", lr_multipliers=".*=0.5"), params)
    c = config(frozen="encoder/.*")
    with pytest.raises(ConfigError, match="optimizer.frozen pattern 'encoder/.\\*' matches no"):
        optim.validate_param_groups(c, params)
    with pytest.raises(ConfigError, match="matches no parameter"):
        optim.create_optimizer(c, 10).init(params)


@pytest.mark.parametrize(
    "key, value, pattern",
    [
        ("frozen", "conv.*", "conv.*"),  # must match the whole path: backbone/conv/...
        ("lr_multipliers", "head/.*=0.1,encoder/.*=2", "encoder/.*"),
    ],
)
def test_unmatched_pattern_names_its_key_and_example_paths(key, value, pattern):
    with pytest.raises(ConfigError) as err:
        optim.validate_param_groups(config(**{key: value}), mlp_params())
    message = str(err.value)
    assert message.startswith(f"optimizer.{key} pattern {pattern!r} matches no parameter")
    assert message.endswith(
        "parameters: backbone/conv/bias, backbone/conv/kernel, backbone/norm/bias, "
        "backbone/norm/scale, head/bias, head/kernel"
    )
    many = {f"layer{i:02d}": {"kernel": jnp.ones(1)} for i in range(20)}
    with pytest.raises(ConfigError, match=r"layer07/kernel, \.\.\. \(20 in all\)$"):
        optim.validate_param_groups(config(**{key: value}), many)


def test_default_decay_mask_exempts_biases_norms_and_vectors():
    params = mlp_params()
    mask = groups.decay_mask(config())(params)
    assert mask["backbone"]["conv"] == {"kernel": True, "bias": False}
    assert mask["backbone"]["norm"] == {"scale": False, "bias": False}
    assert mask["head"]["kernel"] is True
    assert all(jax.tree.leaves(groups.decay_mask(config(weight_decay_exclude=""))(params)))
    custom = groups.decay_mask(config(weight_decay_exclude="head/.*"))(params)
    assert custom["head"]["kernel"] is False and custom["backbone"]["norm"]["bias"] is True


def test_decoupled_decay_follows_the_mask():
    params = mlp_params()
    zero = jax.tree.map(jnp.zeros_like, params)
    c = config("adamw", weight_decay=0.5, learning_rate=0.1)
    tx = optim.create_optimizer(c, 10)
    updates, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(
        updates["head"]["kernel"], -0.1 * 0.5 * params["head"]["kernel"], rtol=1e-6
    )
    assert float(jnp.abs(updates["backbone"]["norm"]["scale"]).max()) == 0.0


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_accumulation_equals_the_big_batch_gradient(name):
    params = mlp_params()
    micro = [jax.random.normal(jax.random.key(i), (4, 3)) for i in range(8)]
    big = [jnp.concatenate(micro[i : i + 4]) for i in (0, 4)]
    acc, _ = train(config(name, accumulate_steps=4, learning_rate=0.05), params, 8, micro)
    ref, _ = train(config(name, learning_rate=0.05), params, 2, big)
    for a, b in zip(jax.tree.leaves(acc), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    mid, _ = train(config(name, accumulate_steps=4), params, 3, micro)
    for a, b in zip(jax.tree.leaves(mid), jax.tree.leaves(params), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_accumulation_with_frozen_allocates_no_state_for_frozen():
    params = mlp_params()
    _, state = train(config("sgd", accumulate_steps=2, frozen="backbone/.*"), params, 2)
    assert state_size(state) == sum(x.size for x in jax.tree.leaves(params["head"]))  # acc_grads
