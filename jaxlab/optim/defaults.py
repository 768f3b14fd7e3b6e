"""Defaults of `config.optimizer` and `config.schedule`: every key any optimizer, schedule,
parameter group, accumulation or EMA option reads (configs are locked, so an override of a
key missing here fails).

The meaning of each key is documented next to it; the conventions behind them are in the
docstrings of `jaxlab.optim.optimizers`, `jaxlab.optim.schedules` and `jaxlab.optim.groups`.
"""

from __future__ import annotations

import ml_collections


def default_optimizer_config() -> ml_collections.ConfigDict:
    """Returns the optimizer sub-config with every key that any optimizer reads."""
    o = ml_collections.ConfigDict()
    o.name = "adam"  # see jaxlab.optim.list_optimizers()
    o.learning_rate = 1e-3  # peak rate of the schedule (rprop: its initial step size)
    # momentum / nesterov: v = momentum * v + g
    o.momentum = 0.9
    o.nesterov = False  # `momentum` with nesterov=True is the same as name='nesterov'
    # adam, adamw, lamb, eve
    o.b1 = 0.9
    o.b2 = 0.999
    o.eps = 1e-8  # adam/adamw/lamb/eve/adagrad/rmsprop denominator term
    # adagrad, rmsprop: eps inside the square root (optax) or added after it (PyTorch, Keras)
    o.eps_in_sqrt = False
    o.adagrad_initial_accumulator = 0.1  # TF/Keras/optax convention; PyTorch uses 0.0
    o.rms_decay = 0.99  # rmsprop: decay of the running average of g^2
    o.centered = False  # rmsprop: divide by the running std instead of the RMS
    # rprop (iRprop-): step sizes grown/shrunk within [min_step, max_step]
    o.rprop_eta_plus = 1.2
    o.rprop_eta_minus = 0.5
    o.rprop_min_step = 1e-6
    o.rprop_max_step = 50.0
    # eve: d_t = b3 d_{t-1} + (1 - b3) clip(|L_t - L_{t-1}| / (L_t - L*), 1/c, c)
    o.eve_b3 = 0.999
    o.eve_c = 10.0
    o.eve_loss_min = 0.0  # L*, a lower bound of the loss
    # esgd: D = mean of (Hv)^2 over random v, refreshed every esgd_update_every steps
    o.esgd_update_every = 20
    o.esgd_eps = 1e-4  # damping in g / (sqrt(D) + esgd_eps)
    # gradient treatment
    o.grad_clip_norm = 0.0  # clip by global norm; 0 disables
    o.grad_clip_value = 0.0  # clip each gradient entry to [-v, v] (0.1 classic for RNNs); 0 off
    o.weight_decay = 0.0
    o.weight_decay_type = "auto"  # auto (decoupled for adamw/lamb, else l2), l2, decoupled, l1
    # parameters exempt from weight decay: "default" (1-D params and names bias/scale),
    # "" (none), or a regex fully matching '/'-joined parameter paths
    o.weight_decay_exclude = "default"
    # parameter groups (jaxlab.optim.groups): regex of frozen parameter paths ("" none) and
    # comma-separated "regex=multiplier" learning-rate groups, e.g. "backbone/.*=0.1"
    o.frozen = ""
    o.lr_multipliers = ""
    o.accumulate_steps = 1  # gradient accumulation over k micro-batches (optax.MultiSteps)
    o.ema_decay = 0.0  # EMA of the parameters used for evaluation; 0 disables
    return o


def default_schedule_config() -> ml_collections.ConfigDict:
    """Returns the schedule sub-config with every key that any schedule reads."""
    s = ml_collections.ConfigDict()
    s.name = "constant"  # see jaxlab.optim.list_schedules()
    s.warmup_steps = 0  # linear warmup from 0 to the peak rate, before any schedule
    s.alpha = 0.0  # cosine / linear: final rate as a fraction of the peak (the floor)
    s.boundaries = ()  # step: steps (after warmup) where the rate is multiplied ...
    s.factors = ()  # ... by these factors (one per boundary)
    s.decay_rate = 0.1  # exponential: the rate is multiplied by decay_rate every decay_steps
    s.decay_steps = 0  # exponential: 0 means the whole post-warmup phase
    s.timescale = 0  # inverse_sqrt: lr * sqrt(tau / (t + tau)); 0 means max(warmup_steps, 1)
    s.cycle_mode = "triangular"  # cyclical: triangular, triangular2, exp_range
    s.cycle_base_lr = 1e-4  # cyclical: base (lowest) rate; the peak is optimizer.learning_rate
    s.half_cycle_steps = 0  # cyclical: steps from base to peak (required > 0)
    s.cycle_gamma = 0.9999  # cyclical exp_range: amplitude scaled by gamma^t
    s.pct_start = 0.3  # one_cycle: fraction of the steps spent rising
    s.div_factor = 25.0  # one_cycle: initial rate = peak / div_factor
    s.final_div_factor = 1e4  # one_cycle: final rate = initial rate / final_div_factor
    # linear scaling rule: rates scaled by batch_size * accumulate_steps / base_batch_size
    s.linear_scaling = False
    s.base_batch_size = 256
    return s
