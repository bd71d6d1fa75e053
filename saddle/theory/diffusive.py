r"""Diffusive escape at gamma = 0: the escape coordinate as a random walk (estimates).

At gamma = 0 (quartic = 0, one escape mode) the escape direction E = p q^T is flat: the
gradient along E is pure noise, <G_t, E> = <Xi_t, E> (E is an eigendirection of the Hessian
with eigenvalue 0, so the bulk's pull has no component along it). The escape coordinate
a_t = <W_t - W*, E> moves by the optimizer's update along E,

    a_{t+1} - a_t = -eta x_t,   x_t = <update direction_t, E>,

a zero-mean stationary sequence (after the momentum's start-up) with long-run variance. Escape
("projection", rank 1) is |a_t| >= R. Three facts give the estimate.

**1. First exit of Brownian motion.** If a_t is close to a Brownian motion with variance rate
v (per step) started at a0 in (-R, R), the exit time tau satisfies (eigen-expansion of the heat
equation on (-R, R) with absorbing ends)

    P(tau > t) = sum_k 4/((2k+1) pi) sin((2k+1) pi (a0 + R)/(2R)) exp(-(2k+1)^2 pi^2 v t/(8 R^2)),

so the median is tau_med = c(a0/R) R^2/v with c solving P = 1/2; c(0) = 0.757496 (the first
term alone gives 8 ln(8/pi)/pi^2 = 0.757649). Two corrections of a walk on integer steps
whose steps are correlated (momentum) move the absorbing ends outwards, R -> R_e:

- overshoot (Siegmund): a Gaussian walk with iid steps of sd h watched at integer times leaves
  (-R, R) like a Brownian motion leaves (-R - zeta h, R + zeta h), zeta = -zeta_Riemann(1/2)/
  sqrt(2 pi) = 0.5826;
- persistence (Milne extrapolation length of the Kramers process: a position driven by an
  Ornstein-Uhlenbeck velocity of sd h and correlation time tau_c behaves at an absorbing wall
  like a Brownian motion absorbed kappa h tau_c beyond it, kappa = -zeta_Riemann(1/2)/sqrt(2)
  = 1.0326). With F = v/h^2 = 1 + 2 sum_k rho_k the steps' long-run factor, tau_c = (F - 1)/2.

So R_e = R + zeta h + kappa (v - h^2)/(2h). A smooth walk does not come back from near the
wall as a Brownian path does, so it leaves later; on the scalar heavy-ball walk (mu = 0.9,
R/sqrt(v) = 30, 20 000 runs) the plain law is 18% short and this R_e leaves 3% (0.95: 4%).

- start-up lag L: a momentum buffer started at zero reaches its long-run variance rate late:
  Var(a_t - a0) = v (t - L) + o(1), so

    tau_med ~ c(a0/R_e) R_e^2/v + L.

The law still needs the exit to take several correlation times (assumption ``diffusive``:
c R^2/v >= 5 F).

**2. Linear filters (SGD, AdamW's first moment).** A momentum filter with impulse response w_j
passes white noise of variance sigma_E^2 with long-run variance (DC gain)^2 sigma_E^2, DC gain
sum_j w_j. The lab's SGD buffer is M <- mu M + g with step eta M (heavy ball) or
eta (g + mu M) (Nesterov); both have DC gain 1/(1 - mu), so

    SGD:   v = eta^2 sigma_E^2 / (1 - mu)^2,   h^2 = eta^2 sigma_E^2 sum_j w_j^2,

with sigma_E^2 = Var <Xi, E> (``theory.noise_facts``). The walk is exactly Gaussian. The lag
L = sum_{j<T} (1 - (W_j/G)^2) (W_j the cumulative response, G the DC gain) is mu (2 + mu)/(1 -
mu^2) for heavy ball.

AdamW (PyTorch algebra): step eta m_hat/(sqrt(v_hat) + eps). The bias-corrected first moment
is an EMA of DC gain 1 (its start-up lag is negative: m_hat_1 = g_1 is a large first step);
v_hat averages g^2 over ~1/(1 - b2) steps and settles at the second moment s^2 of the gradient
entries that E lives on. With v_hat ~ s^2 the same for every entry of E's support, the step
along E is -(eta/s) <m_hat, E>, and <m_hat, E> filters <Xi, E> only:

    AdamW: v = eta^2 sigma_E^2 / s^2,   h^2 = v (1 - b1)/(1 + b1).

- coherent basis: E is one entry whose gradient is pure noise, s^2 = sigma_E^2 and v = eta^2
  (no D, no bulk: each entry is its own scalar system).
- incoherent basis (``incoherent``, ``structured``): E is dense and every entry's gradient is
  the noise plus the bulk's pull, s^2 = sigma_e^2 + mean over bulk eigenvalues lambda of
  lambda^2 Var c_lambda. In the eigenbasis each bulk coordinate c is, with the preconditioner
  ~ 1/s, heavy-ball SGD on lambda c / 2 with rate alpha = eta/s and b1-EMA momentum:
  c <- c - alpha m, m <- b1 m + (1 - b1)(lambda c + xi). Its stationary variance solves a 2 x 2
  discrete Lyapunov equation; s^2 is the fixed point of s^2 = sigma_e^2 + <lambda^2 Var c>
  (alpha = eta/s). For small alpha lambda: s^2 ~ sigma_e^2 (1 + eta lambda/(2 s)).
- ``partial`` mixing (E partly localized) lies between and is not covered; heavy-tailed noise
  is not covered (one large draw inflates v_hat for ~1/(1 - b2) steps).

**3. Muon: Haar moments.** Muon moves a by -eta k_s x_t, x_t = <orth(U_t), E>, with U_t the
(Nesterov) momentum. For rotation-invariant Gaussian noise and no bulk, U_t has iid Gaussian
entries, and orth(U) = A B^T is Haar on the Stiefel manifold; for m >= n, B^T q is a uniform
unit vector of R^n and A (B^T q) a uniform unit vector of R^m, so Var <orth(U), E> = 1/m; in
general q/max(m, n) with q = E||orth(U)||_F^2/min(m, n) (1 for polar; Newton-Schulz leaves
small singular values short of 1: q ~ 0.76-0.87). Successive U_t, U_{t+k} are jointly
Gaussian with iid entries and correlation rho_U(k) (rho_U from the momentum weights), so the
correlation of x_t and x_{t+k} is f(rho_U(k)) with f the correlation map of the orthogonalizer
at the config's shape (measured by Monte Carlo on Gaussian pairs, a fixed seed; f(r) < r: the
polar factor decorrelates faster than U, most for square shapes). Hence

    Muon: v = eta^2 k_s^2 q F / max(m, n),   F = 1 + 2 sum_k f(rho_U(k)),
          h^2 = eta^2 k_s^2 q / max(m, n),   L = 2 sum_k k f(rho_U(k)) / F.

At beta = 0.95 with Nesterov, U's own factor (1 + 2 sum rho_U) is 32.9 ((1 + beta)/(1 - beta) =
39 without Nesterov); F ~ 24 for square shapes and ~ 29 at aspect 2.

**The bulk and Muon.** A bulk restoring force breaks the exchangeability of E with the other
directions: the bulk coordinates of W stay bounded, so the low-frequency part of their
gradient (noise + pull) cancels in the momentum, while along E nothing cancels. E then carries a
larger share of U and of orth(U). The estimate above is the noise-only (soft bulk) law; the
measured effect of a stiff bulk is stated with the result.

**Dimension exponent.** tau_med ~ R^2/v, so at square m = n the local exponent of tau ~ D^b is
b = -d ln v/d ln D, computed from v at (m, n) and (2m, 2n) with the learning rate that the
protocol gives at each size (``fixed``: the config's; ``matched_rms``/``matched_spectral``:
target / the optimizer's nominal RMS or spectral norm per unit lr). For isotropic noise:

| optimizer | fixed | matched_rms | matched_spectral |
|---|---|---|---|
| SGD | 0 | 0 | 1/2 (eta ~ 1/(sqrt m + sqrt n)) |
| AdamW | 0 | 0 | 1/2 |
| Muon | 1/2 (v ~ 1/max(m, n)) | 0 (eta ~ sqrt(max(m, n))) | 1/2 |

(Newton-Schulz's q drifts slowly with n; the computed b includes it.)

**Weight decay** (not covered): with decay the coordinate is an OU process,
a_{t+1} = (1 - eta wd) a_t - eta x_t, with stationary variance ~ v/(2 eta wd); escape is then
exponentially rare once that is below R^2.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.linalg
import scipy.optimize
import sympy as sp

from ..landscapes.spectra import bulk_quantiles
from ..optimizers import NS_COEFFS, AdamWSpec, MuonSpec, SGDSpec, muon_scale
from ..registry import NOISES, OPTIMIZERS
from ._core import FUNCTIONS, SPECTRAL, Assumption, Result
from .noise_facts import noise_facts

SGD, ADAMW, MUON = SGDSpec.name, AdamWSpec.name, MuonSpec.name
DENSE_BASES = ("incoherent", "structured")

__all__ = [
    "survival", "median_constant", "median_relative_se", "filter_lag",
    "momentum_autocorrelation", "orth_correlation",
    "muon_walk_factor", "adam_second_moment", "walk_rates", "diffusive_median",
    "protocol_config", "SGD_DIFFUSIVE", "ADAMW_DIFFUSIVE", "MUON_DIFFUSIVE",
    "DIFFUSIVE_EXPONENTS", "ZETA", "MILNE",
]

# Siegmund's overshoot constant -zeta(1/2)/sqrt(2 pi): a Gaussian random walk with step sd h
# watched at integer times leaves (-R, R) like a Brownian motion leaves (-R - ZETA h, R + ZETA h).
ZETA = 0.5825971579390106
# The Milne extrapolation length of the Kramers (Ornstein-Uhlenbeck velocity) process at an
# absorbing wall, -zeta(1/2)/sqrt(2) = 1.0326 velocity sd x velocity correlation time.
MILNE = 1.0326265761


def survival(x, u: float = 0.0, terms: int = 60):
    """P(tau > t) for a Brownian motion with variance rate v started at a0 = u R in (-R, R):
    the eigen-series at x = v t / R^2."""
    x = np.asarray(x, float)
    k = np.arange(terms)[:, None] if x.ndim else np.arange(terms)
    odd = 2 * k + 1
    amp = 4 / (odd * math.pi) * np.sin(odd * math.pi * (u + 1) / 2)
    return np.sum(amp * np.exp(-(odd**2) * math.pi**2 * x / 8), axis=0)


@lru_cache(maxsize=512)
def _median_constant(u: float) -> float:
    if abs(u) >= 1:
        return 0.0
    # the survival is 1 at x = 0+ and decreases; bracket the crossing of 1/2
    hi = 1.0
    while survival(hi, u) > 0.5:
        hi *= 2
    return float(scipy.optimize.brentq(lambda x: survival(x, u) - 0.5, 1e-12, hi,
                                       xtol=1e-14, rtol=1e-13))


def median_constant(u) -> float:
    """c(u): the median exit time of (-R, R) from a0 = u R is c(u) R^2 / v."""
    return _median_constant(round(abs(float(u)), 12))


def median_relative_se(u: float, runs: int) -> float:
    """The standard error of the sample median of ``runs`` exit times, relative to the median
    (the asymptotic 1/(2 sqrt(runs) p(median)), p the exit-time density of the law)."""
    x = median_constant(u)
    k = np.arange(60)
    odd = 2 * k + 1
    amp = 4 / (odd * math.pi) * np.sin(odd * math.pi * (abs(u) + 1) / 2)
    density = float(np.sum(amp * odd**2 * math.pi**2 / 8 * np.exp(-(odd**2) * math.pi**2 * x / 8)))
    return 1 / (2 * math.sqrt(runs) * density * x)


# ---- linear filters (SGD, AdamW's first moment) --------------------------------------------


def filter_lag(kind: str, mu: float, horizon: int | None = None) -> float:
    """The lag L of a momentum filter started from a zero buffer: Var(sum of the first t
    outputs) = G^2 sigma^2 (t - L) + o(1) for white input of variance sigma^2, G the DC gain.

    kind: ``heavy_ball`` (M <- mu M + g, output M), ``nesterov`` (output g + mu M) or
    ``adam`` (EMA (1 - mu) g with Adam's bias correction, output M / (1 - mu^t)).
    """
    if mu <= 0:
        return 0.0
    T = horizon or int(60 / (1 - mu)) + 200
    d = np.zeros(T + 2)
    for u in range(T, 0, -1):  # d_u = sum_{s >= u} mu^{s-u} x_s over the outputs s <= T
        x = 1 / (1 - mu**u) if kind == "adam" else 1.0
        d[u] = x + mu * d[u + 1]
    c = d[1:T + 1]
    if kind == "adam":
        c = (1 - mu) * c
        gain = 1.0
    elif kind == "nesterov":
        c = 1 + mu * c
        gain = 1 / (1 - mu)
    else:
        gain = 1 / (1 - mu)
    return float(T - np.sum(c**2) / gain**2)


# ---- Muon: the orthogonalized momentum along E ---------------------------------------------


def momentum_autocorrelation(beta: float, nesterov: bool, lags: int) -> np.ndarray:
    """rho_U(k), k = 0..lags, of Muon's U = sum_j w_j g_{t-j} for white g (EMA or summed
    momentum give the same rho: they differ by a scale)."""
    J = lags + int(80 / max(1 - beta, 1e-3)) + 10
    w = (1 - beta) * beta ** np.arange(J)
    if nesterov:  # U = (1 - beta) g + beta M
        w = beta * w
        w[0] += 1 - beta
    acf = np.array([np.dot(w[: J - k], w[k:]) for k in range(lags + 1)])
    return acf / acf[0]


def newton_schulz_np(U: np.ndarray, steps: int, coeffs, eps: float = 1e-7) -> np.ndarray:
    """The lab's quintic Newton-Schulz iteration on a batch (..., m, n) in NumPy."""
    a, b, c = coeffs
    tall = U.shape[-2] > U.shape[-1]
    X = np.swapaxes(U, -1, -2) if tall else U
    X = X / (np.linalg.norm(X, axis=(-2, -1), keepdims=True) + eps)
    for _ in range(steps):
        A = X @ np.swapaxes(X, -1, -2)
        X = a * X + (b * A + c * A @ A) @ X
    return np.swapaxes(X, -1, -2) if tall else X


