r"""The quartic cap kappa > 0: an escape window that the orthogonal drift closes.

With f = 1/2 sum Lambda_ij C_ij^2 + (kappa/4) ||X||_F^4 (X = W - W*), the gradient along the
escape coordinate a = <E, X> and along a bulk coordinate x (constant bulk lambda) is

    d f/d a = -(gamma - kappa ||X||_F^2) a,     d f/d x = (lambda + kappa ||X||_F^2) x,

and ||X||_F^2 = a^2 + S with S = ||X_perp||_F^2 the orthogonal (bulk) spread. So the escape
mode grows at the effective rate gamma - kappa (a^2 + S): the deterministic flow of a stops
at a_*^2 = gamma/kappa - S. It reaches the radius R only while

    gamma_R = gamma - kappa (R^2 + S_R) > 0          (the window is open),

S_R being the spread while a is near R (the bulk is a little stiffer there,
lambda + kappa (R^2 + S)). The noise fills the bulk: S grows with D, and once
kappa (R^2 + S) reaches gamma the window closes (the "cliff"): the flow stalls at a_* < R
and only a barrier crossing against the noise can still leave (exponentially slow once
R - a_* exceeds a few standard deviations of a's fluctuation around a_*).

**The stationary bulk spread S (mean field).** The bulk relaxes in about 1/(eta lambda)
steps, the escape grows in about 1/(eta gamma): for lambda >> gamma the bulk is stationary
while a grows. With a constant bulk and iid Gaussian noise entries (std sigma_e) every
bulk entry x obeys the same linear recursion with gradient lambda_eff x + sigma_e xi and
lambda_eff = lambda + kappa (a^2 + S) (the Hessian is lambda_eff I off the escape direction,
in any basis, so S does not depend on the basis); S = (D - r) Var x.

- SGD (step h = eta, no momentum): an AR(1) process,
  Var x = eta sigma_e^2 / (lambda_eff (2 - eta lambda_eff)).
- AdamW: the second moment v averages g^2 over ~1/(1 - beta_2) steps, so it settles at
  v = sigma_e^2 + lambda_eff^2 Var x; the step is h = eta/sqrt(v) times the EMA momentum
  M <- beta_1 M + (1 - beta_1) g. (x, M) is a linear Gaussian recursion z' = A z + b xi and
  Var x comes from the discrete Lyapunov equation Sigma = A Sigma A^T + b b^T, solved
  jointly with the self-consistency of v. (In the slow limit eta lambda/sigma_e << 1 - beta_1
  this is SGD with rate eta/sigma_e; at the matched-spectral rates of the map the momentum
  halves S.)
- Muon: ||O||_F^2 = min(m, n) for the orthogonalized update O = polar(U), U the (Nesterov)
  momentum, so Delta ||X||_F^2 = -2 eta k_s <X, O> + (eta k_s)^2 min(m, n) each step: every
  singular direction takes an eta k_s step and the bulk's restoring force <X, O> balances it.
  The mean-field model replaces polar(U) by U sqrt(min(m, n))/||U||_F (normalized momentum
  SGD, the same Frobenius norm): each entry follows momentum SGD with step
  h = eta k_s sqrt(min(m, n)/(D E[u^2])), E[u^2] the per-entry second moment of U from the
  same Lyapunov solution, solved self-consistently. This is an approximation (the polar
  factor's response is not isotropic); against Newton-Schulz Muon it was within 10% at
  the matched-spectral rate and 30% high at the matched-RMS rate (32^2 and 64^2).

**Escape time with the window open (an estimate).** Replace gamma by the effective rate.
SGD: a_{t+1} = (1 + eta (gamma - kappa (a_t^2 + S))) a_t - eta xi_t. The noise-driven
start is the SGD law (:mod:`theory.sgd`) with gamma_0 = gamma - kappa S_0 (S at a = 0):
a_t ~ g^t Z, g = 1 + eta gamma_0. Once a is large the cubic term slows the growth; with S
held at its value the flow da/dt = eta a (gamma_0 - kappa a^2) integrates in closed form,

    int_s^R da/(a (gamma_0 - kappa a^2)) = (ln(R/s) + 1/2 ln(gamma_0/(gamma_0 - kappa R^2)))
                                            / gamma_0    (s << R),

and gamma_0 - kappa R^2 -> gamma_R makes the stiffer bulk at the radius count. Hence

    E tau ~ (ln(R/s) + 1/2 ln(gamma_0/gamma_R) - ell(lambda)/2)/ln g + 1/2,

diverging logarithmically at the cliff gamma_R -> 0. AdamW (coherent basis, where the escape
coordinate is one entry): the two phases of :mod:`theory.adamw` with gamma_0 in place of
gamma; phase 2 runs the scalar AdamW recursion with the gradient -(gamma - kappa (a^2 +
S(a))) a and the noise's floor sigma_E^2 in the second moment (near the cliff the gradient
falls below the noise and the step shrinks to eta |grad|/sigma_E, which a noise-free second
moment would miss). With the window closed both estimates return None: no escape (a
censored run at any budget, up to the barrier crossing above).

**The cliff (an estimate).** The largest kappa with the window open at the config's
dimension and learning rate, kappa_c = gamma/(R^2 + S_R(kappa_c)), solved by fixed-point
iteration (S depends on kappa only through lambda_eff, weakly). The window is open iff
kappa < kappa_c. Where D enters: S ~ D Var x, and Var x falls with the rate; at a fixed rate
kappa_c ~ 1/D once S >> R^2.
"""

