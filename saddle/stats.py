"""Censoring-aware escape-time statistics.

Escape times are right-censored: a run that reaches its step budget without escaping tells
us only that tau > max_steps. It is never dropped and never counted as max_steps. A run that
diverged did not escape within its budget and is treated the same way (censored at its
budget): divergence is a failure to escape, not an escape.

The Kaplan-Meier estimate comes from :func:`scipy.stats.ecdf` with
:class:`scipy.stats.CensoredData`; quantile confidence intervals invert its pointwise
confidence band (the Brookmeyer-Crowley construction).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.stats

__all__ = [
    "QuantileEstimate",
    "km_quantile",
    "km_median",
    "km_quantile_batch",
    "success_rate",
    "bootstrap_median_ci",
    "ExponentFit",
    "fit_exponent",
]


@dataclass(frozen=True)
class QuantileEstimate:
    """A Kaplan-Meier quantile with its confidence interval.

    ``estimate``, ``low`` and ``high`` are ``inf`` when the escape-time distribution does not
    reach that level within the observed budget (for example, a median when fewer than half
    the runs escaped); ``low`` is finite whenever any run escaped.
    """

    estimate: float
    low: float
    high: float
    level: float
    confidence: float

    def as_dict(self) -> dict:
        fin = lambda x: None if not math.isfinite(x) else float(x)
        return dict(estimate=fin(self.estimate), low=fin(self.low), high=fin(self.high))


def _first_reaching(quantiles: np.ndarray, probabilities: np.ndarray, level: float) -> float:
    hit = np.nonzero(probabilities >= level - 1e-12)[0]
    return float(quantiles[hit[0]]) if hit.size else math.inf


def km_quantile(
    times, escaped, level: float = 0.5, confidence: float = 0.95
) -> QuantileEstimate:
    """The ``level`` quantile of the escape time, accounting for censoring.

    Args:
        times: escape time for escaped runs; the censoring time (the budget) otherwise.
        escaped: boolean array, True where the run escaped.
        level: the quantile, e.g. 0.5 for the median.
        confidence: the confidence level of the interval.
    """
    t = np.asarray(times, dtype=float)
    e = np.asarray(escaped, dtype=bool)
    if t.shape != e.shape or t.ndim != 1:
        raise ValueError("km_quantile: times and escaped must be 1-D and of equal length")
    if t.size == 0:
        raise ValueError("km_quantile: no runs")
    if not e.any():
        return QuantileEstimate(math.inf, math.inf, math.inf, level, confidence)
    data = scipy.stats.CensoredData(uncensored=t[e], right=t[~e])
    res = scipy.stats.ecdf(data)
    q, p = res.cdf.quantiles, res.cdf.probabilities
    est = _first_reaching(q, p, level)
    if e.all() and np.unique(t).size == 1:
        return QuantileEstimate(est, est, est, level, confidence)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # scipy warns where the band is undefined (estimate 0 or 1); handled just below.
        warnings.simplefilter("ignore", RuntimeWarning)
        band = res.cdf.confidence_interval(confidence_level=confidence)
    # The band is undefined (NaN) where the estimate is 0 or 1; there it collapses onto the
    # estimate itself.
    hi_p = np.where(np.isnan(band.high.probabilities), p, band.high.probabilities)
    lo_p = np.where(np.isnan(band.low.probabilities), p, band.low.probabilities)
    low = _first_reaching(q, hi_p, level)
    high = _first_reaching(q, lo_p, level)
    return QuantileEstimate(est, low, high, level, confidence)


def km_median(times, escaped, confidence: float = 0.95) -> QuantileEstimate:
    """Kaplan-Meier median escape time with a confidence interval."""
    return km_quantile(times, escaped, 0.5, confidence)


def success_rate(escaped) -> float:
    e = np.asarray(escaped, dtype=bool)
    return float(e.mean()) if e.size else math.nan


def km_quantile_batch(times, escaped, level: float = 0.5) -> np.ndarray:
    """Kaplan-Meier ``level`` quantiles of many samples at once (for the bootstrap).

    ``times`` and ``escaped`` have shape (..., n); the quantile is taken over the last axis.
    The result equals :func:`km_quantile`'s estimate for each sample (ties: events before
    censorings at the same time) and is ``inf`` where the estimate never reaches ``level``.
    """
    t = np.asarray(times, dtype=float)
    e = np.asarray(escaped, dtype=bool)
    if t.shape != e.shape or t.ndim < 1 or t.shape[-1] == 0:
        raise ValueError(
            "km_quantile_batch: times and escaped must have one equal, non-empty shape")
    n = t.shape[-1]
    # Sort by time, events first among equal times.
    order = np.lexsort((~e, t), axis=-1)
    ts = np.take_along_axis(t, order, -1)
    es = np.take_along_axis(e, order, -1)
    at_risk = n - np.arange(n)
    factors = np.where(es, 1.0 - 1.0 / at_risk, 1.0)
    survival = np.cumprod(factors, axis=-1)
    reached = survival <= 1.0 - level + 1e-12
    first = np.argmax(reached, axis=-1)
    out = np.take_along_axis(ts, first[..., None], -1)[..., 0]
    return np.where(reached.any(axis=-1), out, np.inf)


def _encode(times, escaped) -> np.ndarray:
    """One number per run for the bootstrap: the time, negated where the run was censored."""
    t = np.asarray(times, dtype=float)
    return np.where(np.asarray(escaped, dtype=bool), t, -t)


def _decode(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.abs(x), x > 0


def bootstrap_median_ci(
    times, escaped, confidence: float = 0.95, n_resamples: int = 999, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the Kaplan-Meier median (scipy.stats.bootstrap).

    Runs are resampled whole (time and censoring indicator together). Returns ``(low, high)``;
    an end is ``inf`` when too many resamples have fewer than half their runs escaped.
    """
    x = _encode(times, escaped)
    if x.size < 2:
        raise ValueError("bootstrap_median_ci: need at least 2 runs")

    def stat(sample, axis=-1):
        return km_quantile_batch(*_decode(np.moveaxis(sample, axis, -1)))

    with np.errstate(invalid="ignore"):
        res = scipy.stats.bootstrap(
            (x,), stat, vectorized=True, n_resamples=n_resamples, confidence_level=confidence,
            method="percentile", rng=np.random.default_rng(seed),
        )
    lo, hi = res.confidence_interval
    return float(lo), float(hi)


