"""Censoring-aware escape-time statistics.

Escape times are right-censored: a run that reaches its step budget without escaping tells
us only that tau > max_steps. It is never dropped and never counted as max_steps. A run that
diverged did not escape within its budget and is treated the same way (censored at its
budget): divergence is a failure to escape, not an escape.

The Kaplan-Meier estimate comes from :func:`scipy.stats.ecdf` with
:class:`scipy.stats.CensoredData`; quantile confidence intervals invert its pointwise
confidence band (the Brookmeyer-Crowley construction).

Dimension exponents (:func:`fit_exponent`) come from a log-normal accelerated-failure-time
model fitted to every run at every D:

    log tau = a + b log D + s eps,    eps ~ N(0, 1),

so b is the exponent of the median escape time, tau_med = e^a D^b. The fit is maximum
likelihood with right censoring: an escaped run contributes its log density, a censored run
its log survival log P(tau > budget). No D is dropped, however heavily censored. The CI of b
is a percentile bootstrap that refits resampled data sets: within each D it resamples the
landscape draws, then the runs within each chosen draw (only runs, when draws are not given).
Its ends are moved away from the estimate by sqrt(k / (k - 1)) * t(df) / z, k the resampled
units per D and df their total less 3: a stratified bootstrap of few units is otherwise too
narrow (0.90 instead of 0.95 at 8 runs per D). The Wald standard error from the observed
information is reported beside it.

A series is a *cliff* when at some D more than half the runs are censored (the Kaplan-Meier
median is not reached there): the fit is still reported, those D are listed, and when the
largest D is among them no verdict "b = 0" (dimension-free) is possible. It is
*insufficient* (b is NaN) when fewer than two D hold runs, or fewer than two D hold an escape
(the likelihood then has no maximum in b).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special
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


METHOD = "log-normal AFT, censored MLE; cluster bootstrap over landscape draws and runs"


@dataclass(frozen=True)
class ExponentFit:
    """log tau = intercept + exponent * log D + scale * eps, eps ~ N(0, 1), censored MLE.

    ``exponent`` is b, the exponent of the median escape time in D. ``low``/``high`` are the
    widened percentile cluster-bootstrap CI of b at ``confidence``; ``se`` is the Wald standard
    error of b from the observed information. ``dims`` lists every D with runs (all of them
    enter the fit); ``medians`` holds their Kaplan-Meier medians (``inf`` where not reached) and
    ``censored_dims`` the D whose median is not reached. ``outcome`` is "fit", "cliff" (some D
    has its median unreached; the fit is still reported) or "insufficient" (exponent NaN).
    ``dimension_free_possible`` is False when the largest D's median is unreached: no verdict of
    "b = 0" can be drawn then.
    """

    exponent: float
    intercept: float
    low: float
    high: float
    confidence: float
    dims: tuple[int, ...]
    medians: tuple[float, ...]
    censored_dims: tuple[int, ...]
    outcome: str
    dimension_free_possible: bool
    scale: float
    se: float
    runs: int
    censored_runs: int
    n_dims: int
    n_clusters: int
    method: str = METHOD

    def as_dict(self) -> dict:
        fin = lambda x: None if not math.isfinite(x) else float(x)
        return dict(exponent=fin(self.exponent), intercept=fin(self.intercept),
                    low=fin(self.low), high=fin(self.high), confidence=self.confidence,
                    dims=list(self.dims), medians=[fin(m) for m in self.medians],
                    censored_dims=list(self.censored_dims), outcome=self.outcome,
                    dimension_free_possible=self.dimension_free_possible,
                    scale=fin(self.scale), se=fin(self.se), runs=self.runs,
                    censored_runs=self.censored_runs, n_dims=self.n_dims,
                    n_clusters=self.n_clusters, method=self.method)

    def contains(self, b: float) -> bool:
        return self.low <= b <= self.high


# The likelihood is written in Olsen's parametrization theta = (g0, g1, r) with r = 1/s and
# (g0, g1) = (a, b) / s: with z = r*y - g0 - g1*x, an escape contributes -log r + z^2/2 and
# a censored run -log Phi(-z) to the negative log-likelihood, both convex in theta, so Newton
# steps with backtracking reach the unique optimum from any start. The gradient and Hessian
# are hand-written rather than left to finite differences or autodiff: the bootstrap refits
# hundreds of resamples at once (one batched Newton iteration for all of them), and the
# result is the same on every machine.
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _aft_nll(theta, v, event, w):
    """Negative log-likelihood, gradient and Hessian for a batch of weightings.

    theta (B, 3); v (n, 3) rows (-1, -x, y); event (n,) bool; w (B, n) run weights.
    Returns f (B,), g (B, 3), H (B, 3, 3); f is inf where r <= 0.
    """
    r = theta[:, 2]
    ok = r > 0
    z = theta @ v.T
    zc = np.where(event, 0.0, z)
    log_sf = scipy.special.log_ndtr(-zc)
    mills = np.exp(-0.5 * zc**2 - _LOG_SQRT_2PI - log_sf)
    g1 = np.where(event, z, mills)
    g2 = np.where(event, 1.0, np.clip(mills * (mills - zc), 0.0, 1.0))
    we = w @ event.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.where(ok, np.log(np.where(ok, r, 1.0)), -np.inf)
        f = (w * np.where(event, 0.5 * z**2, -log_sf)).sum(1) - we * log_r
        inv_r = np.where(ok, 1.0 / np.where(ok, r, 1.0), 0.0)
    f = np.where(ok, f, np.inf)
    grad = (w * g1) @ v
    grad[:, 2] -= we * inv_r
    hess = ((w * g2) @ (v[:, :, None] * v[:, None, :]).reshape(len(v), 9)).reshape(-1, 3, 3)
    hess[:, 2, 2] += we * inv_r**2
    return f, grad, hess


def _aft_newton(theta, v, event, w, max_iter: int = 60, tol: float = 1e-12):
    """Damped Newton on every row of ``w`` at once, from ``theta`` (B, 3).

    Returns (theta, converged); a row does not converge when its likelihood has no maximum
    (e.g. escapes at a single D with the other D censored above it: b runs off to infinity).
    """
    theta = np.array(theta, dtype=float)
    done = np.zeros(len(theta), bool)
    for _ in range(max_iter):
        f, g, h = _aft_nll(theta, v, event, w)
        h = h + 1e-12 * np.eye(3)
        step = -np.linalg.solve(h, g[..., None])[..., 0]
        decrement = -(g * step).sum(1)
        done = done | (decrement < tol * np.maximum(1.0, np.abs(f)))
        if done.all():
            break
        t = np.where(done, 0.0, 1.0)
        for _ in range(40):
            f_try = _aft_nll(theta + t[:, None] * step, v, event, w)[0]
            bad = ~(f_try <= f - 1e-4 * t * decrement) & (t > 0)
            if not bad.any():
                break
            t = np.where(bad, 0.5 * t, t)
        theta = theta + np.where(t[:, None] > 2.0**-39, t[:, None] * step, 0.0)
    return theta, done


def _aft_mle(x, y, event):
    """Point estimate (scipy.optimize trust-exact, polished by Newton) in Olsen's form."""
    A = np.column_stack([np.ones_like(x), x])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    s0 = max(float(np.std(y - A @ coef)), 0.1)
    theta0 = np.array([coef[0], coef[1], 1.0]) / s0
    v = np.column_stack([-np.ones_like(x), -x, y])
    w = np.ones((1, len(x)))

    def fun(th):
        f, g, _ = _aft_nll(th[None], v, event, w)
        return f[0], g[0]

    def hess(th):
        return _aft_nll(th[None], v, event, w)[2][0]

    res = scipy.optimize.minimize(fun, theta0, jac=True, hess=hess, method="trust-exact",
                                  options=dict(gtol=1e-9, maxiter=200))
    theta, converged = _aft_newton(res.x[None], v, event, w)
    return theta[0], bool(converged[0]), v