from __future__ import annotations

import math
from functools import lru_cache, wraps

import numpy as np
import sympy as sp

from ..optimizers import AdamWSpec, MuonSpec, SGDSpec, muon_scale
from ..registry import NOISES
from ._core import FUNCTIONS, Assumption, Result
from .noise_facts import noise_facts
from .sgd import ell_f

SGD, ADAMW, MUON = SGDSpec.name, AdamWSpec.name, MuonSpec.name
OPTIMIZERS = (SGD, ADAMW, MUON)

__all__ = ["bulk_spread", "window_margin", "critical_quartic", "entry_variance",
           "QUARTIC_BULK_SPREAD", "QUARTIC_SGD_ESCAPE", "QUARTIC_ADAMW_ESCAPE",
           "QUARTIC_CLIFF"]

_ITERATIONS = 400
_TOL = 1e-8


def entry_variance(h: float, lam: float, sig: float, beta: float,
                   nesterov: bool) -> tuple[float, float]:
    """(Var x, E u^2) of the stationary linear recursion of one bulk entry:

    g = lam x + sig xi,  M' = beta M + (1 - beta) g,  u = (1 - beta) g + beta M' (Nesterov)
    or M',  x' = x - h u.  Infinite when the recursion is unstable.
    """
    if nesterov:
        cx, cm, cxi = (1 - beta) * lam * (1 + beta), beta * beta, (1 - beta) * (1 + beta) * sig
    else:
        cx, cm, cxi = (1 - beta) * lam, beta, (1 - beta) * sig
    # z' = A z + b xi, z = (x, M); Sigma = A Sigma A^T + b b^T for (s11, s12, s22)
    a11, a12, a21, a22 = 1 - h * cx, -h * cm, (1 - beta) * lam, beta
    b1, b2 = -h * cxi, (1 - beta) * sig
    tr, det = a11 + a22, a11 * a22 - a12 * a21
    # Jury's criterion: both eigenvalues of A inside the unit disc
    if not (abs(det) < 1 and abs(tr) < 1 + det):
        return math.inf, math.inf
    mat = np.array([
        [1 - a11 * a11, -2 * a11 * a12, -a12 * a12],
        [-a11 * a21, 1 - (a11 * a22 + a12 * a21), -a12 * a22],
        [-a21 * a21, -2 * a21 * a22, 1 - a22 * a22],
    ])
    s11, s12, s22 = np.linalg.solve(mat, [b1 * b1, b1 * b2, b2 * b2])
    eu2 = cx * cx * s11 + 2 * cx * cm * s12 + cm * cm * s22 + cxi * cxi
    return float(s11), float(eu2)


def _step_model(c):
    """(kind, beta, nesterov): the per-entry model of the config's optimizer."""
    if c.optimizer == SGD:
        return SGD, 0.0, False
    if c.optimizer == ADAMW:
        return ADAMW, c.b1, False
    if c.optimizer == MUON:
        return MUON, c.momentum, bool(c.nesterov)
    raise ValueError(f"no bulk model for {c.optimizer}")