@dataclass(frozen=True)
class ExponentFit:
    """log median = intercept + exponent * log D, fitted over dimensions.

    ``low``/``high`` are the percentile-bootstrap CI of the exponent, resampling runs within
    each dimension independently. ``dims`` lists the D values used (dimensions whose
    Kaplan-Meier median is not reached are left out and listed in ``dropped``).
    """

    exponent: float
    intercept: float
    low: float
    high: float
    confidence: float
    dims: tuple[int, ...]
    medians: tuple[float, ...]
    dropped: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        fin = lambda x: None if not math.isfinite(x) else float(x)
        return dict(exponent=fin(self.exponent), low=fin(self.low), high=fin(self.high),
                    intercept=fin(self.intercept), confidence=self.confidence,
                    dims=list(self.dims), medians=[fin(m) for m in self.medians],
                    dropped=list(self.dropped))

    def contains(self, b: float) -> bool:
        return self.low <= b <= self.high


def _slope(logd: np.ndarray, logm: np.ndarray) -> np.ndarray:
    """Least-squares slope of logm (..., k) against logd (k,)."""
    xc = logd - logd.mean()
    return (logm * xc).sum(-1) / (xc**2).sum()


def fit_exponent(
    samples: dict[int, tuple[np.ndarray, np.ndarray]],
    confidence: float = 0.95,
    n_resamples: int = 999,
    seed: int = 0,
) -> ExponentFit:
    """Fit the dimension exponent b in  tau_med = a * D^b  with a bootstrap CI.

    Args:
        samples: ``{D: (times, escaped)}``; censored runs carry their budget as the time.
        confidence: CI level.
        n_resamples: bootstrap resamples (runs are resampled within each D).

    A resample whose median is not reached at some D uses that D's largest observed time
    (a conservative cap) so that the CI stays defined; the point estimate uses only the
    dimensions whose median is reached, listed in ``dims``.
    """
    dims, medians, dropped, encoded = [], [], [], []
    for D in sorted(samples):
        t, e = samples[D]
        t = np.asarray(t, float)
        e = np.asarray(e, bool)
        med = float(km_quantile_batch(t, e))
        if not math.isfinite(med) or med <= 0:
            dropped.append(int(D))
            continue
        dims.append(int(D))
        medians.append(med)
        encoded.append(_encode(t, e))
    if len(dims) < 2:
        nan = math.nan
        return ExponentFit(nan, nan, nan, nan, confidence, tuple(dims), tuple(medians),
                           tuple(dropped))
    logd = np.log(np.asarray(dims, float))
    logm = np.log(np.asarray(medians))
    b = float(_slope(logd, logm))
    a = float(logm.mean() - b * logd.mean())
    caps = [np.abs(x).max() for x in encoded]

    def stat(*xs, axis=-1):
        meds = []
        for x, cap in zip(xs, caps, strict=True):
            m = km_quantile_batch(*_decode(np.moveaxis(x, axis, -1)))
            meds.append(np.log(np.minimum(m, cap)))
        return _slope(logd, np.stack(meds, axis=-1))

    if all(x.size >= 2 for x in encoded):
        res = scipy.stats.bootstrap(
            tuple(encoded), stat, vectorized=True, n_resamples=n_resamples,
            confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
        )
        lo, hi = (float(v) for v in res.confidence_interval)
    else:
        lo = hi = math.nan
    return ExponentFit(b, a, lo, hi, confidence, tuple(dims), tuple(medians), tuple(dropped))
