"""The optimizers of `config.optimizer.name`, each an optax chain of optax's own pieces
(plus `jaxlab.optim.transforms` where optax has none).

Update equations (g the gradient after clipping and coupled weight decay, lr the schedule's
rate, every update applied as `p <- p - lr * u` unless said otherwise):

- `sgd`: `u = g`.
- `momentum`: `v <- momentum * v + g`, `u = v` (optax.trace; PyTorch's convention, with no
  dampening). `nesterov=True` gives `nesterov`.
- `nesterov`: `v <- momentum * v + g`, `u = g + momentum * v` (Sutskever's form, as PyTorch).
- `adagrad`: `G <- G + g^2` from `G_0 = adagrad_initial_accumulator` (0.1 as TF/Keras/optax,
  0.0 as PyTorch); `u = g / (sqrt(G) + eps)` or, with `eps_in_sqrt`, `g / sqrt(G + eps)`.
- `rmsprop`: `s <- rms_decay * s + (1 - rms_decay) g^2` from 0; `u = g / (sqrt(s) + eps)`
  (PyTorch, Keras) or `g / sqrt(s + eps)` with `eps_in_sqrt` (optax's default);
  `centered` uses `s - m^2`, m the running mean of g. No bias correction.
- `rprop` (iRprop-, `transforms.scale_by_rprop`, as torch.optim.Rprop): per-entry step
  sizes start at `learning_rate`, are multiplied by `rprop_eta_plus` while the gradient
  keeps its sign and by `rprop_eta_minus` when it flips, clipped to
  `[rprop_min_step, rprop_max_step]`; `p <- p - step * sign(g)`, and after a sign flip the
  entry skips that step. It uses the sign of the gradient only, so it is meant for
  full-batch training (mini-batch noise flips the signs at random); the schedule must be
  `constant` (the step sizes adapt themselves).
- `adam`: bias-corrected moments, `u = m_hat / (sqrt(v_hat) + eps)` (eps outside the root,
  as the paper, PyTorch and optax).
- `adamw`: adam plus decoupled weight decay, `u += weight_decay * p` (scaled by lr, as optax
  and PyTorch).
- `lamb`: adam direction plus decoupled decay, times the per-parameter trust ratio
  `||p|| / ||u||` (1 where either norm is 0).
- `eve`: adam's step divided by `d_t` (`transforms.scale_by_eve_feedback`); needs the loss.
- `esgd`: `u = g / (sqrt(D) + esgd_eps)`, D the mean of (Hv)^2 (`transforms.scale_by_esgd`);
  needs Hessian-vector products.

Gradient treatment, in order: clip by value, clip by global norm, coupled weight decay
(`l2`: `g + wd * p`, the gradient of `wd/2 ||p||^2`; `l1`: `g + wd * sign(p)`), the
optimizer, decoupled weight decay, the learning rate. Weight decay obeys the mask of
`jaxlab.optim.groups.decay_mask`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import optax

from jaxlab.config import ConfigError, check_choice
from jaxlab.optim import transforms
from jaxlab.optim.checks import require, require_bool, require_number

OPTIMIZERS = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "rprop",
    "adam",
    "adamw",
    "lamb",
    "eve",
    "esgd",
)
WEIGHT_DECAY_TYPES = ("auto", "l2", "decoupled", "l1")
_ADAM_LIKE = ("adam", "adamw", "lamb", "eve")

# Hyperparameters each optimizer reads, beyond learning_rate: (key, allow_zero, below).
_HPARAMS: dict[str, tuple[tuple[str, bool, float | None], ...]] = {
    "momentum": (("momentum", True, 1.0),),
    "nesterov": (("momentum", True, 1.0),),
    "adagrad": (("adagrad_initial_accumulator", True, None), ("eps", True, None)),
    "rmsprop": (("rms_decay", True, 1.0), ("eps", True, None)),
    "rprop": (
        ("rprop_eta_plus", False, None),
        ("rprop_eta_minus", False, 1.0),
        ("rprop_min_step", True, None),
        ("rprop_max_step", False, None),
    ),
    "eve": (("eve_b3", True, 1.0), ("eve_c", False, None), ("eve_loss_min", True, None)),
    "esgd": (("esgd_eps", False, None),),
}
for _name in ("adam", "adamw", "lamb", "eve"):
    _HPARAMS[_name] = (("b1", True, 1.0), ("b2", True, 1.0), ("eps", True, None)) + _HPARAMS.get(
        _name, ()
    )


def list_optimizers() -> list[str]:
    """Returns the valid values of `config.optimizer.name`."""
    return list(OPTIMIZERS)


def resolved_weight_decay_type(o: ml_collections.ConfigDict) -> str:
    """Returns 'l2', 'decoupled' or 'l1'; 'auto' is decoupled for adamw/lamb, else l2."""
    kind = o.weight_decay_type
    if kind == "auto":
        return "decoupled" if o.name in ("adamw", "lamb") else "l2"
    return kind


def validate_optimizer_hparams(o: ml_collections.ConfigDict) -> None:
    """Raises ConfigError for an unknown optimizer or a missing / out-of-range hyperparameter
    of `config.optimizer` (schedule and groups are checked elsewhere)."""
    check_choice("optimizer", require(o, "optimizer", "name"), OPTIMIZERS)
    require_number(o, "optimizer", "learning_rate")
    for key, allow_zero, below in _HPARAMS.get(o.name, ()):
        require_number(o, "optimizer", key, allow_zero=allow_zero, below=below)
    if o.name == "momentum":
        require_bool(o, "optimizer", "nesterov")
    if o.name in ("adagrad", "rmsprop"):
        require_bool(o, "optimizer", "eps_in_sqrt")
    if o.name == "rmsprop":
        require_bool(o, "optimizer", "centered")
    if o.name == "rprop" and o.rprop_eta_plus < 1:
        raise ConfigError(f"optimizer.rprop_eta_plus must be >= 1, got {o.rprop_eta_plus!r}")
    if o.name == "rprop" and o.rprop_min_step > o.rprop_max_step:
        raise ConfigError("optimizer.rprop_min_step must not exceed optimizer.rprop_max_step")
    if o.name == "esgd":
        require_number(o, "optimizer", "esgd_update_every", integer=True)
    require_number(o, "optimizer", "grad_clip_norm", allow_zero=True)
    require_number(o, "optimizer", "grad_clip_value", allow_zero=True)
    require_number(o, "optimizer", "weight_decay", allow_zero=True)
    check_choice(
        "optimizer.weight_decay_type",
        require(o, "optimizer", "weight_decay_type"),
        WEIGHT_DECAY_TYPES,
    )
    if o.name == "rprop" and o.weight_decay > 0 and resolved_weight_decay_type(o) == "decoupled":
        raise ConfigError("rprop supports coupled weight decay only: weight_decay_type l2 or l1")
    require(o, "optimizer", "weight_decay_exclude")


def scale_by_optimizer(
    o: ml_collections.ConfigDict, learning_rate: Any, seed: int = 0
) -> optax.GradientTransformation:
    """Returns the optimizer's direction `u` before weight decay and learning rate (for
    `rprop` the signed step itself, whose initial size is `learning_rate`)."""
    name = o.name
    if name == "sgd":
        return optax.identity()
    if name in ("momentum", "nesterov"):
        return optax.trace(o.momentum, nesterov=name == "nesterov" or bool(o.nesterov))
    if name == "adagrad":
        if o.eps_in_sqrt:
            return optax.scale_by_rss(o.adagrad_initial_accumulator, o.eps)
        return transforms.scale_by_rss_eps_outside(o.adagrad_initial_accumulator, o.eps)
    if name == "rmsprop":
        scale = optax.scale_by_stddev if o.centered else optax.scale_by_rms
        return scale(o.rms_decay, o.eps, 0.0, eps_in_sqrt=o.eps_in_sqrt)
    if name == "rprop":
        return transforms.scale_by_rprop(
            learning_rate,
            o.rprop_eta_minus,
            o.rprop_eta_plus,
            o.rprop_min_step,
            o.rprop_max_step,
        )
    if name in ("adam", "adamw", "lamb"):
        return optax.scale_by_adam(o.b1, o.b2, o.eps)
    if name == "eve":
        return transforms.eve(o.b1, o.b2, o.eps, o.eve_b3, o.eve_c, o.eve_loss_min)
    if name == "esgd":
        return transforms.scale_by_esgd(o.esgd_update_every, o.esgd_eps, seed)
    raise ConfigError(f"unknown optimizer {name!r}; valid choices: {', '.join(OPTIMIZERS)}")


def build_chain(
    o: ml_collections.ConfigDict,
    learning_rate: float | jax.Array | optax.Schedule,
    *,
    decay_mask: Any | Callable[[Any], Any] | None = None,
    seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Builds clipping -> coupled decay -> optimizer -> decoupled decay -> learning rate.

    `learning_rate` is a number, a traced scalar (the playground vmaps over it) or a schedule
    of the update count; for `rprop` it must be a scalar: the initial step size.
    """
    parts: list[optax.GradientTransformation] = []
    if o.grad_clip_value > 0:
        parts.append(optax.clip(o.grad_clip_value))
    if o.grad_clip_norm > 0:
        parts.append(optax.clip_by_global_norm(o.grad_clip_norm))
    decay = resolved_weight_decay_type(o) if o.weight_decay > 0 else None
    if decay == "l2":
        parts.append(optax.add_decayed_weights(o.weight_decay, decay_mask))
    elif decay == "l1":
        parts.append(transforms.add_l1_decay(o.weight_decay, decay_mask))
    parts.append(scale_by_optimizer(o, learning_rate, seed))
    if decay == "decoupled":
        parts.append(optax.add_decayed_weights(o.weight_decay, decay_mask))
    if o.name == "lamb":
        parts.append(optax.scale_by_trust_ratio())
    parts.append(
        optax.scale(-1.0) if o.name == "rprop" else optax.scale_by_learning_rate(learning_rate)
    )
    return optax.chain(*parts)
