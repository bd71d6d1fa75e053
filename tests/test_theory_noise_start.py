"""Muon from the saddle (a_0 = 0): the susceptibility of the orthogonalizer against finite
differences, the large-n limit against the quarter-circle double integral, the estimate against
the engine (16 x 16, polar and Newton-Schulz), and the assumptions where they must fail.

Cheap by design (about 5 s together): 16 x 16 runs of about 80 steps, 32 seeds each.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate

from saddle import theory
from saddle.config import Config
from saddle.optimizers import NS_COEFFS
from saddle.simulate import simulate
from saddle.stats import km_median
from saddle.theory import muon_noise_start as mns
from saddle.theory.diffusive import newton_schulz_np

BASE = dict(optimizer="muon", m=16, n=16, gamma=0.1, sigma=0.01, learning_rate=0.02,
            init_escape=0.0, radius=1.0)


def _orth_00(X, ns_steps):
    if ns_steps is None:
        u, _, vt = np.linalg.svd(X, full_matrices=False)
        return np.einsum("bi,bi->b", u[:, 0, :], vt[:, :, 0])
    return newton_schulz_np(X, ns_steps, tuple(NS_COEFFS))[:, 0, 0]


# The classical-location quadrature is a finite-n approximation: it leaves out the level
# repulsion of the smallest singular values and runs 2-7% below the Monte Carlo at n = 16-32.
QUADRATURE_ERROR = 0.08


@pytest.mark.parametrize("m, n, ns", [(16, 16, None), (24, 12, None), (16, 16, 5), (32, 32, 5)])
def test_susceptibility_against_finite_differences(m, n, ns):
    rng = np.random.default_rng(7)
    Z = rng.standard_normal((400, m, n))
    h = 1e-4
    up, down = Z.copy(), Z.copy()
    up[:, 0, 0] += h
    down[:, 0, 0] -= h
    d = (_orth_00(up, ns) - _orth_00(down, ns)) / (2 * h)
    mc, se = float(d.mean()), float(d.std() / math.sqrt(d.size))
    chi = mns.susceptibility(m, n, ns)
    assert abs(chi - mc) <= 3 * se + QUADRATURE_ERROR * mc, (chi, mc, se)


def test_susceptibility_large_n_is_the_quarter_circle_integral():
    # c = int int p(x) p(y)/(x + y), p(x) = sqrt(4 - x^2)/pi on [0, 2]
    p = lambda x: math.sqrt(max(4 - x * x, 0.0)) / math.pi
    c, _ = scipy.integrate.dblquad(lambda y, x: p(x) * p(y) / (x + y), 0, 2, 0, 2,
                                   epsabs=1e-6)
    n = 1500
    got = mns.susceptibility(n, n) * math.sqrt(n)
    assert got == pytest.approx(c, rel=0.01)
    assert 0.84 < c < 0.86


def _engine_median(c):
    res = simulate(c)
    t = np.array([x.escape_time if x.escaped else c.max_steps for x in res.runs], float)
    e = np.array([x.escaped for x in res.runs])
    return km_median(t, e).estimate, float(np.std(t))


# Model error: the estimate's measured miss on the regime map (4-run medians, 0.79-1.26 at
# D = 32^2 to 128^2) and at 16 x 16 with 64 seeds (0.98-1.00).
MODEL_ERROR = 0.15


@pytest.mark.parametrize("orth", ["polar", "newton_schulz"])
def test_median_against_the_engine(orth):
    c = Config.from_dict(**BASE, orthogonalizer=orth, seeds=32)
    r = theory.RESULTS["muon_noise_start_estimate"]
    pred = r.evaluate(c)
    c = c.replace(max_steps=int(2 * pred) + 1)
    assert r.assumptions_hold(c), [a.name for a, ok in r.check(c) if not ok]
    measured, sd = _engine_median(c)
    se = 1.2533 * sd / math.sqrt(c.seeds)  # the sample median's standard error
    print(f"\n[noise start] {orth}: predicted {pred:.1f}, simulated {measured:.1f}, "
          f"ratio {pred / measured:.3f}")
    assert abs(pred - measured) <= 3 * se + MODEL_ERROR * measured


def test_symbolic_matches_python_and_parts():
    c = Config.from_dict(**BASE)
    r = theory.RESULTS["muon_noise_start_estimate"]
    assert r.kind == "estimate" and r.quantity == "escape_time" and r in theory.applicable(c)
    assert r.evaluate(c) == pytest.approx(mns.noise_start_median(c), rel=1e-9)
    lp = mns.linear_phase(c)
    assert lp["g"] > 1 and lp["s"] > 0
    # the ballistic limit: at least (R - a_c)/(eta k_s), the largest response being <= 1
    a_c, t_c = mns._crossover(mns._key(c))
    assert t_c >= (c.radius - a_c) / c.learning_rate


ASSUMPTION_NAMES = ["muon", "spectral", "unstable", "no_quartic", "rank_one", "projection",
                    "noise_start", "no_decay", "momentum", "gaussian_bulk_noise",
                    "stable_bulk", "growth_phase", "exponential_escape", "budget"]


@pytest.mark.parametrize("change, fails", [
    (dict(noise="kronecker", noise_zipf=1.0), "gaussian_bulk_noise"),
    (dict(noise="lowrank", sigma=0.05, noise_coherence=1.0), "gaussian_bulk_noise"),
    (dict(gamma=0.0), "unstable"),
    (dict(init_escape=0.1), "noise_start"),
    (dict(quartic=0.05), "no_quartic"),
    (dict(bulk_scale=100.0), "stable_bulk"),
    (dict(max_steps=50), "budget"),
    (dict(sigma=0.5), "exponential_escape"),
])
def test_assumptions_fail_where_they_should(change, fails):
    r = theory.RESULTS["muon_noise_start_estimate"]
    assert [a.name for a in r.assumptions] == ASSUMPTION_NAMES
    base = Config.from_dict(**BASE, max_steps=3000)
    assert r.assumptions_hold(base)
    assert r.assumptions_hold(base.replace(noise="opnorm", sigma=0.2))
    assert r.assumptions_hold(base.replace(noise="student_t", noise_df=3.0))
    failed = [a.name for a, ok in r.check(base.replace(**change)) if not ok]
    assert fails in failed, failed


def test_stable_bulk_edge_is_where_the_engine_slows():
    """At 32 x 32, lr 0.02 the linear-response edge lies between lambda = 15 and 20; measured
    (16 seeds): simulated/estimated 0.95 at lambda = 1, 1.25 at 15, 1.5 at 20, 3.7 at 100."""
    c = Config.from_dict(**{**BASE, "m": 32, "n": 32})
    assert mns.bulk_spectral_radius(c.replace(bulk_scale=15.0)) < 1
    assert mns.bulk_spectral_radius(c.replace(bulk_scale=20.0)) > 1


def test_exponents_follow_the_scaling_argument():
    """Local exponents at the regime map's base (32^2 -> 64^2): under isotropic noise the
    matched_rms rate (eta ~ sqrt(n)) shortens the ballistic part, b < 0, and the fixed
    matched_spectral rate slows the linear phase (chi ~ n^{-1/2}), b > 0; under opnorm noise
    phase 1 is D-free, so matched_rms tends to the ballistic -1/4 and matched_spectral to 0."""
    base = Config.from_dict(optimizer="muon", m=32, n=32, gamma=0.1, sigma=0.01,
                            init_escape=0.0, orthogonalizer="newton_schulz", max_steps=3000)
    b = {(noise, p): theory.RESULTS[f"muon_noise_start_exponent_{p}"].evaluate(
            base.replace(noise=noise, sigma=sigma))
         for noise, sigma in (("isotropic", 0.01), ("opnorm", 0.2))
         for p in ("matched_rms", "matched_spectral")}
    assert -0.25 < b["isotropic", "matched_rms"] < 0 < b["isotropic", "matched_spectral"] < 0.25
    assert -0.25 < b["opnorm", "matched_rms"] < -0.15
    assert abs(b["opnorm", "matched_spectral"]) < 0.1
