r"""The SGD escape-time law for a linear unstable mode with Gaussian noise.

Plain SGD on the spectral saddle moves the escape coordinate a by

    a_{t+1} = g a_t - eta xi_t,   g = 1 + eta gamma,   xi_t ~ N(0, sigma_E^2) iid,

(sigma_E^2 = Var <Xi, E>, from ``theory.noise_facts``). Hence a_t is Gaussian with mean
a_0 g^t and variance eta^2 sigma_E^2 (g^{2t} - 1)/(g^2 - 1). Write a_t = g^t Z_t: Z_t is a
martingale converging to Z ~ N(a_0, s^2) with s^2 = eta^2 sigma_E^2/(g^2 - 1) (+ init_scale^2
for a random init). For R >> s the escape time is, up to O(s/R),

    tau = ceil(ln(R/|Z|)/ln g).

With lambda = a_0^2/s^2, Z^2/s^2 is noncentral chi-square with one degree of freedom, a
Poisson(lambda/2) mixture of chi-square(1 + 2j). So E ln(Z^2/s^2) = ell(lambda) and
Var ln(Z^2/s^2) = v(lambda) with

    ell(lambda) = ln 2 + sum_j p_j psi(j + 1/2),
    v(lambda)   = sum_j p_j [psi_1(j + 1/2) + (ln 2 + psi(j + 1/2))^2] - ell^2,
    p_j = e^{-lambda/2} (lambda/2)^j / j!.

(ell(0) = -gamma_E - ln 2, v(0) = pi^2/2.) Therefore

    E tau   ~ (ln(R/s) - ell(lambda)/2)/ln g + 1/2,
    sd tau  ~ sqrt(v(lambda)/(4 ln^2 g) + 1/12),

the 1/2 and 1/12 being the mean and variance of the rounding up to an integer step.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special as sc
import sympy as sp

from ..optimizers import SGDSpec
from ._core import FUNCTIONS, Assumption, Result
from .noise_facts import noise_facts

SGD = SGDSpec.name

__all__ = [
    "ell",
    "vee",
    "sgd_mean",
    "sgd_sd",
    "simulate_linear_sgd",
    "SGD_MEAN",
    "SGD_SD",
]


def _poisson_weights(lam: float):
    mu = lam / 2
    jmax = int(mu + 12 * math.sqrt(mu + 1) + 20)
    j = np.arange(jmax + 1)
    logp = -mu + j * (math.log(mu) if mu > 0 else 0.0) - sc.gammaln(j + 1)
    if mu == 0:
        logp = np.where(j == 0, 0.0, -np.inf)
    return j, np.exp(logp)


def ell(lam) -> float:
    """E ln X for X ~ noncentral chi-square(1, lambda)."""
    lam = float(lam)
    j, p = _poisson_weights(lam)
    return float(math.log(2) + np.sum(p * sc.digamma(j + 0.5)))


def vee(lam) -> float:
    """Var ln X for X ~ noncentral chi-square(1, lambda)."""
    lam = float(lam)
    j, p = _poisson_weights(lam)
    mean_j = math.log(2) + sc.digamma(j + 0.5)
    second = np.sum(p * (sc.polygamma(1, j + 0.5) + mean_j**2))
    return float(second - ell(lam) ** 2)


FUNCTIONS["ell"] = np.vectorize(ell)
FUNCTIONS["v"] = np.vectorize(vee)
ell_f = sp.Function("ell")
v_f = sp.Function("v")

eta, gam, sig, R, a0, s0 = sp.symbols("eta gamma sigma_E R a_0 s_0", positive=True)
g = sp.Symbol("g", positive=True)
s = sp.Symbol("s", positive=True)
lam = sp.Symbol("lambda", nonnegative=True)

MEAN_EXPR = (sp.log(R / s) - ell_f(lam) / 2) / sp.log(g) + sp.Rational(1, 2)
SD_EXPR = sp.sqrt(v_f(lam) / (4 * sp.log(g) ** 2) + sp.Rational(1, 12))
# substituted last first: lambda, then s, then g
DEFS = (
    (g, 1 + eta * gam),
    (s, sp.sqrt(eta**2 * sig**2 / (g**2 - 1) + s0**2)),
    (lam, a0**2 / s**2),
)


def _params(c) -> dict[str, float]:
    facts = noise_facts(c)
    sig_e = math.sqrt(facts.e_variance[0])
    if sig_e == 0 and c.init != "random":
        raise ValueError("no noise and no random init: deterministic")
    return {
        "eta": c.learning_rate,
        "gamma": c.gamma,
        "sigma_E": sig_e,
        "R": c.radius,
        "a_0": abs(c.init_escape) if c.init_escape else 1e-300,
        "s_0": (c.init_scale or 0.0) if c.init == "random" else 0.0,
    }


def _spread(c) -> float:
    p = _params(c)
    gg = 1 + p["eta"] * p["gamma"]
    return math.sqrt(p["eta"] ** 2 * p["sigma_E"] ** 2 / (gg * gg - 1) + p["s_0"] ** 2)


def sgd_mean(c) -> float | None:
    return SGD_MEAN.evaluate(c)


def sgd_sd(c) -> float | None:
    return SGD_SD.evaluate(c)


def simulate_linear_sgd(eta_v, gamma_v, sigma_e, a0_v, radius, runs, rng, max_steps=100_000,
                        s0_v=0.0):
    """Escape times of the scalar recursion a <- (1 + eta gamma) a - eta xi (vectorized)."""
    a = a0_v + s0_v * rng.standard_normal(runs)
    tau = np.full(runs, -1, np.int64)
    alive = np.ones(runs, bool)
    gg = 1 + eta_v * gamma_v
    for t in range(1, max_steps + 1):
        a = gg * a - eta_v * sigma_e * rng.standard_normal(runs)
        hit = alive & (np.abs(a) >= radius)
        tau[hit] = t
        alive &= ~hit
        if not alive.any():
            break
    return tau


_SGD_ASSUME = (
    Assumption(SGD, "plain SGD (momentum 0)", lambda c: c.optimizer == SGD and not c.momentum),
    Assumption("rank_one", "escape_rank = 1", lambda c: c.escape_rank == 1),
    Assumption("no_quartic", "quartic = 0", lambda c: c.quartic == 0),
    Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
    Assumption("projection", "escape criterion projection", lambda c: c.escape == "projection"),
    Assumption("gaussian", "<Xi, E> Gaussian (none, isotropic, opnorm, kronecker noise)",
               lambda c: noise_facts(c).gaussian_along_e),
    Assumption("stable_bulk", "eta * (largest bulk eigenvalue) < 2 (bulk does not diverge)",
               lambda c: c.learning_rate * c.bulk_scale < 2),
    Assumption("far_radius", "R >= 20 s (the asymptotic law's O(s/R) error is small)",
               lambda c: c.radius >= 20 * _spread(c)),
    Assumption("budget", "max_steps >= 3 x the predicted mean (little censoring)",
               lambda c: c.max_steps >= 3 * (SGD_MEAN.evaluate(c) or math.inf)),
)

SGD_MEAN = Result(
    name="sgd_escape_mean",
    title="SGD mean escape time of a linear unstable mode",
    quantity="escape_time",
    kind="estimate",
    optimizer=SGD,
    lhs=r"\mathbb{E}\,\tau",
    expr=MEAN_EXPR,
    definitions=DEFS,
    assumptions=_SGD_ASSUME,
    params=_params,
    page="sgd_law",
    d_dependence="through sigma_E only: isotropic none; opnorm sigma/(sqrt m + sqrt n) adds "
    "ln(sqrt m + sqrt n)/ln g steps (a log D slow-down)",
    summary="asymptotic in s/R; exact distribution of Z",
)

SGD_SD = Result(
    name="sgd_escape_sd",
    title="SGD escape-time standard deviation",
    quantity="escape_time_sd",
    kind="estimate",
    optimizer=SGD,
    lhs=r"\operatorname{sd}\,\tau",
    expr=SD_EXPR,
    definitions=DEFS,
    assumptions=_SGD_ASSUME,
    params=_params,
    page="sgd_law",
    d_dependence="none (depends on a_0/s only)",
    summary="spread of ln|Z| plus rounding",
)