def _orth(U, ns_steps, coeffs):
    if ns_steps is None:
        u, _, vt = np.linalg.svd(U, full_matrices=False)
        return u @ vt
    return newton_schulz_np(U, ns_steps, coeffs)


# Correlations r at which the polar correlation f(r) is measured; f(0) = 0, f(1) = 1.
_R_GRID = np.array([0.2, 0.4, 0.6, 0.75, 0.85, 0.9, 0.94, 0.97, 0.985, 0.993, 0.997])


# f is measured on shapes with at most this many rows or columns (it depends on the aspect
# ratio, hardly on the size: at r = 0.99 it is 0.946 at 8 x 8 and 0.958 at 64 x 64).
F_SHAPE_CAP = 64


def _reduced(m: int, n: int, cap: int) -> tuple[int, int]:
    k = max(m, n) / cap
    if k <= 1:
        return m, n
    return max(2, round(m / k)), max(2, round(n / k))


@lru_cache(maxsize=64)
def orth_correlation(m: int, n: int, ns_steps: int | None = None,
                     coeffs: tuple = (3.4445, -4.7750, 2.0315), seed: int = 0):
    """(q, f): q = E ||orth(U)||_F^2 / min(m, n) and the map f from the correlation r of two
    jointly Gaussian U, V with iid entries to the correlation of the entries of orth(U) and
    orth(V), on :data:`_R_GRID` (Monte Carlo with a fixed seed: q at the config's shape, f at
    the shape scaled down to at most :data:`F_SHAPE_CAP` a side, same aspect ratio)."""
    rng = np.random.default_rng(seed)
    qb = max(2, math.ceil(2e4 / (m * n)))
    OU = _orth(rng.standard_normal((qb, m, n)), ns_steps, coeffs)
    q = float(np.mean(np.sum(OU * OU, axis=(-2, -1)))) / min(m, n)
    fm, fn = _reduced(m, n, F_SHAPE_CAP)
    batch = max(4, math.ceil(1.5e5 / (fm * fn)))
    U = rng.standard_normal((batch, fm, fn))
    Z = rng.standard_normal((batch, fm, fn))
    OU = _orth(U, ns_steps, coeffs)
    f = []
    for r in _R_GRID:
        OV = _orth(r * U + math.sqrt(1 - r * r) * Z, ns_steps, coeffs)
        f.append(float(np.sum(OU * OV) / math.sqrt(np.sum(OU * OU) * np.sum(OV * OV))))
    return q, np.array(f)


