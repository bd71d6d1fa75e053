"""The quartic cap: the bulk spread, the drift-reduced escape estimates and the cliff
(saddle.theory.quartic), against independent references: a Monte-Carlo run of the scalar
bulk recursion, and small engine simulations inside the results' assumptions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from saddle import theory
from saddle.config import Config
from saddle.simulate import simulate
from saddle.theory.quartic import (
    QUARTIC_ADAMW_ESCAPE,
    QUARTIC_CLIFF,
    QUARTIC_SGD_ESCAPE,
    bulk_spread,
    critical_quartic,
    entry_variance,
    window_margin,
)

# 64x64 coherent, gamma = 0.1, bulk lambda = 0.5: the spread S is 0.3-0.5, so the drift
# alone closes the window at the larger kappa (gamma/kappa > R^2 = 1 in both cases).
BASE = dict(m=64, n=64, basis="coherent", noise="isotropic", gamma=0.1, radius=1.0,
            bulk_scale=0.5)
CASES = {
    "sgd": dict(optimizer="sgd", learning_rate=0.3, sigma=0.02),
    "adamw": dict(optimizer="adamw", learning_rate=0.009, sigma=0.01),
}
KAPPAS = {"sgd": (0.05, 0.085), "adamw": (0.065, 0.09)}  # (open, closed)
ESTIMATE = {"sgd": QUARTIC_SGD_ESCAPE, "adamw": QUARTIC_ADAMW_ESCAPE}


def _cfg(opt, kappa, **kw):
    return Config.from_dict(**BASE, **CASES[opt], quartic=kappa, **kw)


def test_registered_with_quantities():
    for name in ("quartic_sgd_escape", "quartic_adamw_escape", "quartic_bulk_spread",
                 "quartic_cliff"):
        r = theory.RESULTS[name]
        assert r.kind == "estimate" and r.page == "quartic"
    assert theory.RESULTS["quartic_sgd_escape"].quantity == "escape_time"
    assert theory.RESULTS["quartic_cliff"].quantity == "critical_quartic"


def test_assumptions_fail_outside_the_quartic_regime():
    c = _cfg("sgd", 0.05)
    assert QUARTIC_SGD_ESCAPE.assumptions_hold(c.replace(max_steps=5000))
    names = {a.name for a, ok in QUARTIC_SGD_ESCAPE.check(c.replace(quartic=0.0)) if not ok}
    assert "quartic" in names
    names = {a.name for a, ok in QUARTIC_SGD_ESCAPE.check(c.replace(bulk="power_law"))
             if not ok}
    assert "constant_bulk" in names
    a = _cfg("adamw", 0.065)
    names = {x.name for x, ok in QUARTIC_ADAMW_ESCAPE.check(a.replace(basis="structured"))
             if not ok}
    assert names == {"coherent"}


@pytest.mark.parametrize("beta, nesterov, h, lam", [(0.9, False, 0.5, 1.0),
                                                    (0.95, True, 0.3, 1.0),
                                                    (0.0, False, 0.3, 0.5)])
def test_entry_variance_against_scalar_recursion(beta, nesterov, h, lam):
    """The Lyapunov variance against a direct run of g = lam x + sig xi, M' = beta M +
    (1 - beta) g, u = (1 - beta) g + beta M' (Nesterov) or M', x' = x - h u."""
    sig, chains, steps, burn = 0.01, 4000, 1500, 500
    rng = np.random.default_rng(3)
    x = np.zeros(chains)
    M = np.zeros(chains)
    acc = []
    for t in range(steps):
        g = lam * x + sig * rng.standard_normal(chains)
        M = beta * M + (1 - beta) * g
        u = (1 - beta) * g + beta * M if nesterov else M
        x = x - h * u
        if t >= burn:
            acc.append(np.mean(x * x))
    var, _ = entry_variance(h, lam, sig, beta, nesterov)
    got = float(np.mean(acc))
    # chains are independent; the time average over 1000 correlated steps: a 3% tolerance is
    # > 4 standard errors here
    assert got == pytest.approx(var, rel=0.03)