def _wald_se(theta, v, event) -> float:
    """Standard error of b = g1 / r from the inverse observed information (delta method)."""
    _, _, h = _aft_nll(theta[None], v, event, np.ones((1, len(v))))
    g1, r = theta[1], theta[2]
    grad_b = np.array([0.0, 1.0 / r, -g1 / r**2])
    try:
        var = float(grad_b @ np.linalg.solve(h[0], grad_b))
    except np.linalg.LinAlgError:
        return math.nan
    return math.sqrt(var) if var > 0 else math.nan


def _bootstrap_weights(dim_of_run, cluster_of_run, n_resamples: int, rng) -> np.ndarray:
    """Run weights (n_resamples, n) of a two-stage bootstrap within each D.

    At each D the landscape draws are resampled with replacement, then the runs of each
    chosen draw are resampled with replacement (as many as the draw holds, once per time it
    was chosen). With one draw per D this is the ordinary bootstrap of runs within each D.
    """
    w = np.zeros((n_resamples, len(dim_of_run)))
    for d in np.unique(dim_of_run):
        rows_d = np.nonzero(dim_of_run == d)[0]
        _, draw = np.unique(cluster_of_run[rows_d], return_inverse=True)
        k = int(draw.max()) + 1
        chosen = rng.multinomial(k, np.full(k, 1.0 / k), size=n_resamples)
        for j in range(k):
            rows = rows_d[draw == j]
            w[:, rows] = rng.multinomial(chosen[:, j] * rows.size, np.full(rows.size,
                                                                           1.0 / rows.size))
    return w