def muon_walk_factor(m: int, n: int, beta: float, nesterov: bool, ns_steps: int | None = None,
                     coeffs: tuple = (3.4445, -4.7750, 2.0315)) -> tuple[float, float, float]:
    """(q, F, L) of Muon's per-step component x_t = <orth(U_t), E> under white isotropic
    Gaussian gradients: Var x = q / max(m, n), long-run variance F Var x, lag L (steps)."""
    q, f = orth_correlation(m, n, ns_steps, tuple(coeffs))
    lags = int(60 / max(1 - beta, 1e-3))
    rho = momentum_autocorrelation(beta, nesterov, lags)[1:]
    # interpolate in sqrt(1 - r), where f is smooth up to r = 1
    grid = np.sqrt(1 - np.concatenate([[0.0], _R_GRID, [1.0]]))
    vals = np.concatenate([[0.0], f, [1.0]])
    fr = np.interp(np.sqrt(1 - np.clip(rho, 0, 1)), grid[::-1], vals[::-1])
    k = np.arange(1, lags + 1)
    F = 1 + 2 * float(np.sum(fr))
    L = 2 * float(np.sum(k * fr)) / F
    return q, F, L


def adam_bulk_variance(alpha: float, lam: np.ndarray, b1: float, sigma2: float) -> np.ndarray:
    """Stationary variance of the gradient lam c of bulk eigen-coordinates that move by
    c <- c - alpha m, m <- b1 m + (1 - b1)(lam c + xi), Var xi = sigma2 (nan where unstable)."""
    out = np.empty_like(lam, dtype=float)
    for i, lv in enumerate(lam):
        A = np.array([[1 - alpha * (1 - b1) * lv, -alpha * b1], [(1 - b1) * lv, b1]])
        if np.max(np.abs(np.linalg.eigvals(A))) >= 1:
            out[i] = np.nan
            continue
        b = np.array([[-alpha * (1 - b1)], [1 - b1]])
        P = scipy.linalg.solve_discrete_lyapunov(A, sigma2 * (b @ b.T))
        out[i] = lv * lv * P[0, 0]
    return out


