"""Mano's norm clock, the linear network's gradient-flow time and the rank-r escape laws:
each result against an independent reference (the optimizer's own arithmetic, the engine)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saddle import theory
from saddle.config import Config
from saddle.optimizers import mano_direction
from saddle.simulate import simulate
from saddle.theory.mano import lq, norm_clock_steps

CLOCK = theory.RESULTS["mano_norm_clock"]


def _mano_cfg(**kw):
    base = dict(optimizer="mano", m=16, n=16, learning_rate=0.02, basis="partial",
                noise="isotropic", sigma=0.01, gamma=0.1, radius=1.0, seeds=4, max_steps=600)
    return Config.from_dict(**{**base, **kw})


# ---- Mano v1: the Frobenius norm clock -----------------------------------------------------


def test_mano_norm_recursion_is_exact():
    """N_{t+1} = (1 - u) N_t + 0.04 eta^2 D for any momentum, from W = 0 (the clock's
    identity), with the lab's own v1 direction (mano_direction: the tangent projection and
    the slice normalization) on random, state-dependent momenta, axes alternating."""
    m, n, eta, wd = 8, 12, 0.05, 0.3
    u = eta * wd * (2 - eta * wd)
    W = jnp.zeros((m, n), jnp.float32)
    norms, pred = [0.0], [0.0]
    direction = jax.jit(mano_direction, static_argnums=(2, 3))
    rng = np.random.default_rng(3)
    for t in range(8):
        M = rng.standard_normal((m, n)).astype(np.float32) + 0.5 * W  # any, state-dependent
        axis = t % 2
        step = direction(M, W, axis, "v1", 1e-8) * (0.2 * np.sqrt((m, n)[axis]))
        W = (1 - eta * wd) * W - eta * step
        norms.append(float(jnp.sum(W.astype(jnp.float64) ** 2)))
        pred.append((1 - u) * pred[-1] + 0.04 * eta**2 * m * n)
    np.testing.assert_allclose(norms, pred, rtol=2e-5, atol=1e-9)


def test_mano_clock_closed_form_matches_recursion():
    cfg = _mano_cfg(weight_decay=0.05, init_escape=0.3)
    eta, lam, d = 0.02, 0.05, 256
    u, delta = eta * lam * (2 - eta * lam), 0.04 * eta**2 * d
    big_n, t = 0.09, 0
    while big_n < 1.0:
        big_n, t = (1 - u) * big_n + delta, t + 1
    assert CLOCK.evaluate(cfg) == t == np.ceil(norm_clock_steps(cfg))
    assert lq(5.0, 0.0) == 5.0 and lq(2.0, 0.6) == np.inf


def test_mano_clock_bounds_and_nearly_meets_the_engine():
    cfg = _mano_cfg(weight_decay=0.05, max_steps=400)
    assert CLOCK.assumptions_hold(cfg)
    bound = CLOCK.evaluate(cfg)
    tau = np.array([r.escape_time if r.escaped else np.inf for r in simulate(cfg).runs])
    assert np.all(tau >= bound)
    # a dense basis turns W onto E while the clock runs (>= 150 steps here): tight
    estimate = theory.RESULTS["mano_clock_estimate"]
    assert estimate.assumptions_hold(cfg) and estimate.evaluate(cfg) == bound
    assert np.median(tau) <= 1.1 * bound


def test_mano_decay_caps_the_norm_below_the_radius():
    cfg = _mano_cfg(weight_decay=0.5, max_steps=300, seeds=2)
    assert CLOCK.assumptions_hold(cfg) and CLOCK.evaluate(cfg) is None  # infinite
    assert not any(r.escaped for r in simulate(cfg).runs)


def test_mano_clock_assumptions_fail_elsewhere():
    coherent = _mano_cfg(basis="coherent")
    assert CLOCK.assumptions_hold(coherent)  # a theorem on every basis
    assert not theory.RESULTS["mano_clock_estimate"].assumptions_hold(coherent)
    for kw in (dict(optimizer="muon"), dict(variant="v2"), dict(saddle_point="random"),
               dict(init="random"), dict(escape="loss", loss_drop=0.1)):
        assert not CLOCK.assumptions_hold(_mano_cfg(**kw)), kw


# ---- the two-layer linear network: plain SGD from a small random start ---------------------

NET = theory.RESULTS["network_gd_escape"]


def _net_cfg(**kw):
    base = dict(landscape="linear_network", m=8, n=8, width=16, optimizer="sgd",
                learning_rate=0.8, noise="none", init="random", init_scale=1e-3,
                escape="loss", loss_drop=0.05, seeds=8, max_steps=400)
    return Config.from_dict(**{**base, **kw})


def test_network_estimate_is_the_flow_at_small_rate():
    from saddle.networks import gd_plateau

    cfg = _net_cfg(learning_rate=1e-3, max_steps=100_000)
    assert NET.assumptions_hold(cfg) and NET.applies_to(cfg)
    assert NET.evaluate(cfg) == pytest.approx(gd_plateau(cfg)["crossing_steps"], rel=2e-3)


@pytest.mark.parametrize("lr", [0.8, 0.05])
def test_network_estimate_against_engine(lr):
    """The per-step rate 2 ln(1 + eta s) against the network itself, at eta s = 0.8 (where
    the flow's count is 30% short) and 0.05 (flow-like): the median within one step (rounding
    and the chi-square spread of c_0, about sqrt(2/h) / (2 ln(1 + eta s)) steps)."""
    cfg = _net_cfg(learning_rate=lr)
    assert NET.assumptions_hold(cfg)
    tau = np.array([r.escape_time if r.escaped else np.inf for r in simulate(cfg).runs])
    est = NET.evaluate(cfg)
    spread = np.sqrt(2 / 16) / (2 * np.log1p(lr))
    assert abs(np.median(tau) - est) <= 1 + spread / np.sqrt(tau.size) * 3


def test_network_result_assumptions_fail_elsewhere():
    assert not NET.applies_to(_mano_cfg(optimizer="sgd"))  # the spectral saddle
    for kw in (dict(optimizer="adamw"), dict(momentum=0.9), dict(teacher_rank=2),
               dict(learning_rate=2.5), dict(init="saddle"),
               dict(noise="minibatch", minibatch_size=1)):  # kicks 0.85 eps a step
        assert not NET.assumptions_hold(_net_cfg(**kw)), kw


# ---- escape rank r > 1 ---------------------------------------------------------------------

RANK_SGD = theory.RESULTS["sgd_escape_mean_rank_r"]
SPEED = theory.RESULTS["muon_speed_limit"]


def _sgd_rank_cfg(r, a0=0.0, **kw):
    base = dict(optimizer="sgd", m=8, n=8, escape_rank=r, learning_rate=0.1, gamma=0.2,
                noise="isotropic", sigma=0.01, radius=1.0, basis="coherent",
                init_escape=a0, max_steps=2000)
    return Config.from_dict(**{**base, **kw})


def test_rank_law_reduces_to_rank_one():
    for a0 in (0.0, 0.01):
        cfg = _sgd_rank_cfg(1, a0)
        assert RANK_SGD.evaluate(cfg) == pytest.approx(theory.RESULTS["sgd_escape_mean"]
                                                       .evaluate(cfg), rel=1e-12)


@pytest.mark.parametrize("r, a0", [(2, 0.0), (3, 0.01)])
def test_rank_sgd_law_against_recursion(r, a0, runs=4000):
    from saddle.theory.rank import simulate_rank_sgd

    cfg = _sgd_rank_cfg(r, a0)
    assert RANK_SGD.assumptions_hold(cfg)
    tau = simulate_rank_sgd(0.1, 0.2, 0.01, a0, 1.0, r, runs, np.random.default_rng(r))
    assert (tau > 0).all()
    se = tau.std(ddof=1) / np.sqrt(runs)
    assert abs(tau.mean() - RANK_SGD.evaluate(cfg)) <= 4 * se


def test_rank_sgd_law_against_engine():
    cfg = _sgd_rank_cfg(3, seeds=200, dtype="float64")
    tau = np.array([r.escape_time for r in simulate(cfg).runs], float)
    assert np.all(tau > 0)
    se = tau.std(ddof=1) / np.sqrt(tau.size)
    # the r = 3 law, not the rank-one one (1/ln g = 11 steps, > 4 SE, earlier)
    assert abs(tau.mean() - RANK_SGD.evaluate(cfg)) <= 4 * se
    assert theory.RESULTS["sgd_escape_mean"].evaluate(cfg) - tau.mean() > 4 * se


def test_muon_speed_limit_against_engine():
    cfg = Config.from_dict(optimizer="muon", orthogonalizer="polar", m=8, n=8, escape_rank=3,
                           learning_rate=0.02, init_escape=0.05, noise="isotropic",
                           sigma=0.01, gamma=0.1, seeds=8, max_steps=400)
    assert SPEED.assumptions_hold(cfg)
    bound = SPEED.evaluate(cfg)
    assert bound == np.ceil(0.95 / (0.02 * np.sqrt(3)))
    tau = np.array([r.escape_time if r.escaped else np.inf for r in simulate(cfg).runs])
    assert np.all(tau >= bound) and np.median(tau) <= 2 * bound
    assert not SPEED.assumptions_hold(cfg.replace(weight_decay=0.1))