def _bootstrap_exponents(theta, v, event, w) -> np.ndarray:
    """b of every resample, refitted from the point estimate; +-inf where it runs off."""
    theta_b, converged = _aft_newton(np.repeat(theta[None], len(w), 0), v, event, w)
    b_hat = theta[1] / theta[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        b = theta_b[:, 1] / theta_b[:, 2]
    runaway = ~converged & ~(np.abs(b - b_hat) < 1.0)
    return np.where(runaway, np.where(b < b_hat, -np.inf, np.inf), b)


def _percentile_ci(values: np.ndarray, confidence: float, center: float = 0.0,
                   expand: float = 1.0) -> tuple[float, float]:
    """Percentile interval without interpolation (so infinite resamples stay infinite), its
    ends moved away from ``center`` by the factor ``expand``."""
    v = np.sort(values)
    n = v.size
    lo = v[max(int(math.floor((1 - confidence) / 2 * n)), 0)]
    hi = v[min(int(math.ceil((1 + confidence) / 2 * n)) - 1, n - 1)]
    with np.errstate(invalid="ignore"):
        return float(center + expand * (lo - center)), float(center + expand * (hi - center))


def _expansion(units_per_dim: np.ndarray, confidence: float) -> float:
    """Small-sample widening of the stratified percentile interval.

    Resampling k units with replacement within a D shrinks the variance by (k - 1) / k, and
    the normal quantile understates a slope whose residual scale is estimated from few units:
    the interval is widened by sqrt(mean k / (k - 1)) times t(df) / z, df = units - 3.
    """
    k = units_per_dim.astype(float)
    shrink = float(np.mean(np.where(k > 1, k / np.maximum(k - 1, 1), 1.0)))
    df = max(float(k.sum()) - 3, 1.0)
    q = (1 + confidence) / 2
    return math.sqrt(shrink) * float(scipy.stats.t.ppf(q, df) / scipy.stats.norm.ppf(q))


def _collect(samples) -> tuple:
    """Flatten ``{D: (times, escaped[, clusters])}`` into per-run arrays (D with no run left
    out). Returns dims, km medians, log D, log time, escaped, cluster labels, D index."""
    dims, medians, x, y, ev, cl, di = [], [], [], [], [], [], []
    for D in sorted(samples):
        t, e, *c = samples[D]
        t = np.asarray(t, dtype=float)
        e = np.asarray(e, dtype=bool)
        c = np.asarray(c[0]) if c else np.zeros(t.size, int)
        if t.ndim != 1 or t.shape != e.shape or c.shape != t.shape:
            raise ValueError(f"fit_exponent: D={D}: times, escaped (and clusters) must be "
                             "1-D and of equal length")
        if t.size == 0:
            continue
        if not (t > 0).all():
            raise ValueError(f"fit_exponent: D={D}: times must be positive")
        dims.append(int(D))
        medians.append(float(km_quantile_batch(t, e)))
        x.append(np.full(t.size, math.log(D)))
        y.append(np.log(t))
        ev.append(e)
        cl.append(np.unique(c, return_inverse=True)[1])
        di.append(np.full(t.size, len(dims) - 1))
    cat = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype)
    return (dims, medians, cat(x, float), cat(y, float), cat(ev, bool), cat(cl, int),
            cat(di, int))


