"""FGSM / PGD / random sign noise, checked against a closed-form attack on scikit-learn's
logistic regression and against their defining constraints."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.analysis import attacks
from jaxlab.analysis.attacks import PixelSpace
from jaxlab.models import get_model

DIGITS = PixelSpace((0.3054,), (0.3760,))


@pytest.fixture(scope="module")
def sklearn_digits():
    """scikit-learn's LogisticRegression on jaxlab's digits split (pixels / 16), and the
    same weights in jaxlab's linear softmax classifier."""
    from sklearn.linear_model import LogisticRegression

    from jaxlab.data.digits import load_digits_split

    x_train, y_train, x_test, y_test = load_digits_split()
    x_train, x_test = x_train / 16.0, x_test / 16.0
    clf = LogisticRegression(max_iter=300).fit(x_train.reshape(len(x_train), -1), y_train)
    model = get_model("linear", num_classes=10)
    variables = {
        "params": {
            "head": {
                "kernel": jnp.asarray(clf.coef_.T, jnp.float32),
                "bias": jnp.asarray(clf.intercept_, jnp.float32),
            }
        }
    }
    images = x_test[..., None].astype(np.float32)
    return clf, model, variables, images, y_test.astype(np.int32)


def closed_form_fgsm_accuracy(clf, x: np.ndarray, y: np.ndarray, eps: float) -> float:
    """FGSM on a linear softmax model, from its weights alone (float64 numpy): the input
    gradient of the cross-entropy is W^T (softmax(Wx + b) - onehot(y))."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    scores = flat @ clf.coef_.T + clf.intercept_
    p = np.exp(scores - scores.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    grad = p @ clf.coef_
    adv = np.clip(flat + eps * np.sign(grad), 0.0, 1.0)
    return float(np.mean(clf.predict(adv) == y))


def test_fgsm_matches_closed_form_attack_on_sklearn_logistic_regression(sklearn_digits):
    clf, model, variables, images, labels = sklearn_digits
    epsilons = (0.0, 0.02, 0.05, 0.1, 0.2)
    logits_fn = lambda x: model.apply(variables, x, train=False)  # noqa: E731
    ours = attacks.accuracy_under_attack(logits_fn, images, labels, epsilons, PixelSpace())
    reference = [closed_form_fgsm_accuracy(clf, images, labels, e) for e in epsilons]
    assert ours.tolist() == reference
    assert reference[0] == pytest.approx(clf.score(images.reshape(len(images), -1), labels))
    assert reference[-1] < reference[0] - 0.3  # the attack bites


@pytest.fixture(scope="module")
def tiny_model():
    """A random linear classifier on 8x8 inputs in the digits' normalized space (the attacks
    see only `logits_fn`, so a linear model exercises them as well as a CNN, at a fraction
    of the compile time)."""
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(64, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    logits_fn = lambda z: z.reshape(z.shape[0], -1) @ w + b  # noqa: E731
    x = jnp.clip(jnp.asarray(rng.normal(size=(6, 8, 8, 1)), jnp.float32), DIGITS.lo, DIGITS.hi)
    return logits_fn, x, jnp.asarray([0, 1, 2, 0, 1, 2])


def test_pixel_space_maps_pixel_range_and_budgets():
    np.testing.assert_allclose(DIGITS.lo, [-0.3054 / 0.376], rtol=1e-6)
    np.testing.assert_allclose(DIGITS.hi, [0.6946 / 0.376], rtol=1e-6)
    np.testing.assert_allclose(DIGITS.scale(0.2), [0.2 / 0.376], rtol=1e-6)
    p = np.linspace(0, 1, 5, dtype=np.float32)[:, None]
    np.testing.assert_allclose(DIGITS.to_pixels(DIGITS.from_pixels(p)), p, atol=1e-6)


def test_pgd_stays_in_ball_and_range_and_one_full_step_is_fgsm(tiny_model):
    logits_fn, x, labels = tiny_model
    eps = 0.1
    pgd = jax.jit(lambda x, k: attacks.pgd(logits_fn, x, labels, eps, DIGITS, steps=3, key=k))
    adv = pgd(x, jax.random.key(2))
    radius = float(DIGITS.scale(eps)[0])
    assert float(jnp.max(jnp.abs(adv - x))) <= radius + 1e-6
    assert float(adv.min()) >= DIGITS.lo[0] - 1e-6 and float(adv.max()) <= DIGITS.hi[0] + 1e-6
    one = attacks.pgd(logits_fn, x, labels, eps, DIGITS, steps=1, step_size=eps)
    np.testing.assert_allclose(one, attacks.fgsm(logits_fn, x, labels, eps, DIGITS), atol=1e-6)


def test_pgd_raises_the_loss_at_least_as_much_as_fgsm_on_a_linear_model(sklearn_digits):
    _, model, variables, images, labels = sklearn_digits
    logits_fn = lambda x: model.apply(variables, x, train=False)  # noqa: E731
    x, y = jnp.asarray(images[:64]), jnp.asarray(labels[:64])

    def loss(z):
        return float(attacks.cross_entropy(logits_fn(z), y).mean())

    fgsm = jax.jit(lambda z: attacks.fgsm(logits_fn, z, y, 0.05, PixelSpace()))(x)
    pgd = jax.jit(lambda z: attacks.pgd(logits_fn, z, y, 0.05, PixelSpace(), steps=10))(x)
    assert loss(pgd) >= loss(fgsm) - 1e-5 > loss(x)


def test_random_sign_noise_has_the_budget_where_not_clipped(tiny_model):
    _, x, _ = tiny_model
    noisy = attacks.random_sign_noise(jax.random.key(3), x, 0.1, DIGITS)
    delta = np.abs(np.asarray(noisy - x))
    inside = (np.asarray(noisy) > DIGITS.lo[0] + 1e-6) & (np.asarray(noisy) < DIGITS.hi[0] - 1e-6)
    np.testing.assert_allclose(delta[inside], 0.1 / 0.376, rtol=1e-5)
    assert float(noisy.min()) >= DIGITS.lo[0] - 1e-6


def test_zero_budget_keeps_clean_accuracy_for_every_attack(tiny_model):
    logits_fn, x, labels = tiny_model
    clean = float(jnp.mean(jnp.argmax(logits_fn(x), -1) == labels))
    for name in attacks.ATTACKS:
        acc = attacks.accuracy_under_attack(
            logits_fn, np.asarray(x), np.asarray(labels), (0.0, 0.1), DIGITS, name, pgd_steps=2
        )
        assert acc[0] == pytest.approx(clean), name
        assert acc[1] <= clean or name == "noise"
    with pytest.raises(ValueError, match="valid choices: fgsm, pgd, noise"):
        attacks.make_attack("cw", logits_fn, DIGITS)


def test_cross_entropy_equals_optax_and_keeps_its_gradient_when_confident():
    import optax

    logits = jnp.asarray([[0.3, -1.2, 2.0], [40.0, 0.0, -3.0]])
    labels = jnp.asarray([2, 0])
    np.testing.assert_allclose(
        attacks.cross_entropy(logits, labels),
        optax.softmax_cross_entropy_with_integer_labels(logits, labels),
        rtol=1e-5,
        atol=1e-12,
    )
    # d CE / d z_y = -(1 - p_y) = -sum_{j != y} p_j: nonzero although p_y rounds to 1
    grad = jax.grad(lambda z: attacks.cross_entropy(z, labels).sum())(logits)
    p = np.exp(np.float64([40.0, 0.0, -3.0]) - 40.0)
    p /= p.sum()
    np.testing.assert_allclose(grad[1], [-(p[1] + p[2]), p[1], p[2]], rtol=1e-4)
    assert float(grad[1, 0]) < 0