def test_sgd_spread_is_the_ar1_variance():
    c = _cfg("sgd", 0.0)
    eta, sig, lam = 0.3, 0.02, 0.5
    assert bulk_spread(c) == pytest.approx((64 * 64 - 1) * eta * sig**2
                                           / (lam * (2 - eta * lam)), rel=1e-9)


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_open_window_escape_time_against_engine(opt):
    """kappa below kappa_c: the estimate against the engine's mean escape time."""
    kappa = KAPPAS[opt][0]
    c = _cfg(opt, kappa, seeds=32, max_steps=600)
    assert kappa < critical_quartic(c) and window_margin(c) > 0
    est = ESTIMATE[opt]
    assert all(ok for a, ok in est.check(c) if a.name != "budget")
    res = simulate(c)
    tau = np.array([r.escape_time for r in res.runs], float)
    assert all(r.escaped for r in res.runs)
    pred = est.evaluate(c)
    se = tau.std(ddof=1) / math.sqrt(tau.size)
    # estimate error (constant-S logistic phase, mean-field spread) up to 8% beside 4 se
    assert abs(tau.mean() - pred) <= 4 * se + 0.08 * pred


SPREAD_CASES = {
    "sgd": (dict(optimizer="sgd", learning_rate=0.3), 0.10),
    "adamw": (dict(optimizer="adamw", learning_rate=0.009), 0.10),
    # the normalized-momentum model of Muon is an approximation (within 2% here, 8-12% low
    # at 32^2 to 128^2, 25-30% high at the matched-RMS rates): a looser tolerance
    "muon": (dict(optimizer="muon", learning_rate=0.02, orthogonalizer="newton_schulz"), 0.25),
}


@pytest.mark.parametrize("opt", sorted(SPREAD_CASES))
def test_bulk_spread_against_engine_trace(opt):
    """The measured ||X_perp||_F^2 (16x16, steps 60-150, a kept small by a 0.01 escape rate)
    against bulk_spread."""
    kw, tol = SPREAD_CASES[opt]
    c = Config.from_dict(m=16, n=16, basis="coherent", noise="isotropic", sigma=0.01,
                         gamma=0.01, radius=10.0, bulk_scale=1.0, quartic=0.0, seeds=8,
                         max_steps=150, **kw)
    res = simulate(c, trace_stride=5)
    s_meas = np.mean([np.mean(np.asarray(tr["orthogonal_drift"])[12:] ** 2)
                      for tr in res.traces])
    # S sums 255 entries (a ~9% spread a sample), averaged over 8 runs and ~4 relaxation
    # times: about 3% statistical error
    assert s_meas == pytest.approx(bulk_spread(c), rel=tol)


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_closed_window_is_censored(opt):
    """kappa above kappa_c (the drift closes the window, gamma/kappa > R^2 alone would not):
    the estimate is None and no run escapes within 400 steps, ~2-3x the open-window time."""
    kappa = KAPPAS[opt][1]
    c = _cfg(opt, kappa, seeds=8, max_steps=400)
    assert c.gamma / kappa > c.radius**2
    assert kappa > QUARTIC_CLIFF.evaluate(c) and window_margin(c) < 0
    assert ESTIMATE[opt].evaluate(c) is None
    res = simulate(c)
    assert not any(r.escaped for r in res.runs)


@pytest.mark.parametrize("lr", [0.05, 0.2])
def test_reduces_to_the_plain_laws_as_kappa_vanishes(lr):
    """kappa -> 0: the SGD estimate is the SGD law; AdamW's differs from the plain two-phase
    estimate only by the noise floor in phase 2's second moment (a few % slower)."""
    c = Config.from_dict(m=32, n=32, basis="coherent", noise="isotropic", sigma=0.01,
                         gamma=0.1, radius=1.0, optimizer="sgd", learning_rate=lr,
                         max_steps=30000)
    plain = theory.RESULTS["sgd_escape_mean"].evaluate(c)
    assert QUARTIC_SGD_ESCAPE.evaluate(c.replace(quartic=1e-12)) == pytest.approx(plain,
                                                                                 rel=1e-6)
    # kappa itself moves the estimate: the logistic term and the spread both slow it
    assert QUARTIC_SGD_ESCAPE.evaluate(c.replace(quartic=0.05)) > plain * 1.01
    a = c.replace(optimizer="adamw", learning_rate=lr / 20)
    plain = theory.RESULTS["adamw_escape_estimate"].evaluate(a)
    assert QUARTIC_ADAMW_ESCAPE.evaluate(a.replace(quartic=1e-12)) == pytest.approx(plain,
                                                                                   rel=0.1)