@lru_cache(maxsize=4096)
def _spread(kind, eta, ks, lam, sig, beta, nesterov, m, n, r, kappa, a2) -> float:
    D = m * n
    S = 0.0
    v = sig * sig  # AdamW: E g^2; Muon: E u^2
    for _ in range(_ITERATIONS):
        lam_eff = lam + kappa * (a2 + S)
        if kind == SGD:
            var = (eta * sig * sig / (lam_eff * (2 - eta * lam_eff))
                   if eta * lam_eff < 2 else math.inf)
            new_v = v
        else:
            h = (eta / math.sqrt(v) if kind == ADAMW
                 else eta * ks * math.sqrt(min(m, n) / (D * v)))
            var, eu2 = entry_variance(h, lam_eff, sig, beta, nesterov)
            new_v = sig * sig + lam_eff**2 * var if kind == ADAMW else eu2
        if not math.isfinite(var):
            return math.inf
        new_S = (D - r) * var
        done = abs(new_S - S) <= _TOL * new_S and abs(new_v - v) <= _TOL * v
        # v is damped (the normalized step overshoots); S is not
        S, v = new_S, (v * new_v) ** 0.5
        if done:
            break
    return float(S)


def _spread_key(c) -> tuple:
    kind, beta, nesterov = _step_model(c)
    ks = muon_scale((c.m, c.n), c.scaling) if kind == MUON else 1.0
    return (kind, float(c.learning_rate), float(ks), float(c.bulk_scale),
            float(noise_facts(c).entry_std), float(beta), nesterov, c.m, c.n, c.escape_rank)


def bulk_spread(config, a2: float = 0.0, kappa: float | None = None) -> float:
    """S = ||X_perp||_F^2 of the stationary bulk while the escape coordinate sits at
    a^2 = ``a2`` (module docstring), at the config's quartic cap or at ``kappa``; inf when
    the bulk recursion is unstable."""
    k = float(config.quartic if kappa is None else kappa)
    key = _spread_key(config)
    if key[4] <= 0:
        return 0.0  # no noise: the bulk stays at rest
    return _spread(*key, k, float(a2))


def window_margin(config) -> float:
    """gamma_R = gamma - kappa (R^2 + S_R): the escape rate left at the radius; the window
    is open iff it is positive."""
    c = config
    r2 = c.radius**2
    return c.gamma - c.quartic * (r2 + bulk_spread(c, a2=r2))


def critical_quartic(config) -> float:
    """kappa_c = gamma/(R^2 + S_R(kappa_c)): the largest kappa with the window open at the
    config's dimension and learning rate (fixed-point iteration from kappa = 0)."""
    c = config
    r2 = c.radius**2
    kappa = c.gamma / r2
    for _ in range(100):
        S = bulk_spread(c, a2=r2, kappa=kappa)
        new = c.gamma / (r2 + S)
        if abs(new - kappa) <= 1e-9 * kappa:
            return float(new)
        kappa = new
    return float(kappa)


# ---- escape-time estimates -----------------------------------------------------------------

def window_closed(config) -> bool:
    """True when the quartic cap closes the escape window for this config: the drift-reduced
    rate is <= 0 at a = 0 or at the radius (the estimates' None then means no escape)."""
    try:
        return (window_margin(config) <= 0
                or config.gamma - config.quartic * bulk_spread(config) <= 0)
    except (ValueError, ZeroDivisionError):
        return False


def _params_or_none(fn):
    """A config the formula cannot take (no radius, gamma = 0, ...) gives ValueError, which
    Result.evaluate reads as "no value"."""
    @wraps(fn)
    def wrapped(c, *args, **kw):
        try:
            return fn(c, *args, **kw)
        except (ZeroDivisionError, TypeError, OverflowError) as err:
            raise ValueError(f"{fn.__name__}: {err}") from err
    return wrapped


def _iid_noise(c) -> bool:
    spec = NOISES[c.noise]
    return (spec.rotation_invariant and spec.gaussian_along_e
            and noise_facts(c).entry_std > 0)


def _sigma_e(c) -> float:
    sig_e = math.sqrt(noise_facts(c).e_variance[0])
    if sig_e == 0:
        raise ValueError("no noise")
    return sig_e