def adam_second_moment(eta: float, sigma2: float, lam: np.ndarray, b1: float,
                       iters: int = 100) -> float:
    """s^2 = sigma2 + mean bulk gradient variance, self-consistent with the step eta / s."""
    lam_u, counts = np.unique(np.asarray(lam, float), return_counts=True)
    s2 = sigma2
    for _ in range(iters):
        bv = adam_bulk_variance(eta / math.sqrt(s2), lam_u, b1, sigma2)
        if np.any(np.isnan(bv)):
            return math.nan
        new = sigma2 + float(np.sum(bv * counts) / counts.sum())
        if abs(new - s2) <= 1e-12 * new:
            return new
        s2 = new
    return s2


def adam_lag(b1: float) -> float:
    """The start-up lag of AdamW's bias-corrected first moment (negative: m_hat_1 = g_1)."""
    return filter_lag("adam", b1)


def _filter_step_sum_sq(kind: str, mu: float) -> float:
    """sum_j w_j^2 of SGD's filter (the variance of one step per unit noise variance)."""
    if kind == "nesterov":
        return (1 + mu) ** 2 + mu**4 / (1 - mu**2)
    return 1 / (1 - mu**2)


# ---- per-optimizer parameters -----------------------------------------------------------------


def _walk_common(c) -> dict[str, float]:
    """Checks shared by every optimizer; the radius and head start."""
    if c.gamma != 0 or c.escape_rank != 1 or c.escape != "projection":
        raise ValueError("not a flat rank-one saddle with the projection criterion")
    return {"R": c.radius, "a_0": abs(c.init_escape or 0.0)}


