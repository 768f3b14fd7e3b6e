"""Independent numpy references for the optimizers, written from their update equations (the
docstring of jaxlab/optim/optimizers.py), and two small problems with numpy gradients.

Parameters are lists of float64 arrays in the order of `jax.tree.leaves` of the matching
params dict; `names` gives each leaf's last path component (for the weight-decay mask).
"""

from __future__ import annotations

import numpy as np


class Reference:
    """One optimizer as plain numpy; `step(params, grads, loss, hvp)` returns new params."""

    def __init__(self, hp: dict, params: list[np.ndarray], names: list[str], draw=None):
        self.hp, self.names, self.draw = hp, names, draw
        self.t = 0
        zeros = [np.zeros_like(p) for p in params]
        self.m = [z.copy() for z in zeros]  # momentum / first moment / rprop previous sign
        self.v = [z.copy() for z in zeros]  # second moment / accumulator / D sum
        if hp["name"] == "adagrad":
            self.v = [np.full_like(p, hp["adagrad_initial_accumulator"]) for p in params]
        self.steps = [np.full_like(p, hp["learning_rate"]) for p in params]  # rprop
        self.d, self.prev_loss, self.samples = 1.0, 0.0, 0

    def decayed(self, i: int, p: np.ndarray) -> bool:
        return p.ndim > 1 and self.names[i] not in ("bias", "scale")

    def direction(self, grads, params, loss, hvp):
        hp, name = self.hp, self.hp["name"]
        eps, t = hp["eps"], self.t
        out = []
        if name == "esgd" and t % hp["esgd_update_every"] == 0:
            hv = hvp(self.draw())
            self.v = [d + h**2 for d, h in zip(self.v, hv, strict=True)]
            self.samples += 1
        if name == "eve":
            if t == 0:
                self.d = 1.0
            else:
                gap = loss - hp["eve_loss_min"]
                r = abs(loss - self.prev_loss) / gap if gap > 0 else hp["eve_c"]
                r = min(max(r, 1 / hp["eve_c"]), hp["eve_c"])
                self.d = hp["eve_b3"] * self.d + (1 - hp["eve_b3"]) * r
            self.prev_loss = loss
        for i, g in enumerate(grads):
            if name == "sgd":
                u = g
            elif name in ("momentum", "nesterov"):
                self.m[i] = hp["momentum"] * self.m[i] + g
                u = g + hp["momentum"] * self.m[i] if name == "nesterov" else self.m[i]
            elif name == "adagrad":
                self.v[i] = self.v[i] + g**2
                den = np.sqrt(self.v[i] + eps) if hp["eps_in_sqrt"] else np.sqrt(self.v[i]) + eps
                u = g / den
            elif name == "rmsprop":
                rho = hp["rms_decay"]
                self.v[i] = rho * self.v[i] + (1 - rho) * g**2
                s = self.v[i]
                if hp["centered"]:
                    self.m[i] = rho * self.m[i] + (1 - rho) * g
                    s = s - self.m[i] ** 2
                u = g / (np.sqrt(s + eps) if hp["eps_in_sqrt"] else np.sqrt(s) + eps)
            elif name == "rprop":
                prod = g * self.m[i]
                grow = np.clip(
                    self.steps[i] * hp["rprop_eta_plus"], hp["rprop_min_step"], hp["rprop_max_step"]
                )
                shrink = np.clip(
                    self.steps[i] * hp["rprop_eta_minus"],
                    hp["rprop_min_step"],
                    hp["rprop_max_step"],
                )
                self.steps[i] = np.where(prod > 0, grow, np.where(prod < 0, shrink, self.steps[i]))
                self.m[i] = np.where(prod < 0, 0.0, np.sign(g))
                u = self.steps[i] * self.m[i]
            elif name in ("adam", "adamw", "lamb", "eve"):
                b1, b2 = hp["b1"], hp["b2"]
                self.m[i] = b1 * self.m[i] + (1 - b1) * g
                self.v[i] = b2 * self.v[i] + (1 - b2) * g**2
                m_hat = self.m[i] / (1 - b1 ** (t + 1))
                v_hat = self.v[i] / (1 - b2 ** (t + 1))
                u = m_hat / (np.sqrt(v_hat) + eps)
                if name == "eve":
                    u = u / self.d
            elif name == "esgd":
                u = g / (np.sqrt(self.v[i] / self.samples) + hp["esgd_eps"])
            else:
                raise ValueError(name)
            out.append(u)
        return out

    def step(self, params, grads, loss, hvp):
        hp = self.hp
        grads = [g.copy() for g in grads]
        if hp["grad_clip_value"] > 0:
            grads = [np.clip(g, -hp["grad_clip_value"], hp["grad_clip_value"]) for g in grads]
        if hp["grad_clip_norm"] > 0:
            norm = np.sqrt(sum(np.sum(g**2) for g in grads))
            if norm > hp["grad_clip_norm"]:
                grads = [g * hp["grad_clip_norm"] / norm for g in grads]
        wd, kind = hp["weight_decay"], hp["wd_type"]
        for i, p in enumerate(params):
            if wd > 0 and self.decayed(i, p) and kind == "l2":
                grads[i] = grads[i] + wd * p
            if wd > 0 and self.decayed(i, p) and kind == "l1":
                grads[i] = grads[i] + wd * np.sign(p)
        u = self.direction(grads, params, loss, hvp)
        for i, p in enumerate(params):
            if wd > 0 and self.decayed(i, p) and kind == "decoupled":
                u[i] = u[i] + wd * p
            if hp["name"] == "lamb":
                pn, un = np.linalg.norm(p), np.linalg.norm(u[i])
                u[i] = u[i] * (pn / un if pn > 0 and un > 0 else 1.0)
        lr = 1.0 if hp["name"] == "rprop" else hp["learning_rate"]
        self.t += 1
        return [p - lr * ui for p, ui in zip(params, u, strict=True)]