@_params_or_none
def _sgd_params(c) -> dict[str, float]:
    if window_margin(c) <= 0 or c.gamma - c.quartic * bulk_spread(c) <= 0:
        raise ValueError("the escape window is closed: no escape")
    return {"eta": c.learning_rate, "gamma": c.gamma, "kappa": c.quartic,
            "S_0": bulk_spread(c), "S_R": bulk_spread(c, a2=c.radius**2),
            "sigma_E": _sigma_e(c), "R": c.radius,
            "a_0": abs(c.init_escape) if c.init_escape else 1e-300}


eta, R, a0, sig = sp.symbols("eta R a_0 sigma_E", positive=True)
gam0, gamR = sp.symbols("gamma_0 gamma_R", positive=True)
gam, kap, S0, SR = sp.symbols("gamma kappa S_0 S_R", positive=True)
g, s, lam = sp.symbols("g s lambda", positive=True)
T2, sA, astar = sp.symbols("T_2 s_A a_*", positive=True)

SGD_EXPR = ((sp.log(R / s) + sp.log(gam0 / gamR) / 2 - ell_f(lam) / 2) / sp.log(g)
            + sp.Rational(1, 2))
SGD_DEFS = (
    (gam0, gam - kap * S0),
    (gamR, gam - kap * (R**2 + SR)),
    (g, 1 + eta * gam0),
    (s, eta * sig / sp.sqrt(g**2 - 1)),
    (lam, a0**2 / s**2),
)


def _sgd_spread(c) -> float:
    g0 = c.gamma - c.quartic * bulk_spread(c)
    gg = 1 + c.learning_rate * g0
    return c.learning_rate * _sigma_e(c) / math.sqrt(gg * gg - 1) if g0 > 0 else math.inf


def _common() -> tuple[Assumption, ...]:
    return (
        Assumption("quartic", "quartic cap kappa > 0 (kappa = 0 is the plain law's)",
                   lambda c: c.quartic > 0),
        Assumption("rank_one", "escape_rank = 1", lambda c: c.escape_rank == 1),
        Assumption("constant_bulk", "constant bulk lambda > 0 (every bulk entry alike)",
                   lambda c: c.bulk == "constant" and c.bulk_scale > 0),
        Assumption("fast_bulk", "lambda >= 5 gamma (the bulk is stationary while a grows)",
                   lambda c: c.bulk_scale >= 5 * c.gamma > 0),
        Assumption("iid_noise", "iid Gaussian noise entries (isotropic or opnorm: rotation-"
                   "invariant and Gaussian)", _iid_noise),
        Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
        Assumption("saddle_init", "init = saddle (a_0 = init_escape, bulk at rest)",
                   lambda c: c.init == "saddle"),
        Assumption("saddle_zero", "W* = 0", lambda c: c.saddle_point == "zero"),
        Assumption("projection", "escape criterion projection",
                   lambda c: c.escape == "projection"),
    )


QUARTIC_SGD_ESCAPE = Result(
    name="quartic_sgd_escape",
    title="SGD escape time under the quartic cap: the SGD law at the drift-reduced rate",
    quantity="escape_time",
    kind="estimate",
    optimizer=SGD,
    lhs=r"\mathbb{E}\,\tau",
    expr=SGD_EXPR,
    definitions=SGD_DEFS,
    assumptions=(Assumption(SGD, "plain SGD (momentum 0)",
                            lambda c: c.optimizer == SGD and not c.momentum),)
    + _common() + (
        Assumption("stable_bulk", "eta lambda < 2", lambda c: c.learning_rate * c.bulk_scale < 2),
        Assumption("far_radius", "R >= 20 s (the SGD law's asymptotic regime)",
                   lambda c: c.radius >= 20 * _sgd_spread(c)),
        Assumption("budget", "max_steps >= 3 x the estimate (little censoring)",
                   lambda c: c.max_steps >= 3 * (QUARTIC_SGD_ESCAPE.evaluate(c) or math.inf)),
    ),
    params=_sgd_params,
    page="quartic",
    d_dependence="through the bulk spread S = (D - 1) eta sigma^2/(lambda (2 - eta lambda)) in "
    "gamma_0 = gamma - kappa S and gamma_R = gamma - kappa (R^2 + S_R); None (no escape) once "
    "gamma_R <= 0",
    summary="gamma_0, gamma_R from the stationary bulk spread (quartic_bulk_spread); the value "
    "is None when the window is closed",
    extra={"no_escape": window_closed},
)


