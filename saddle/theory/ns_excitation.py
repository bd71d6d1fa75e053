r"""Newton-Schulz self-excitation of the bulk: the linear instability and its saturation.

Newton-Schulz Muon orthogonalizes U / ||U||_F with k steps of the odd polynomial
p(x) = a x + b x^3 + c x^5 (saddle/optimizers). Its composition phi^(k) has the Taylor
expansion phi^(k)(x) = a^k x + O(x^3) at 0, so a singular value x << 1 of the normalized input
is multiplied by p'(0)^k = a^k (484.876... for the lab's a = 3.4445 and k = 5), while the
singular value 1 of a rank-one input maps to phi^(k)(1) = 0.6964... (both exact numbers of
the polynomial; theory.newton_schulz has its ranges).

**Linearized bulk map.** Noise-free, with a small bulk displacement X (orthogonal to
E = p q^T), the gradient is -gamma a E + lambda X, and, to first order in X, the SVD of U is
the escape direction plus the bulk's own singular directions (Weyl: the bulk singular values
are perturbed by O(||X||^2 / s)). The NS output on a bulk singular direction is
a^k lambda x_U / ||U||_F with ||U||_F ~ S_t (the momentum's signal, sum_k w_k gamma a_k), so
each bulk singular value x obeys the linear recursion

    m <- beta m + (1 - beta) lambda x,  u = (1 - beta) lambda x + beta m (Nesterov; else m),
    x <- x - (eta k_s a^k / S_t) u.

Without momentum: x <- (1 - g) x with g = eta k_s a^k lambda / (gamma a_t), unstable for
g > 2. Frozen-coefficient Jury conditions give the stationary thresholds
g_c = 2(1 + beta)/((1 - beta)(1 + 2 beta)) (Nesterov) and 2(1 + beta)/(1 - beta) (EMA), but
as the lab runs it the momentum starts at zero: at the first step both the signal and the
bulk carry the same weight ((1 - beta^2) with Nesterov, (1 - beta) without), so the first step
is exactly the momentum-free map x <- (1 - g_0) x, g_0 = eta k_s a^k lambda / (gamma a_0).
The result's critical curvature comes from the time-varying linear recursion itself
(``linear_gain``): the smallest lambda at which a bulk direction grows (max_t |x_t| / |x_0| > 1)
before the escape, with a_t following the noise-free NS escape
a_{t+1} = a_t + eta k_s phi^(k)(1). For the lab's momenta it is the first step's
lambda_c = 2 gamma a_0 / (eta k_s a^k) (g_c = 2); later steps have a larger a_t and a
warmed-up momentum and are more stable.

**Saturation.** An excited bulk grows until its normalized singular values are no longer small;
then NS maps each of them to O(1), like the polar factor, and every bulk direction takes steps
of about eta k_s: ||X||_F ~ eta k_s sqrt(min(m, n) - 1) (exact at the first step for polar,
whose factor gives every nonzero singular direction a unit step). This is where D enters: the
drift's Frobenius norm grows as sqrt(min(m, n)) while each direction's amplitude stays one
step. As a_t grows the gain falls below threshold and the excited bulk decays again, so the
escape time is unchanged: noise-free NS escapes in ceil((R - a_0)/(eta k_s phi^(k)(1))) steps
at every shape (136 against polar's 95 at a_0 = 0.053, eta = 0.01, R = 1).
"""

from __future__ import annotations

import math

import sympy as sp

from ..optimizers import NS_COEFFS, muon_scale
from ._core import Assumption, Result
from .muon import MUON

__all__ = ["ns_slope", "ns_at_one", "linear_gain", "critical_bulk", "NS_BULK_THRESHOLD",
           "NS_BULK_SATURATION"]


def ns_slope(steps: int, coeffs=NS_COEFFS) -> float:
    """p'(0)^k = a^k: the NS map's slope at 0."""
    return float(coeffs[0]) ** steps


def ns_at_one(steps: int, coeffs=NS_COEFFS) -> float:
    """phi^(k)(1): the NS output of a rank-one input's singular value."""
    a, b, c = coeffs
    x = 1.0
    for _ in range(steps):
        x = a * x + b * x**3 + c * x**5
    return x


def linear_gain(config, lam: float) -> float:
    """max_t |x_t| / |x_0| of the linearized bulk recursion (module docstring) up to the
    noise-free escape of ``config`` with bulk curvature ``lam``."""
    c = config
    ks = muon_scale((c.m, c.n), c.scaling)
    beta, eta, gamma = c.momentum, c.learning_rate, c.gamma
    kappa = eta * ks * ns_slope(c.ns_steps)
    step_a = eta * ks * ns_at_one(c.ns_steps)
    a, ms, x, mb, gain = c.init_escape, 0.0, 1.0, 0.0, 1.0
    for _ in range(c.max_steps):
        if a >= c.radius:
            break
        ms = beta * ms + (1 - beta) * gamma * a
        mb = beta * mb + (1 - beta) * lam * x
        S = (1 - beta) * gamma * a + beta * ms if c.nesterov else ms
        u = (1 - beta) * lam * x + beta * mb if c.nesterov else mb
        x -= kappa * u / S
        a += step_a
        gain = max(gain, abs(x))
        if gain > 1e12:
            break
    return gain