def _sigma_e2(c) -> float:
    s2 = float(noise_facts(c).e_variance[0])
    if not s2 > 0 or not math.isfinite(s2):
        raise ValueError("no finite noise along E")
    return s2


def sgd_params(c) -> dict[str, float]:
    mu = float(c.momentum or 0.0)
    kind = "nesterov" if (c.nesterov and mu) else "heavy_ball"
    return {**_walk_common(c), "eta": c.learning_rate, "sigma_E": math.sqrt(_sigma_e2(c)),
            "mu": mu, "omega": math.sqrt(_filter_step_sum_sq(kind, mu)),
            "L": filter_lag(kind, mu)}


def _bulk_eigenvalues(c) -> np.ndarray:
    count = c.m * c.n - c.escape_rank
    return c.bulk_scale * bulk_quantiles(c.bulk, count, c.bulk_ratio, c.bulk_tail)


def adamw_second_moment(c) -> float:
    """s^2, the second moment of the gradient entries that E lives on (module docstring)."""
    s2e = _sigma_e2(c)
    if c.basis == "coherent":
        return s2e
    if c.basis not in DENSE_BASES:
        raise ValueError("partial mixing is not covered")
    entry2 = noise_facts(c).entry_std ** 2
    return _dense_second_moment(c.learning_rate, entry2, c.m * c.n - c.escape_rank, c.bulk,
                                c.bulk_scale, c.bulk_ratio, c.bulk_tail, c.b1)