def adamw_quartic_phase2(c, a_start: float, t_start: float) -> float:
    """Steps of the scalar AdamW recursion from a_start to the radius, with the gradient
    -(gamma - kappa (a^2 + S(a))) a and the noise's floor sigma_E^2 in the second moment;
    S(a) interpolates linearly in a^2 between S_0 and S_R. inf when the window is closed or
    the recursion needs more than 200,000 steps."""
    if window_margin(c) <= 0:
        return math.inf
    return _phase2(float(a_start), max(int(t_start), 1), float(c.radius), float(c.gamma),
                   float(c.quartic), bulk_spread(c), bulk_spread(c, a2=c.radius**2),
                   _sigma_e(c) ** 2, float(c.learning_rate), float(c.b1), float(c.b2),
                   float(c.eps))


@lru_cache(maxsize=1024)
def _phase2(a, t, radius, gamma, kappa, s0, s_r, sig2, lr, b1, b2, eps, cap=200_000):
    r2 = radius * radius
    rate = gamma - kappa * (a * a + s0 + (s_r - s0) * a * a / r2)
    m_raw = rate * a * (1 - b1**t)  # -grad; bias-corrected value rate * a
    v_raw = (sig2 + (rate * a) ** 2) * (1 - b2**t)
    k = 0
    while a < radius:
        if k >= cap:
            return math.inf
        t += 1
        k += 1
        rate = gamma - kappa * (a * a + s0 + (s_r - s0) * a * a / r2)
        push = rate * a
        m_raw = b1 * m_raw + (1 - b1) * push
        v_raw = b2 * v_raw + (1 - b2) * (push * push + sig2)
        a += lr * (m_raw / (1 - b1**t)) / (math.sqrt(v_raw / (1 - b2**t)) + eps)
    return float(k)


def adamw_quartic_phases(c) -> tuple[float, float]:
    """(T_1, T_2): the noise-dominated phase at the rate gamma_0 and the quartic phase 2."""
    p = _adamw_params(c, with_t2=False)
    gg = 1 + p["eta"] * p["gamma_0"] / p["sigma_E"]
    s_a = p["eta"] / math.sqrt(gg * gg - 1)
    a_st = p["sigma_E"] / p["gamma_0"]
    t1 = (math.log(min(p["R"], a_st) / s_a) - FUNCTIONS["ell"]((p["a_0"] / s_a) ** 2) / 2) \
        / math.log(gg)
    t1 = max(t1, 0.0)
    if window_margin(c) <= 0:
        return t1, math.inf
    t2 = adamw_quartic_phase2(c, a_st, t1) if p["R"] > a_st else 0.0
    return t1, t2


@_params_or_none
def _adamw_params(c, with_t2=True) -> dict[str, float]:
    g0 = c.gamma - c.quartic * bulk_spread(c)
    if g0 <= 0:
        raise ValueError("the drift cancels the escape rate at a = 0: no escape")
    out = {"eta": c.learning_rate, "gamma": c.gamma, "kappa": c.quartic,
           "S_0": bulk_spread(c), "gamma_0": g0, "sigma_E": _sigma_e(c), "R": c.radius,
           "a_0": abs(c.init_escape) if c.init_escape else 1e-300}
    if with_t2:
        out["T_2"] = adamw_quartic_phases(c)[1]
    return out


ADAMW_EXPR = (sp.log(sp.Min(R, astar) / sA) - ell_f(lam) / 2) / sp.log(g) + T2
ADAMW_DEFS = (
    (gam0, gam - kap * S0),
    (g, 1 + eta * gam0 / sig),
    (sA, eta / sp.sqrt(g**2 - 1)),
    (lam, a0**2 / sA**2),
    (astar, sig / gam0),
)

