r"""Escape rank r > 1: r unstable modes, one criterion ||A|| >= R on their joint norm.

With ``escape_rank = r`` the saddle has r escape directions E_i = p_i q_i^T (orthonormal:
the p_i and the q_i are orthonormal columns of P and Q), all of curvature -gamma, and the
projection criterion reads ||A_t|| >= R with A_t = (<W_t - W*, E_i>)_{i < r}.

**Muon: a speed limit (proved).** Let O be one orthogonalized step (exact polar: ||O||_2 <= 1;
Newton-Schulz: ||O||_2 <= h, the largest output of the NS polynomial on [0, 1]). Its
component along the escape block is (p_i^T O q_i)_{i < r}, and |p_i^T O q_i| <= ||O||_2 for
each i, so ||Pi(O)|| <= sqrt(r) ||O||_2. Each step moves W by eta k_s O (no weight decay), so
||A_t|| <= ||A_0|| + t eta k_s h sqrt(r) for any gradient, noise, momentum and landscape, and

    tau >= ceil((R - |a_0|) / (eta k_s h sqrt(r))).

Equality needs every step to be the r escape directions at unit singular value: the polar
factor of a momentum dominated by gamma sum_i a_i E_i with equal a_i. Measured (16 x 16,
polar, isotropic sigma = 0.01, gamma = 0.1, eta = 0.02, 8 seeds, a_0 = 0.05 on the first
mode): median 63, 51, 45 steps at r = 1, 2, 3 against 48, 34, 28 (1.3 to 1.6 x): the modes
other than the first start from the noise and lag, so the joint norm grows more slowly than
sqrt(r) unit steps at first.

**SGD: the r modes are independent (estimate).** Plain SGD moves each escape coordinate by
a_i <- g a_i - eta xi_i with g = 1 + eta gamma and xi_i = <Xi, E_i>. Under isotropic Gaussian
noise the xi_i are iid N(0, sigma_E^2) (the E_i are orthonormal), so as in the rank-one law
(:mod:`theory.sgd`) A_t = g^t Z_t with Z_t a martingale converging to Z ~ N(a_0 e_1, s^2 I_r),
s^2 = eta^2 sigma_E^2/(g^2 - 1) + s_0^2. The escape time is ln(R/||Z||)/ln g up to O(s/R),
and ||Z||^2/s^2 is noncentral chi-square with r degrees of freedom and noncentrality
lambda = a_0^2/s^2: a Poisson(lambda/2) mixture of central chi-square(r + 2j). Hence

    E tau ~ (ln(R/s) - ell_r(lambda)/2)/ln g + 1/2,
    ell_r(lambda) = ln 2 + sum_j p_j psi(r/2 + j),   p_j = e^{-lambda/2} (lambda/2)^j / j!,

the 1/2 being the mean rounding up to a whole step (r = 1 is ``sgd_escape_mean``). At
a_0 = 0 the joint norm starts larger and grows at the same rate: the mean is
(psi(r/2) - psi(1/2))/(2 ln g) steps shorter than at r = 1, that is ln 2/ln g at r = 2 and
1/ln g at r = 3.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special as sc
import sympy as sp

from ..noise.gaussian import Isotropic, NoNoise
from ..optimizers import MuonSpec, SGDSpec, muon_scale
from ._core import FUNCTIONS, Assumption, Result
from .noise_facts import noise_facts
from .sgd import _poisson_weights

SGD = SGDSpec.name
MUON = MuonSpec.name
__all__ = ["ell_r", "simulate_rank_sgd", "SGD_RANK_MEAN", "MUON_RANK_SPEED_LIMIT"]


def ell_r(lam, r) -> float:
    """E ln X for X ~ noncentral chi-square(r, lambda)."""
    j, p = _poisson_weights(float(lam))
    return float(math.log(2) + np.sum(p * sc.digamma(j + float(r) / 2)))


FUNCTIONS["ell_r"] = np.vectorize(ell_r, otypes=[float])
ell_f = sp.Function("ell_r")

_eta, _gam, _sig, _R, _a0, _s0, _r = sp.symbols("eta gamma sigma_E R a_0 s_0 r", positive=True)
_g, _s = sp.symbols("g s", positive=True)
_lam = sp.Symbol("lambda", nonnegative=True)


def _sgd_params(c) -> dict[str, float]:
    var = noise_facts(c).e_variance
    sig_e = math.sqrt(var[0])
    if sig_e == 0 and c.init != "random":
        raise ValueError("no noise and no random init: deterministic")
    return {"eta": c.learning_rate, "gamma": c.gamma, "sigma_E": sig_e, "R": c.radius,
            "a_0": abs(c.init_escape) if c.init_escape else 1e-300,
            "s_0": (c.init_scale or 0.0) if c.init == "random" else 0.0,
            "r": c.escape_rank}


def _spread(c) -> float:
    p = _sgd_params(c)
    gg = 1 + p["eta"] * p["gamma"]
    return math.sqrt(p["eta"] ** 2 * p["sigma_E"] ** 2 / (gg * gg - 1) + p["s_0"] ** 2)


def simulate_rank_sgd(eta_v, gamma_v, sigma_e, a0_v, radius, r, runs, rng, max_steps=100_000,
                      s0_v=0.0):
    """Escape times of the r-mode recursion A <- (1 + eta gamma) A - eta xi (vectorized);
    a_0 on the first mode, the criterion ||A|| >= radius."""
    A = s0_v * rng.standard_normal((runs, r))
    A[:, 0] += a0_v
    tau = np.full(runs, -1, np.int64)
    alive = np.ones(runs, bool)
    gg = 1 + eta_v * gamma_v
    for t in range(1, max_steps + 1):
        A = gg * A - eta_v * sigma_e * rng.standard_normal((runs, r))
        hit = alive & (np.sum(A * A, axis=1) >= radius * radius)
        tau[hit] = t
        alive &= ~hit
        if not alive.any():
            break
    return tau


SGD_RANK_MEAN = Result(
    name="sgd_escape_mean_rank_r",
    title="SGD mean escape time of r independent unstable modes (joint-norm criterion)",
    quantity="escape_time",
    kind="estimate",
    optimizer=SGD,
    lhs=r"\mathbb{E}\,\tau",
    expr=(sp.log(_R / _s) - ell_f(_lam, _r) / 2) / sp.log(_g) + sp.Rational(1, 2),
    definitions=((_g, 1 + _eta * _gam), (_s, sp.sqrt(_eta**2 * _sig**2 / (_g**2 - 1) + _s0**2)),
                 (_lam, _a0**2 / _s**2)),
    assumptions=(
        Assumption(SGD, "plain SGD (momentum 0)", lambda c: c.optimizer == SGD
                   and not c.momentum),
        Assumption("no_quartic", "quartic = 0", lambda c: c.quartic == 0),
        Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
        Assumption("projection", "escape criterion projection (||A|| >= R)",
                   lambda c: c.escape == "projection"),
        Assumption("iid_modes", "isotropic Gaussian noise or none (the r coordinates' noises "
                   "are iid N(0, sigma_E^2))", lambda c: c.noise in (Isotropic.name, NoNoise.name)),
        Assumption("stable_bulk", "eta * (largest bulk eigenvalue) < 2",
                   lambda c: c.learning_rate * c.bulk_scale < 2),
        Assumption("far_radius", "R >= 20 s (the asymptotic law's O(s/R) error is small)",
                   lambda c: c.radius >= 20 * _spread(c)),
        Assumption("budget", "max_steps >= 3 x the predicted mean (little censoring)",
                   lambda c: c.max_steps >= 3 * (SGD_RANK_MEAN.evaluate(c) or math.inf)),
    ),
    params=_sgd_params,
    page="rank",
    d_dependence="as sgd_escape_mean (through sigma_E only); r enters through ell_r: "
    "(psi(r/2) - psi(1/2))/(2 ln g) steps sooner than r = 1 at a_0 = 0",
    summary="rank-one law with a chi-square(r) start; r = 1 is sgd_escape_mean",
)


def _speed_params(c) -> dict[str, float]:
    from .newton_schulz import ns_max_output

    if c.orthogonalizer == "polar":
        h = 1.0
    else:
        from ..optimizers import NS_COEFFS

        h = ns_max_output(c.ns_steps, NS_COEFFS)
    return {"R": c.radius, "a_0": abs(c.init_escape or 0.0), "eta": c.learning_rate,
            "k_s": muon_scale((c.m, c.n), c.scaling), "h": h, "r": c.escape_rank}


_ks, _h = sp.symbols("k_s h", positive=True)

MUON_RANK_SPEED_LIMIT = Result(
    name="muon_speed_limit",
    title="Muon: the escape block moves at most sqrt(r) eta k_s h a step",
    quantity="escape_time",
    kind="lower",
    optimizer=MUON,
    lhs=sp.Symbol("tau", positive=True),
    expr=sp.ceiling((_R - _a0) / (_eta * _ks * _h * sp.sqrt(_r))),
    assumptions=(
        Assumption(MUON, "the optimizer is Muon", lambda c: c.optimizer == MUON),
        Assumption("no_decay", "weight_decay = 0 (every step is eta k_s O, ||O||_2 <= h)",
                   lambda c: not c.weight_decay),
        Assumption("saddle_init", "init = saddle (A_0 = a_0 e_1)", lambda c: c.init == "saddle"),
        Assumption("projection", "escape criterion projection (||A|| >= R)",
                   lambda c: c.escape == "projection"),
    ),
    params=_speed_params,
    page="rank",
    d_dependence="none (h = 1 for polar, the NS polynomial's maximum on [0, 1] otherwise; "
    "k_s from the shape's scaling convention)",
    summary="proved for any gradient, noise, momentum and landscape; r = 1 included",
)