@lru_cache(maxsize=1024)
def _dense_second_moment(eta, entry2, count, bulk, scale, ratio, tail, b1) -> float:
    """adam_second_moment for a bulk given by its spectrum's parameters (cached: the
    fixed point costs one Lyapunov solve per distinct eigenvalue and iteration)."""
    lam = scale * bulk_quantiles(bulk, count, ratio, tail)
    return adam_second_moment(eta, entry2, lam, b1)


def adamw_params(c) -> dict[str, float]:
    s2 = adamw_second_moment(c)
    if not math.isfinite(s2):
        raise ValueError("the bulk's stationary state does not exist (unstable)")
    return {**_walk_common(c), "eta": c.learning_rate, "sigma_E": math.sqrt(_sigma_e2(c)),
            "s": math.sqrt(s2), "b_1": c.b1, "L": adam_lag(c.b1)}


def muon_params(c) -> dict[str, float]:
    ns = None if c.orthogonalizer == "polar" else c.ns_steps
    q, F, L = muon_walk_factor(c.m, c.n, c.momentum, bool(c.nesterov), ns, tuple(NS_COEFFS))
    return {**_walk_common(c), "eta": c.learning_rate,
            "k_s": muon_scale((c.m, c.n), c.scaling), "q": q, "F": F, "N": max(c.m, c.n),
            "L": L}


# ---- symbolic results -----------------------------------------------------------------------

c_half = sp.Function("c_half")  # c(u): the median exit constant (module docstring)
FUNCTIONS["c_half"] = np.vectorize(median_constant)

R, a0, v, h, L, Re = sp.symbols("R a_0 v h L R_e", positive=True)
zeta, kappa = sp.symbols("zeta kappa", positive=True)
eta, sigE, mu, omega, s, b1 = sp.symbols("eta sigma_E mu omega s b_1", positive=True)
ks, q, F, N = sp.symbols("k_s q F N", positive=True)

EXPR = c_half(a0 / Re) * Re**2 / v + L
# substituted last first: R_e, then h, v, the constants
_EDGE = ((zeta, sp.Float(ZETA, 6)), (kappa, sp.Float(MILNE, 6)))
_RE = ((Re, R + zeta * h + kappa * (v - h**2) / (2 * h)),)
SGD_DEFS = _EDGE + ((v, eta**2 * sigE**2 / (1 - mu) ** 2), (h, eta * sigE * omega)) + _RE
ADAMW_DEFS = _EDGE + ((v, eta**2 * sigE**2 / s**2),
                      (h, sp.sqrt(v * (1 - b1) / (1 + b1)))) + _RE
MUON_DEFS = _EDGE + ((v, eta**2 * ks**2 * q * F / N), (h, eta * ks * sp.sqrt(q / N))) + _RE


def walk_rates(c) -> tuple[float, float, float]:
    """(v, h, L) of a config: variance rate, one step's sd and start-up lag (in steps)."""
    o = c.optimizer
    if o == SGD:
        p = sgd_params(c)
        return (p["eta"] * p["sigma_E"] / (1 - p["mu"])) ** 2, \
            p["eta"] * p["sigma_E"] * p["omega"], p["L"]
    if o == ADAMW:
        p = adamw_params(c)
        var = (p["eta"] * p["sigma_E"] / p["s"]) ** 2
        return var, math.sqrt(var * (1 - p["b_1"]) / (1 + p["b_1"])), p["L"]
    if o == MUON:
        p = muon_params(c)
        step2 = (p["eta"] * p["k_s"]) ** 2 * p["q"] / p["N"]
        return step2 * p["F"], math.sqrt(step2), p["L"]
    raise ValueError(f"no diffusive estimate for optimizer {o!r}")


def diffusive_median(c) -> float:
    """The estimate in plain Python (the Results evaluate the same formula through sympy)."""
    var, step, lag = walk_rates(c)
    edge = c.radius + ZETA * step + MILNE * (var - step**2) / (2 * step)
    return median_constant(abs(c.init_escape or 0.0) / edge) * edge**2 / var + lag