def fit_exponent(
    samples: dict,
    confidence: float = 0.95,
    n_resamples: int = 999,
    seed: int = 0,
) -> ExponentFit:
    """Fit b in  log tau = a + b log D + s eps  (log-normal AFT) with every D and every run.

    Args:
        samples: ``{D: (times, escaped)}`` or ``{D: (times, escaped, clusters)}``; censored
            (and diverged) runs carry their budget as the time; ``clusters`` names each
            run's landscape draw (labels are compared within one D only).
        confidence: CI level.
        n_resamples: cluster-bootstrap resamples (0: no CI, ``low``/``high`` NaN).
        seed: seed of the bootstrap.
    """
    dims, medians, x, y, event, cluster, dim_of_run = _collect(samples)
    censored_dims = tuple(D for D, m in zip(dims, medians, strict=True) if math.isinf(m))
    free_possible = bool(dims) and not math.isinf(medians[-1])
    n_draws = [int(np.unique(cluster[dim_of_run == i]).size) for i in range(len(dims))]
    n_clusters = sum(n_draws)
    common = dict(confidence=confidence, dims=tuple(dims), medians=tuple(medians),
                  censored_dims=censored_dims, dimension_free_possible=free_possible,
                  runs=int(x.size), censored_runs=int((~event).sum()), n_dims=len(dims),
                  n_clusters=n_clusters)
    nan = math.nan
    identified = np.unique(dim_of_run[event]).size >= 2
    if len(dims) < 2 or not identified:
        return ExponentFit(nan, nan, nan, nan, outcome="insufficient", scale=nan, se=nan,
                           **common)
    x_mean, y_mean = x.mean(), y.mean()
    theta, converged, v = _aft_mle(x - x_mean, y - y_mean, event)
    if not (converged and np.all(np.isfinite(theta)) and theta[2] > 0):
        # the likelihood has no maximum in reach (e.g. escapes so separated by censoring
        # that b runs off): no estimate rather than an unconverged one
        return ExponentFit(nan, nan, nan, nan, outcome="insufficient", scale=nan, se=nan,
                           **common)
    b, s = theta[1] / theta[2], 1.0 / theta[2]
    a = theta[0] / theta[2] + y_mean - b * x_mean
    se = _wald_se(theta, v, event)
    lo = hi = nan
    if n_resamples > 0:
        w = _bootstrap_weights(dim_of_run, cluster, n_resamples, np.random.default_rng(seed))
        units = np.array([np.unique(cluster[dim_of_run == i]).size if n_draws[i] > 1 else
                          int((dim_of_run == i).sum()) for i in range(len(dims))])
        lo, hi = _percentile_ci(_bootstrap_exponents(theta, v, event, w), confidence, b,
                                _expansion(units, confidence))
    outcome = "cliff" if censored_dims else "fit"
    return ExponentFit(float(b), float(a), lo, hi, outcome=outcome, scale=float(s),
                       se=float(se), **common)