def critical_bulk(config, growth: float = 1.0) -> float:
    """The smallest lambda whose linearized bulk grows by more than ``growth``, by bisection in
    log lambda on [1e-6, 1e6]. It needs the set {gain > growth} to be an interval reaching
    1e6; for growth = 1 and the lab's momenta (beta 0 to 0.95, Nesterov or not) the gain on a
    400-point log grid was exactly 1 below the crossing and above 1 beyond it."""
    lo, hi = 1e-6, 1e6
    if linear_gain(config, hi) <= growth:
        return math.inf
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if linear_gain(config, mid) <= growth else (lo, mid)
    return hi


# ---- symbolic results ------------------------------------------------------------------------

_gc, _gamma, _a0, _eta, _ks, _p = sp.symbols("g_c gamma a_0 eta k_s p_k", positive=True)
_m, _n = sp.symbols("m n", positive=True, integer=True)

_NS_NOISE_FREE = (
    Assumption(MUON, "the optimizer is Muon", lambda c: c.optimizer == MUON),
    Assumption("newton_schulz", "orthogonalizer = newton_schulz",
               lambda c: c.orthogonalizer == "newton_schulz"),
    Assumption("constant_bulk", "constant bulk spectrum", lambda c: c.bulk == "constant"),
    Assumption("rank_one", "one escape mode, quartic = 0",
               lambda c: c.escape_rank == 1 and c.quartic == 0),
    Assumption("escape_start", "init_escape a0 > 0", lambda c: c.init_escape > 0),
    Assumption("small_noise", "noise none or tiny (the linearization is noise-free)",
               lambda c: c.noise == "none" or (c.sigma or 0) <= 1e-3 * c.gamma * c.init_escape),
)


def _threshold_params(c):
    if c.init_escape <= 0 or c.orthogonalizer != "newton_schulz":
        raise ValueError("needs newton_schulz and a0 > 0")
    ks = muon_scale((c.m, c.n), c.scaling)
    p = ns_slope(c.ns_steps)
    lam_c = critical_bulk(c)
    return {"g_c": lam_c * c.learning_rate * ks * p / (c.gamma * c.init_escape),
            "gamma": c.gamma, "a_0": c.init_escape, "eta": c.learning_rate, "k_s": ks,
            "p_k": p}


NS_BULK_THRESHOLD = Result(
    name="ns_bulk_excitation_threshold",
    title="Newton-Schulz Muon: bulk curvature above which NS excites the bulk",
    quantity="bulk_curvature",
    kind="estimate",
    optimizer=MUON,
    lhs=sp.Symbol("lambda_c", positive=True),
    expr=_gc * _gamma * _a0 / (_eta * _ks * _p),
    assumptions=_NS_NOISE_FREE,
    params=_threshold_params,
    page="ns_excitation",
    d_dependence="none in the threshold (a per-direction linear instability); k_s only",
    summary="p_k = a^k = p'(0)^k; g_c = 2 without momentum, else from the linearized recursion "
    "with the momentum started at zero (= 2: the first step decides)",
)


def _saturation_params(c):
    if c.orthogonalizer != "newton_schulz":
        raise ValueError("newton_schulz only")
    return {"eta": c.learning_rate, "k_s": muon_scale((c.m, c.n), c.scaling), "m": c.m,
            "n": c.n}


NS_BULK_SATURATION = Result(
    name="ns_bulk_saturation",
    title="Newton-Schulz Muon: Frobenius amplitude of a saturated, self-excited bulk",
    quantity="bulk_amplitude",
    kind="estimate",
    optimizer=MUON,
    lhs=r"\max_t \|X_t\|_F",
    expr=_eta * _ks * sp.sqrt(sp.Min(_m, _n) - 1),
    assumptions=_NS_NOISE_FREE + (
        Assumption("excited", "bulk_scale above ns_bulk_excitation_threshold",
                   lambda c: c.bulk_scale > critical_bulk(c)),
    ),
    params=_saturation_params,
    page="ns_excitation",
    d_dependence="sqrt(min(m, n)): every bulk direction takes a step of about eta k_s",
    summary="measured 0.73 to 0.89 of this from 16^2 to 128^2, engine and replays "
    "(NS outputs below 1)",
)