def _many_correlation_times(c) -> bool:
    var, step, _ = walk_rates(c)
    u = abs(c.init_escape or 0.0) / c.radius
    return median_constant(u) * c.radius**2 / var >= 5 * var / step**2


def _common_assumptions(name: str) -> tuple[Assumption, ...]:
    return (
        Assumption(name, f"optimizer {name}", lambda c: c.optimizer == name),
        Assumption("spectral", "the spectral saddle", lambda c: c.landscape == SPECTRAL),
        Assumption("flat", "gamma = 0 (E is flat: the gradient along E is pure noise)",
                   lambda c: c.gamma == 0),
        Assumption("no_quartic", "quartic = 0", lambda c: c.quartic == 0),
        Assumption("rank_one", "escape_rank = 1", lambda c: c.escape_rank == 1),
        Assumption("projection", "escape criterion projection (|a| >= R)",
                   lambda c: c.escape == "projection"),
        Assumption("saddle_init", "init = saddle (a_0 = init_escape, 0 allowed)",
                   lambda c: c.init == "saddle"),
        Assumption("no_decay", "weight_decay = 0 (decay makes a an OU process: not a walk)",
                   lambda c: not c.weight_decay),
        Assumption("diffusive", "c R^2/v >= 5 v/h^2: the exit takes many correlation times "
                   "of the steps (else the smooth walk leaves later than the law says)",
                   _many_correlation_times),
        Assumption("budget", "max_steps >= 2 x the estimate (the median is observed)",
                   lambda c: c.max_steps >= 2 * diffusive_median(c)),
    )


def _sgd_stable(c) -> bool:
    mu = c.momentum or 0.0
    top = float(np.max(_bulk_eigenvalues(c)))
    edge = 2 * (1 + mu) / (1 + 2 * mu) if c.nesterov else 2 * (1 + mu)
    return c.learning_rate * top < edge


SGD_DIFFUSIVE = Result(
    name="sgd_diffusive_median",
    title="SGD median escape time from a flat saddle (gamma = 0): a linear filter of the noise",
    quantity="escape_time",
    kind="estimate",
    optimizer=SGD,
    lhs=r"\operatorname{med}\,\tau",
    expr=EXPR,
    definitions=SGD_DEFS,
    assumptions=_common_assumptions(SGD) + (
        Assumption("gaussian", "<Xi, E> Gaussian (none, isotropic, opnorm, kronecker noise)",
                   lambda c: noise_facts(c).gaussian_along_e),
        Assumption("stable_bulk", "eta lambda_max below the momentum's stability edge "
                   "(2(1 + mu), Nesterov 2(1 + mu)/(1 + 2 mu))", _sgd_stable),
    ),
    params=sgd_params,
    page="diffusive",
    d_dependence="through sigma_E and the protocol's lr: isotropic none at fixed lr; "
    "opnorm sigma_E^2 ~ 1/(sqrt m + sqrt n)^2 gives D^{1/2}",
    summary="omega^2 = sum_j w_j^2 of the momentum filter, L its start-up lag",
)

ADAMW_DIFFUSIVE = Result(
    name="adamw_diffusive_median",
    title="AdamW median escape time from a flat saddle (gamma = 0): preconditioned noise walk",
    quantity="escape_time",
    kind="estimate",
    optimizer=ADAMW,
    lhs=r"\operatorname{med}\,\tau",
    expr=EXPR,
    definitions=ADAMW_DEFS,
    assumptions=_common_assumptions(ADAMW) + (
        Assumption("gaussian", "Gaussian noise along E with a finite per-entry scale "
                   "(not student_t: its spikes inflate v_hat for 1/(1 - b2) steps)",
                   lambda c: noise_facts(c).gaussian_along_e and c.noise != "none"),
        Assumption("basis", "coherent, incoherent or structured basis (partial mixing is not "
                   "covered)", lambda c: c.basis in ("coherent",) + DENSE_BASES),
        Assumption("stable_bulk", "the bulk's stationary state exists (s^2 finite)",
                   lambda c: math.isfinite(adamw_second_moment(c))),
        Assumption("small_eps", "eps <= 0.01 s", lambda c: c.eps <= 0.01 * math.sqrt(
            adamw_second_moment(c))),
    ),
    params=adamw_params,
    page="diffusive",
    d_dependence="coherent: none (v = eta^2); dense bases: through s^2 (bulk pull, D-free "
    "for a D-free bulk spectrum) and the protocol's lr",
    summary="s^2 = sigma_E^2 on the coherent basis, else the self-consistent entry second "
    "moment (module docstring)",
)

