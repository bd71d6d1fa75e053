"""Censoring-aware statistics: agreement with scipy and CI coverage on known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from saddle.stats import bootstrap_median_ci, fit_exponent, km_median, km_quantile_batch


def _censored_exponential(rng, median, n, budget):
    t = rng.exponential(median / math.log(2), n)
    e = t <= budget
    return np.where(e, np.ceil(t), budget), e


def test_batch_km_equals_scipy_ecdf():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        t = rng.integers(1, 15, n).astype(float)  # many ties
        e = rng.random(n) < rng.uniform(0.2, 1.0)
        for level in (0.25, 0.5, 0.75):
            from saddle.stats import km_quantile

            want = km_quantile(t, e, level).estimate
            got = float(km_quantile_batch(t, e, level))
            assert got == want or (math.isinf(got) and math.isinf(want))


def _binomial_band(p, reps, z=3.0):
    return z * math.sqrt(p * (1 - p) / reps)


def _coverage(seed, reps, n, true, budget, interval) -> float:
    """How often ``interval(times, events, rep)`` covers the true median of censored
    exponential escape times."""
    rng = np.random.default_rng(seed)
    hit = 0
    for i in range(reps):
        t, e = _censored_exponential(rng, true, n, budget=budget)
        lo, hi = interval(t, e, i)
        hit += lo <= true <= hi
    return hit / reps


def test_km_median_ci_coverage():
    """The 95% CI covers the true median at the nominal rate (within 3 binomial SEs)."""
    reps = 400

    def km(t, e, _):
        q = km_median(t, e)
        return q.low, q.high

    cov = _coverage(2, reps, 40, 100.0, 250, km)
    # Discrete (ceil) times make the interval slightly conservative; never much below 0.95.
    assert cov >= 0.95 - _binomial_band(0.95, reps), cov
    assert cov <= 1.0


def test_bootstrap_median_ci_coverage():
    reps = 300
    cov = _coverage(3, reps, 60, 50.0, 10_000,
                    lambda t, e, i: bootstrap_median_ci(t, e, n_resamples=499, seed=i))
    # Percentile bootstrap of a median is known to under-cover slightly at small n: allow
    # 3 binomial SEs plus 2 points.
    assert abs(cov - 0.95) <= _binomial_band(0.95, reps) + 0.02, cov


@pytest.mark.parametrize("b_true", [0.0, 0.5, 1.0])
def test_exponent_fit_recovers_b_and_its_ci_covers(b_true):
    rng = np.random.default_rng(int(10 * b_true) + 4)
    dims = [256, 1024, 4096, 16384]
    reps, n = 120, 32
    hit, estimates = 0, []
    for i in range(reps):
        samples = {}
        for D in dims:
            med = 20.0 * (D / 256) ** b_true
            samples[D] = _censored_exponential(rng, med, n, budget=10**9)
        fit = fit_exponent(samples, n_resamples=399, seed=i)
        estimates.append(fit.exponent)
        hit += fit.low <= b_true <= fit.high
    est = np.asarray(estimates)
    se = est.std(ddof=1) / math.sqrt(reps)
    assert abs(est.mean() - b_true) < 4 * se + 0.02
    cov = hit / reps
    assert abs(cov - 0.95) <= _binomial_band(0.95, reps) + 0.03, cov


def test_exponent_fit_drops_dimensions_without_a_median():
    rng = np.random.default_rng(5)
    samples = {D: _censored_exponential(rng, 10.0 * D**0.25, 30, budget=10**6) for D in
               (100, 1000, 10000)}
    samples[100000] = (np.full(30, 50.0), np.zeros(30, bool))  # nothing escaped
    fit = fit_exponent(samples, n_resamples=199)
    assert fit.dropped == (100000,) and fit.dims == (100, 1000, 10000)
    assert 0.0 < fit.exponent < 0.5
