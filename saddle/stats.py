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

__all__ = ["QuantileEstimate", "km_quantile", "km_median", "success_rate"]


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