MUON_DIFFUSIVE = Result(
    name="muon_diffusive_median",
    title="Muon median escape time from a flat saddle (gamma = 0): Haar walk of orth(U)",
    quantity="escape_time",
    kind="estimate",
    optimizer=MUON,
    lhs=r"\operatorname{med}\,\tau",
    expr=EXPR,
    definitions=MUON_DEFS,
    assumptions=_common_assumptions(MUON) + (
        Assumption("rotation_invariant", "rotation-invariant Gaussian noise (isotropic or "
                   "opnorm): orth(U) is Haar", lambda c: NOISES[c.noise].rotation_invariant
                   and NOISES[c.noise].gaussian_along_e and c.noise != "none"),
    ),
    params=muon_params,
    page="diffusive",
    d_dependence="v ~ eta^2 k_s^2/max(m, n): fixed lr D^{1/2} (square), matched_rms D^0, "
    "matched_spectral D^{1/2}",
    summary="q, F and L from a fixed-seed Monte Carlo of orth on Gaussian pairs at the "
    "config's shape. The soft-bulk law: a stiff bulk makes E stand out in the momentum and "
    "speeds the escape (16 x 16, lr 0.005: simulated/estimated 0.98 at lambda = 1e-4, 0.91 "
    "at lambda = 1, 0.73 at lambda = 10, Newton-Schulz)",
)


# ---- the dimension exponent --------------------------------------------------------------------

PROTOCOLS = ("fixed", "matched_rms", "matched_spectral")
_NORM = {"matched_rms": "rms", "matched_spectral": "spectral"}
_TARGET = {"rms": 2e-4, "spectral": 0.02}  # saddle.sweep.protocols.DEFAULT_TARGETS


def protocol_config(c, protocol: str, scale: int = 1):
    """The config at shape (scale m, scale n) with the learning rate ``protocol`` gives it."""
    big = c.replace(m=c.m * scale, n=c.n * scale)
    if protocol == "fixed":
        return big
    norm = _NORM[protocol]
    return big.replace(learning_rate=_TARGET[norm]
                       / OPTIMIZERS[c.optimizer].update_norms_per_lr(big)[norm])


def _exponent_params(protocol: str):
    def params(c) -> dict[str, float]:
        if c.optimizer not in (SGD, ADAMW, MUON):
            raise ValueError("no diffusive estimate for this optimizer")
        return {"v_1": walk_rates(protocol_config(c, protocol, 1))[0],
                "v_2": walk_rates(protocol_config(c, protocol, 2))[0]}

    return params


v1, v2 = sp.symbols("v_1 v_2", positive=True)


def _exponent(protocol: str) -> Result:
    return Result(
        name=f"diffusive_exponent_{protocol}",
        title=f"Dimension exponent b of the gamma = 0 escape time, tau ~ D^b, square m = n, "
        f"{protocol} learning rates",
        quantity="dimension_exponent",
        kind="estimate",
        optimizer=None,
        lhs="b",
        expr=sp.log(v1 / v2) / sp.log(4),
        assumptions=(
            Assumption("covered", "optimizer sgd, adamw or muon",
                       lambda c: c.optimizer in (SGD, ADAMW, MUON)),
            Assumption("square", "m = n", lambda c: c.m == c.n),
            Assumption("flat", "gamma = 0", lambda c: c.gamma == 0),
            Assumption("no_quartic", "quartic = 0", lambda c: c.quartic == 0),
            Assumption("rank_one", "escape_rank = 1", lambda c: c.escape_rank == 1),
            Assumption("projection", "escape criterion projection",
                       lambda c: c.escape == "projection"),
            Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
        ),
        params=_exponent_params(protocol),
        page="diffusive",
        d_dependence=f"b = -d ln v/d ln D between D = mn and 4D, the lr set by {protocol}; "
        "isotropic noise: SGD and AdamW 0 (fixed, matched_rms), 1/2 (matched_spectral); "
        "Muon 1/2, 0, 1/2",
        summary="v_1, v_2: the variance rates at (m, n) and (2m, 2n)",
    )


DIFFUSIVE_EXPONENTS = tuple(_exponent(p) for p in PROTOCOLS)