QUARTIC_ADAMW_ESCAPE = Result(
    name="quartic_adamw_escape",
    title="AdamW escape time under the quartic cap (coherent basis): two phases at the "
    "drift-reduced rate",
    quantity="escape_time",
    kind="estimate",
    optimizer=ADAMW,
    lhs=r"\mathbb{E}\,\tau",
    expr=ADAMW_EXPR,
    definitions=ADAMW_DEFS,
    assumptions=(Assumption(ADAMW, "optimizer adamw", lambda c: c.optimizer == ADAMW),
                 Assumption("coherent", "coherent basis (the escape coordinate is one entry)",
                            lambda c: c.basis == "coherent"))
    + _common() + (
        Assumption("slow_mode", "eta gamma/sigma_E <= 0.1 (slow compared with the moments)",
                   lambda c: c.learning_rate * c.gamma / _sigma_e(c) <= 0.1),
        Assumption("budget", "max_steps >= 3 x the estimate (little censoring)",
                   lambda c: c.max_steps >= 3 * (QUARTIC_ADAMW_ESCAPE.evaluate(c) or math.inf)),
    ),
    params=_adamw_params,
    page="quartic",
    d_dependence="through the bulk spread S ~ (D - 1) Var x (AdamW's Lyapunov variance) in "
    "gamma_0 and in phase 2; None (no escape) once gamma - kappa (R^2 + S_R) <= 0",
    summary="T_2 from the scalar AdamW recursion with the quartic gradient and the noise floor; "
    "the value is None when the window is closed",
    extra={"no_escape": window_closed},
)


# ---- the bulk spread and the cliff --------------------------------------------------------

def _model_assumptions() -> tuple[Assumption, ...]:
    return (
        Assumption("optimizer", "SGD (momentum 0), AdamW or Muon",
                   lambda c: c.optimizer in OPTIMIZERS and not (c.optimizer == SGD
                                                                and c.momentum)),
        Assumption("constant_bulk", "constant bulk lambda > 0 (every bulk entry alike)",
                   lambda c: c.bulk == "constant" and c.bulk_scale > 0),
        Assumption("iid_noise", "iid Gaussian noise entries (isotropic or opnorm: rotation-"
                   "invariant and Gaussian)", _iid_noise),
        Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
        Assumption("saddle_zero", "W* = 0", lambda c: c.saddle_point == "zero"),
        Assumption("stable_bulk", "the bulk recursion is stable (finite spread)",
                   lambda c: math.isfinite(bulk_spread(c))),
    )


_D, _r, _vx = sp.symbols("D r v_x", positive=True)

QUARTIC_BULK_SPREAD = Result(
    name="quartic_bulk_spread",
    title="Stationary orthogonal spread ||X_perp||_F^2 of a constant bulk (SGD, AdamW, Muon)",
    quantity="bulk_spread",
    kind="estimate",
    optimizer=None,
    lhs=r"\mathbb{E}\,\|X_\perp\|_F^2",
    expr=(_D - _r) * _vx,
    assumptions=_model_assumptions(),
    params=_params_or_none(lambda c: {"D": c.m * c.n, "r": c.escape_rank,
                                      "v_x": bulk_spread(c) / (c.m * c.n - c.escape_rank)}),
    page="quartic",
    d_dependence="D - r entries times the per-entry variance v_x; v_x depends on D through "
    "the rate only (SGD, AdamW) and, for Muon, through the normalization "
    "h = eta k_s sqrt(min(m, n)/(D E u^2)): S ~ D^{3/4} at a fixed spectral step",
    summary="v_x: the stationary variance of one bulk entry's linear recursion (discrete "
    "Lyapunov equation; AdamW's v and Muon's normalization solved self-consistently); at "
    "a = 0, kappa included through lambda + kappa S",
)

_gam, _Sc = sp.symbols("gamma S_c", positive=True)


@_params_or_none
def _cliff_params(c) -> dict[str, float]:
    if not c.gamma > 0:
        raise ValueError("gamma = 0: no window")
    kc = critical_quartic(c)
    return {"gamma": c.gamma, "R": c.radius, "S_c": c.gamma / kc - c.radius**2}


QUARTIC_CLIFF = Result(
    name="quartic_cliff",
    title="The quartic cliff: the largest kappa whose escape window the bulk spread leaves "
    "open",
    quantity="critical_quartic",
    kind="estimate",
    optimizer=None,
    lhs=r"\kappa_c",
    expr=_gam / (R**2 + _Sc),
    assumptions=_model_assumptions() + (
        Assumption("gamma", "gamma > 0", lambda c: c.gamma > 0),
        Assumption("projection", "escape criterion projection",
                   lambda c: c.escape == "projection"),
    ),
    params=_cliff_params,
    page="quartic",
    d_dependence="S_c = S_R(kappa_c) grows with D (quartic_bulk_spread): kappa_c ~ gamma/S "
    "~ 1/D at a fixed rate once S >> R^2",
    summary="escape needs kappa < kappa_c; S_c is the spread at a = R and kappa = kappa_c "
    "(fixed point)",
)