class Quadratic:
    """f(x) = 0.5 (x - x*)^T A (x - x*) + 1 over the concatenated leaves (sizes 4 and 6)."""

    shapes = [(4,), (2, 3)]
    names = ["a", "w"]

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
        self.A = q @ np.diag(np.linspace(0.5, 5.0, 10)) @ q.T
        self.x_star = rng.normal(size=10)
        self.init = [rng.normal(size=s) for s in self.shapes]

    def _flat(self, leaves):
        return np.concatenate([x.ravel() for x in leaves])

    def _split(self, x):
        return [x[:4].reshape(4), x[4:].reshape(2, 3)]

    def loss(self, leaves):
        e = self._flat(leaves) - self.x_star
        return 0.5 * e @ self.A @ e + 1.0

    def grad(self, leaves):
        return self._split(self.A @ (self._flat(leaves) - self.x_star))

    def hvp(self, leaves, v):
        return self._split(self.A @ self._flat(v))


class TinyMLP:
    """3 -> 4 (tanh) -> 1 regression with loss 0.5 * mean (y_hat - y)^2 + 0.1, backprop by hand.

    Leaves in tree order: dense0/bias (4,), dense0/kernel (3, 4), dense1/bias (1,),
    dense1/kernel (4, 1). Hessian-vector products by central differences of the gradient.
    """

    names = ["bias", "kernel", "bias", "kernel"]

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(8, 3))
        self.y = np.sin(self.x.sum(axis=1, keepdims=True))
        self.init = [
            0.1 * rng.normal(size=4),
            rng.normal(size=(3, 4)) / np.sqrt(3),
            0.1 * rng.normal(size=1),
            rng.normal(size=(4, 1)) / 2,
        ]

    def _forward(self, leaves):
        b0, w0, b1, w1 = leaves
        h = np.tanh(self.x @ w0 + b0)
        return h, h @ w1 + b1

    def loss(self, leaves):
        _, out = self._forward(leaves)
        return 0.5 * np.mean((out - self.y) ** 2) + 0.1

    def grad(self, leaves):
        _, w0, _, w1 = leaves
        h, out = self._forward(leaves)
        d = (out - self.y) / len(self.x)
        dh = (d @ w1.T) * (1 - h**2)
        return [dh.sum(axis=0), self.x.T @ dh, d.sum(axis=0), h.T @ d]

    def hvp(self, leaves, v, h: float = 1e-5):
        plus = self.grad([p + h * x for p, x in zip(leaves, v, strict=True)])
        minus = self.grad([p - h * x for p, x in zip(leaves, v, strict=True)])
        return [(a - b) / (2 * h) for a, b in zip(plus, minus, strict=True)]
