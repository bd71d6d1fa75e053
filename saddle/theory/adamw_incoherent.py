r"""AdamW escape time on an incoherent basis: SGD with a bulk-inflated preconditioner.

On a dense basis (structured, incoherent) the escape direction E = p q^T spreads over all D
entries of W, |E_ij| ~ 1/sqrt(D). Entry (i, j) sees the gradient

    G_ij = -gamma a E_ij + sum_k lambda_k c_k E_k(ij) + Xi_ij,

(c_k the bulk coordinates) and AdamW divides it by sqrt(v_ij), v_ij the EMA of G_ij^2.

**Noise-dominated escape (assumption ``spread``).** While gamma a |E_ij| << sqrt(v_ij) for
every entry, v_ij does not see the escape signal: v_ij ~ v_i = sigma_i^2 + B (sigma_i^2 the
noise variance of row i, B the bulk's gradient variance per entry, below). The first moment
is a linear filter of unit DC gain, so for a slow mode (h gamma << 1 - beta_1) the escape
coordinate a = <W, E> follows SGD:

    a_{t+1} = (1 + h gamma) a_t - h xi_t,   h = eta sum_ij E_ij^2 v_ij^{-1/2},
    Var(h xi_t) = eta^2 sum_ij E_ij^2 sigma_i^2 / v_ij = h^2 sigma_n^2.

With E spread evenly over the rows (sum_j E_ij^2 ~ 1/m) h = eta <v_i^{-1/2}> and
sigma_n^2 = <sigma_i^2/v_i>/<v_i^{-1/2}>^2 (row means; sigma_n = sigma for noise of one
per-entry law). The SGD law of ``sgd_law`` applies with eta -> h, sigma_E -> sigma_n, with
AdamW's EMA momentum kept exactly in the linear recursion a' = a + h m-hat',
m' = beta_1 m + (1 - beta_1)(gamma a + xi): a_t ~ g^t Z with g the growing root of
(z - 1)(z - beta_1) = h (1 - beta_1) gamma z (below 1 + h gamma: the first moment lags a
growing mode by ~beta_1/(1 - beta_1) steps), and s = sd(Z) from the exact covariance of
(a, m) including the bias correction 1/(1 - beta_1^t) (which enlarges the first steps'
noise), ``z_spread``:

    E tau ~ (ln(R/s) - ell(lambda)/2)/ln g + 1/2,   lambda = a_0^2/s^2.

(Without momentum g = 1 + h gamma and s = h sigma_n/sqrt(g^2 - 1), the SGD law.)

Define v_bar = (eta/h)^2 (the preconditioner's effective second moment; v_bar = sigma^2 + B
for one per-entry law). ``spread`` requires gamma R ||E||_inf <= sqrt(min_i v_i): the escape
signal of the heaviest entry stays below its noise up to the radius, so no sign-like
(signal-dominated) phase starts before escape. It fails on the partial basis (mixing 0.5:
|E_00| = p_0 q_0 ~ 0.4-0.6, the entry that holds p_0 q_0 turns sign-like at
a ~ sigma/(0.5 gamma), a fifth of the radius, and carries a quarter of E's mass from then
on; its time lies between this estimate and the coherent ``adamw_escape_estimate``: neither
applies, so the partial basis gets no value).

**The bulk's own gradient inflates v (self-consistent B).** The rotation mixes every bulk
mode into every entry: sum_k E_k(ij)^2 = 1, spread evenly on a dense basis, so
B = (1/D) sum_k lambda_k^2 Var(c_k). Each bulk mode runs the same preconditioned update,
a linear system with AdamW's EMA momentum,

    m' = beta_1 m + (1 - beta_1)(lambda c + xi),   c' = c - h m',   Var(h xi) = h^2 sigma_n^2,

whose stationary variance is the discrete Lyapunov solution P = A P A^T + b b^T (A, b the
2 x 2 system above). It is stable iff h lambda < 2 (1 + beta_1)/(1 - beta_1) (Jury's
criterion: det A = beta_1, tr A = 1 + beta_1 - h (1 - beta_1) lambda), and
Var(c) ~ h sigma_n^2/(2 lambda) for h lambda << 1, so a soft bulk adds
B ~ h sigma^2 <lambda>/2 and a stiff or heavy-tailed one (top eigenvalue above the edge at
h = eta/sigma) forces v_bar up until its top modes are just stable:
sqrt(v_bar) >~ eta lambda_max (1 - beta_1)/(2 (1 + beta_1)). B solves
B = (1/D) sum_k lambda_k^2 Var_k(h(B), sigma_n(B)); the right side decreases in B (h and
sigma_n fall as v rises), so the root is unique; it is found by bisection on log B (the
power-law spectrum is compressed to its top 64 eigenvalues plus 128 equal-count groups).

Approximations (an estimate, not a bound): v_ij is treated as constant (beta_2 = 0.999
averages ~1000 steps; the bulk equilibrates in ~1/(h lambda) steps, long only for soft modes,
whose share of B is small); entries are treated as independent given v (mean-field over the
rotation); the escape mode's own share of v_ij, gamma^2 a^2 E_ij^2 <= gamma^2 R^2/D on
average, is neglected (<~ 10% of sigma^2 at D = 32^2, sigma = 0.01); the time is the mean,
and the median of ln|Z| lies 0.24 above its mean (the median escape comes 0.24/ln g steps
earlier).

Where D enters: for one per-entry noise law and a constant bulk nowhere (B depends on lambda,
eta, sigma only), so the incoherent cell is dimension-free at a fixed rate, as the coherent
one is (with a shorter time: no slow sign-like phase, and ln(R/s) in place of
ln(a_*/s)). A power-law bulk's top eigenvalue grows like D^{1/alpha}: once
h lambda_max passes the edge, sqrt(v_bar) grows like D^{1/alpha} and the escape time with it
(until the log terms catch up): this is the D-cost of AdamW on an incoherent heavy-tailed
bulk.

**Heavy-tailed per-entry noise** (``adamw_incoherent_clt``). The escape coordinate's noise
h xi_t is a sum over D entries and its law enters through Z = sum_t g^{-t} h xi_t, an average
of ~N = (1 + g^{-2})/(1 - g^{-2}) steps: for finite variance (Student-t, nu > 2) Z is Gaussian
in the limit N -> infinity (Lindeberg's CLT for the triangular array of weights g^{-t}), so
the same law applies with the noise's variance. v_ij then averages squares of heavy-tailed
entries: E v^{-1/2} >= (E v)^{-1/2} (Jensen), so the estimate is slow by that gap (measured
below 20% at nu = 3).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..landscapes.spectra import bulk_quantiles
from ..noise.gaussian import Isotropic, OpNorm
from ..noise.kronecker import Kronecker
from ..noise.student_t import StudentT
from ..optimizers import AdamWSpec
from ..registry import NOISES
from ._core import FUNCTIONS, Assumption, Result  # noqa: F401  (FUNCTIONS holds ell)
from .noise_facts import escape_direction_stats, noise_facts
from .sgd import ell_f

ADAMW = AdamWSpec.name

__all__ = [
    "ADAMW_INCOHERENT",
    "ADAMW_INCOHERENT_CLT",
    "preconditioner",
    "mode_variance",
    "effective_steps",
    "growth",
    "z_spread",
]

# Noise models with independent entries of a known per-entry (per-row) variance.
ENTRYWISE = (Isotropic, OpNorm, Kronecker, StudentT)
DENSE_BASES = ("structured", "incoherent")

eta, gam, R, a0, vbar, sig_n = sp.symbols("eta gamma R a_0 vbar sigma_n", positive=True)
b1 = sp.Symbol("beta_1", positive=True)
h, g, s, k = sp.symbols("h g s k", positive=True)
lam = sp.Symbol("lambda", nonnegative=True)

EXPR = (sp.log(R / s) - ell_f(lam) / 2) / sp.log(g) + sp.Rational(1, 2)
# g: the growing root of (z - 1)(z - beta_1) = h (1 - beta_1) gamma z (SGD with AdamW's EMA
# momentum); s (a parameter, from z_spread): the spread of Z = lim a_t g^-t
DEFS = (
    (h, eta / sp.sqrt(vbar)),
    (k, 1 + b1 + h * gam * (1 - b1)),
    (g, (k + sp.sqrt(k**2 - 4 * b1)) / 2),
    (lam, a0**2 / s**2),
)


def growth(h_v: float, gamma: float, b1_v: float) -> float:
    """The growing root of (z - 1)(z - beta_1) = h (1 - beta_1) gamma z."""
    kk = 1 + b1_v + h_v * gamma * (1 - b1_v)
    return (kk + math.sqrt(kk * kk - 4 * b1_v)) / 2


def z_spread(h_v: float, gamma: float, b1_v: float, sig: float, burn: int = 400) -> float:
    """sd of Z = lim a_t g^-t for a' = a + h m'/(1 - beta_1^{t+1}),
    m' = beta_1 m + (1 - beta_1)(gamma a + xi), Var xi = sig^2, from a = m = 0.

    The covariance Q_t = Cov(a_t, m_t)/g^2t is propagated exactly through the first ``burn``
    steps (AdamW's bias correction, beta_1^t, fades); after them the map is constant, and the
    growing eigen-coordinate y of the state adds w^2 g^-2(t+1) a step, a geometric tail
    summed in closed form. Without momentum and bias correction this is
    h sig/sqrt(g^2 - 1)."""
    gg = growth(h_v, gamma, b1_v)
    u = (1 - b1_v) * gamma
    Q = np.zeros((2, 2))

    def step_map(c_v):
        A = np.array([[1 + c_v * u, c_v * b1_v], [u, b1_v]])
        n = np.array([c_v * (1 - b1_v), 1 - b1_v]) * sig
        return A, n

    for t in range(1, burn + 1):
        A, n = step_map(h_v / (1 - b1_v**t))
        Q = (A @ Q @ A.T) / gg**2 + np.outer(n, n) * gg ** (-2.0 * t)
    A, n = step_map(h_v)
    vals, V = np.linalg.eig(A)
    i = int(np.argmax(vals.real))
    Vinv = np.linalg.inv(V)
    y_var = float((Vinv @ Q @ Vinv.T)[i, i].real)
    w = float((Vinv @ n)[i].real)
    tail = w * w * gg ** (-2.0 * (burn + 1)) / (1 - gg**-2)
    return abs(float(V[0, i].real)) * math.sqrt(y_var + tail)


def effective_steps(g_val: float) -> float:
    """N = (1 + g^-2)/(1 - g^-2): how many noise steps Z = sum_t g^-t xi_t averages
    ((sum w^2)^2 / sum w^4 for the weights w_t = g^-t)."""
    q = g_val**-2
    return (1 + q) / (1 - q)


def mode_variance(lams: np.ndarray, h_v: float, sig: float, b1: float) -> np.ndarray:
    """Stationary Var(c) of m' = b1 m + (1-b1)(lambda c + xi), c' = c - h m' per lambda
    (xi of std sig); inf where the mode is unstable (h lambda >= 2(1+b1)/(1-b1))."""
    lams = np.asarray(lams, float)
    k = h_v * (1 - b1) * lams
    A = np.zeros((lams.size, 2, 2))
    A[:, 0, 0] = 1 - k
    A[:, 0, 1] = -h_v * b1
    A[:, 1, 0] = (1 - b1) * lams
    A[:, 1, 1] = b1
    bvec = sig * (1 - b1) * np.array([-h_v, 1.0])
    Q = np.outer(bvec, bvec).reshape(4)
    kron = np.einsum("gij,gkl->gikjl", A, A).reshape(lams.size, 4, 4)
    stable = h_v * lams < 2 * (1 + b1) / (1 - b1) * (1 - 1e-9)
    out = np.full(lams.size, np.inf)
    if stable.any():
        M = np.eye(4)[None] - kron[stable]
        P = np.linalg.solve(M, np.broadcast_to(Q, (M.shape[0], 4))[..., None])[..., 0]
        out[stable] = P[:, 0]
    return out


def _bulk_groups(c) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues, counts): the bulk spectrum, top 64 exact, the rest in 128 groups."""
    vals = np.sort(bulk_quantiles(c.bulk, c.m * c.n - c.escape_rank, c.bulk_ratio,
                                  c.bulk_tail)) * c.bulk_scale
    if np.ptp(vals) == 0:
        return vals[:1], np.array([float(vals.size)])
    top, rest = vals[-64:], vals[:-64]
    groups = np.array_split(rest, min(128, rest.size)) if rest.size else []
    lam_g = np.array([x.mean() for x in groups] + list(top))
    cnt = np.array([float(x.size) for x in groups] + [1.0] * top.size)
    return lam_g, cnt


def _row_noise_var(c) -> np.ndarray:
    spec = NOISES[c.noise]
    scales = spec.row_scales(c)
    if scales is not None:
        return (float(c.sigma) * np.asarray(scales, float)) ** 2
    return np.full(c.m, noise_facts(c).entry_std ** 2)


_CACHE: dict[tuple, tuple[float, float, float, float]] = {}


def _key(c) -> tuple:
    return (c.m, c.n, c.escape_rank, c.bulk, c.bulk_ratio, c.bulk_tail, c.bulk_scale, c.noise,
            c.sigma, c.noise_zipf, c.noise_df, c.learning_rate, c.b1, c.eps)


def preconditioner(c) -> tuple[float, float, float, float]:
    """(B, h, sigma_n, v_min) at the self-consistent bulk variance B (module docstring)."""
    key = _key(c)
    if key in _CACHE:
        return _CACHE[key]
    rows = _row_noise_var(c)
    if not np.all(np.isfinite(rows)) or rows.max() <= 0:
        raise ValueError("no finite per-entry noise variance")
    lam_g, cnt = _bulk_groups(c)
    lr, b1, eps, D = float(c.learning_rate), float(c.b1), float(c.eps), c.m * c.n

    def state(B):
        inv = 1.0 / (np.sqrt(rows + B) + eps)
        h_v = lr * inv.mean()
        sig = lr * math.sqrt(float(np.mean(rows * inv**2))) / h_v
        return h_v, sig

    def rhs(B):
        h_v, sig = state(B)
        var = mode_variance(lam_g, h_v, sig, b1)
        return float(np.sum(cnt * lam_g**2 * var) / D)

    B = _solve(rhs, float(rows.mean()))
    h_v, sig = state(B)
    out = (B, h_v, sig, float((rows + B).min()))
    if len(_CACHE) >= 256:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = out
    return out


def _solve(rhs, scale: float) -> float:
    """The root of rhs(B) = B (rhs decreasing, rhs(0) >= 0), by bisection on log B."""
    r0 = rhs(0.0)
    if r0 == 0:
        return 0.0
    hi = scale
    while not rhs(hi) < hi:
        hi *= 4
        if hi > 1e12 * scale:
            raise ValueError("no stationary bulk variance")
    lo = hi
    while rhs(lo) < lo and lo > 1e-12 * scale:
        lo /= 4
    for _ in range(30):
        mid = math.sqrt(lo * hi)
        if rhs(mid) < mid:
            hi = mid
        else:
            lo = mid
    return math.sqrt(lo * hi)


def _params(c) -> dict[str, float]:
    if c.gamma <= 0:
        raise ValueError("gamma = 0: a diffusion, see theory.diffusive")
    _, h_v, sig, _ = preconditioner(c)
    return {"eta": float(c.learning_rate), "vbar": (c.learning_rate / h_v) ** 2,
            "beta_1": float(c.b1),
            "s": z_spread(h_v, c.gamma, c.b1, sig), "gamma": c.gamma, "R": c.radius,
            "a_0": abs(c.init_escape) if c.init_escape else 1e-300}


def _rate(c) -> float:
    return preconditioner(c)[1]


def _g(c) -> float:
    return growth(_rate(c), c.gamma, c.b1)


def _spread_s(c) -> float:
    return z_spread(_rate(c), c.gamma, c.b1, preconditioner(c)[2])


def _signal_below_noise(c) -> bool:
    linf = escape_direction_stats(c).linf[0]
    return c.gamma * c.radius * linf <= math.sqrt(preconditioner(c)[3])


def _entrywise(c) -> bool:
    return isinstance(NOISES[c.noise], ENTRYWISE)


def _common(noise_assumptions: tuple[Assumption, ...], name: str) -> tuple[Assumption, ...]:
    budget = Assumption("budget", "max_steps >= 3 x the estimate (little censoring)",
                        lambda c: c.max_steps >= 3 * (RESULT_BY_NAME[name].evaluate(c)
                                                      or math.inf))
    return (
        Assumption(ADAMW, "optimizer adamw", lambda c: c.optimizer == ADAMW),
        Assumption("dense_basis", "basis structured or incoherent (E and every bulk mode "
                   "spread evenly over the entries; the partial basis keeps each mode near "
                   "its own axis)", lambda c: c.basis in DENSE_BASES),
        Assumption("rank_one", "escape_rank = 1", lambda c: c.escape_rank == 1),
        Assumption("unstable", "gamma > 0 (gamma = 0 is diffusion, see theory.diffusive)",
                   lambda c: c.gamma > 0),
        Assumption("no_quartic", "quartic = 0", lambda c: c.quartic == 0),
        Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
        Assumption("saddle_init", "init = saddle", lambda c: c.init == "saddle"),
        Assumption("projection", "escape criterion projection",
                   lambda c: c.escape == "projection"),
        *noise_assumptions,
        Assumption("spread", "gamma R ||E||_inf <= sqrt(min_i v_i): no entry's escape signal "
                   "overtakes its noise before the radius (fails on the partial basis)",
                   _signal_below_noise),
        Assumption("slow_mode", "h gamma <= 0.1, h = eta/sqrt(vbar) (slow compared with the "
                   "first moment)", lambda c: _rate(c) * c.gamma <= 0.1),
        Assumption("far_radius", "R >= 20 s (the asymptotic law's O(s/R) error is small)",
                   lambda c: c.radius >= 20 * _spread_s(c)),
        budget,
    )


_GAUSSIAN = (
    Assumption("entrywise_gaussian", "noise isotropic, opnorm or kronecker (independent "
               "Gaussian entries of a per-row variance)",
               lambda c: _entrywise(c) and NOISES[c.noise].gaussian_along_e
               and (c.sigma or 0) > 0),
)
_CLT = (
    Assumption("entrywise_heavy", "student_t noise (independent non-Gaussian entries; the "
               "Gaussian result covers the others)",
               lambda c: _entrywise(c) and not NOISES[c.noise].gaussian_along_e),
    Assumption("finite_variance", "Var <Xi, E> < infinity (student_t: nu > 2)",
               lambda c: math.isfinite(noise_facts(c).e_variance[0])),
    Assumption("many_steps", "N = (1 + g^-2)/(1 - g^-2) >= 10 noise steps averaged by Z "
               "(the CLT's sample size)", lambda c: effective_steps(_g(c)) >= 10),
)

_D_DEP = ("one per-entry noise law and a constant bulk: none; a power-law bulk's top "
          "eigenvalue ~ D^{1/alpha} pushes sqrt(vbar) up like D^{1/alpha} once h lambda_max "
          "passes the edge 2(1 + beta_1)/(1 - beta_1)")

ADAMW_INCOHERENT = Result(
    name="adamw_incoherent_estimate",
    title="AdamW escape time on a dense basis: SGD with the bulk-inflated preconditioner",
    quantity="escape_time",
    kind="estimate",
    optimizer=ADAMW,
    lhs=r"\mathbb{E}\,\tau",
    expr=EXPR,
    definitions=DEFS,
    assumptions=_common(_GAUSSIAN, "adamw_incoherent_estimate"),
    params=_params,
    page="adamw_incoherent",
    d_dependence=_D_DEP,
    summary="vbar and sigma_n from the self-consistent stationary bulk (Lyapunov, per bulk "
    "eigenvalue)",
)

ADAMW_INCOHERENT_CLT = Result(
    name="adamw_incoherent_clt",
    title="AdamW escape time on a dense basis, non-Gaussian entries (CLT along E)",
    quantity="escape_time",
    kind="estimate",
    optimizer=ADAMW,
    lhs=r"\mathbb{E}\,\tau",
    expr=EXPR,
    definitions=DEFS,
    assumptions=_common(_CLT, "adamw_incoherent_clt"),
    params=_params,
    page="adamw_incoherent",
    d_dependence=_D_DEP,
    summary="the Gaussian law through Lindeberg's CLT over the ~N steps Z averages",
)

RESULT_BY_NAME = {r.name: r for r in (ADAMW_INCOHERENT, ADAMW_INCOHERENT_CLT)}
