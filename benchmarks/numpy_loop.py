"""The plain per-seed NumPy loop of the lab's dynamics: the baseline the engine is measured
against (coherent spectral saddle, element-wise gradient, one run at a time)."""

from __future__ import annotations

import math

import numpy as np

from saddle.config import Config
from saddle.landscapes import landscape_arrays


def numpy_run(config: Config, seed: int, steps: int) -> float:
    """Run ``steps`` steps of ``config`` (coherent basis) with NumPy; returns the loss.

    The escape check is done every step, as the engine does, so the work matches.
    """
    if config.basis != "coherent":
        raise ValueError("numpy_run: coherent basis only")
    arrs = landscape_arrays(config)
    dt = np.float32 if config.dtype == "float32" else np.float64
    lam = (arrs["bulk"] * config.bulk_scale).astype(dt)
    r = config.escape_rank
    idx = np.arange(r)
    lam[idx, idx] = -config.gamma
    w_star = arrs["w_star"].astype(dt)
    rng = np.random.default_rng(seed)
    W = w_star.copy()
    sigma = dt(config.sigma or 0.0)
    lr = dt(config.learning_rate)
    opt = config.optimizer
    m1 = np.zeros_like(W)
    m2 = np.zeros_like(W)
    b1 = dt(config.b1 or 0.0)
    b2 = dt(config.b2 or 0.0)
    eps = dt(config.eps or 0.0)
    mom = dt(config.momentum or 0.0)
    loss = 0.0
    for t in range(1, steps + 1):
        X = W - w_star
        g = lam * X
        loss = 0.5 * float(np.sum(g * X))
        a = X[idx, idx]
        if math.sqrt(float(a @ a)) >= config.radius:
            break
        g += sigma * rng.standard_normal(W.shape, dtype=dt)
        if opt == "adamw":
            m1 = b1 * m1 + (1 - b1) * g
            m2 = b2 * m2 + (1 - b2) * g * g
            W = W - lr * (m1 / (1 - b1**t)) / (np.sqrt(m2 / (1 - b2**t)) + eps)
        elif opt == "sgd":
            m1 = mom * m1 + g
            W = W - lr * m1
        elif opt == "sign_descent":
            m1 = mom * m1 + g
            W = W - lr * np.sign(m1)
        elif opt == "normalized_gd":
            m1 = mom * m1 + g
            W = W - lr * m1 / max(float(np.linalg.norm(m1)), 1e-12)
        elif opt == "mano":
            m1 = mom * m1 + g
            k = (t - 1) % 2
            th = W / np.maximum(np.linalg.norm(W, axis=k, keepdims=True), eps)
            v = m1 - th * np.sum(m1 * th, axis=k, keepdims=True)
            v = v / np.maximum(np.linalg.norm(v, axis=k, keepdims=True), eps)
            W = W - lr * 0.2 * math.sqrt(W.shape[k]) * v
        else:
            raise ValueError(f"numpy_run: optimizer {opt!r} not supported")
    return loss
