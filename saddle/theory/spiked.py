r"""The spiked-matrix (BBP) threshold and the asymptotic singular-vector overlaps.

M = theta u v^T + X with unit u (m), v (n) and X having iid N(0, tau^2) entries, m, n -> inf
with c = m/n fixed. Rescale by tau sqrt(n): X/(tau sqrt n) has entries of variance 1/n and
theta' = theta/(tau sqrt n). Benaych-Georges & Nadakuditi (2012) give, for theta' > c^{1/4},

    sigma_1(M)/(tau sqrt n)  ->  sqrt((1 + theta'^2)(c + theta'^2))/theta',
    <u, u_1>^2  ->  1 - c (1 + theta'^2)/(theta'^2 (theta'^2 + c)),
    <v, v_1>^2  ->  1 - (c + theta'^2)/(theta'^2 (theta'^2 + 1)),

and overlaps -> 0 (sigma_1 sticks to the bulk edge 1 + sqrt c) below. In the original scale the
threshold theta' > c^{1/4} reads theta > tau (m n)^{1/4}.

Per noise model (tau = per-entry std of the momentum noise):

- isotropic (tau = sigma): threshold sigma (mn)^{1/4} = sigma D^{1/4}, growing with D;
- opnorm (tau = sigma/(sqrt m + sqrt n)): threshold sigma (mn)^{1/4}/(sqrt m + sqrt n) <= sigma/2,
  bounded in D;
- lowrank and kronecker are not iid: lowrank noise has no bulk (the separation needed is
  theta > ||Xi||_2 ~ sigma), kronecker's threshold is not in closed form here.
"""

from __future__ import annotations

import math

import sympy as sp

from ._core import Assumption, Result
from .noise_facts import noise_facts

__all__ = ["bbp_threshold", "overlaps", "outlier", "BBP_THRESHOLD", "OVERLAP_LEFT",
           "OVERLAP_RIGHT", "D_EXPONENT"]

theta, tau, m, n = sp.symbols("theta tau m n", positive=True)
tp = sp.Symbol("vartheta", positive=True)
c_ = sp.Symbol("c", positive=True)

THRESHOLD_EXPR = tau * (m * n) ** sp.Rational(1, 4)
LEFT_EXPR = 1 - c_ * (1 + tp**2) / (tp**2 * (tp**2 + c_))
RIGHT_EXPR = 1 - (c_ + tp**2) / (tp**2 * (tp**2 + 1))
OUTLIER_EXPR = tau * sp.sqrt(n) * sp.sqrt((1 + tp**2) * (c_ + tp**2)) / tp
DEFS = ((c_, m / n), (tp, theta / (tau * sp.sqrt(n))))
# substituted last first: theta' then c


def bbp_threshold(tau_v: float, m_v: int, n_v: int) -> float:
    return float(tau_v * (m_v * n_v) ** 0.25)


def overlaps(theta_v: float, tau_v: float, m_v: int, n_v: int) -> tuple[float, float]:
    """Asymptotic squared overlaps (<u, u_1>^2, <v, v_1>^2); (0, 0) below the threshold."""
    c = m_v / n_v
    t = theta_v / (tau_v * math.sqrt(n_v))
    if t <= c**0.25:
        return 0.0, 0.0
    left = 1 - c * (1 + t * t) / (t * t * (t * t + c))
    right = 1 - (c + t * t) / (t * t * (t * t + 1))
    return left, right


def outlier(theta_v: float, tau_v: float, m_v: int, n_v: int) -> float:
    """Asymptotic top singular value (the bulk edge tau (sqrt m + sqrt n) below threshold)."""
    c = m_v / n_v
    t = theta_v / (tau_v * math.sqrt(n_v))
    if t <= c**0.25:
        return tau_v * (math.sqrt(m_v) + math.sqrt(n_v))
    return tau_v * math.sqrt(n_v) * math.sqrt((1 + t * t) * (c + t * t)) / t


_IID = ("isotropic", "opnorm")


def _tau(c) -> float:
    facts = noise_facts(c)
    if facts.kind not in _IID:
        raise ValueError("noise entries not iid Gaussian")
    return facts.entry_std


def _threshold_params(c):
    return {"tau": _tau(c), "m": c.m, "n": c.n}


def _signal(c) -> float:
    """The escape-direction gradient signal at the start, gamma |a_0| (0 at the saddle)."""
    return c.gamma * abs(c.init_escape)


def _overlap_params(c):
    th = _signal(c)
    if th <= 0:
        raise ValueError("no signal")
    return {"tau": _tau(c), "m": c.m, "n": c.n, "theta": th}


def _d_exponent(noise: str) -> float:
    """d ln theta_c / d ln D for m = n = sqrt(D), derived from THRESHOLD_EXPR by sympy."""
    D, sg = sp.symbols("D sigma", positive=True)
    taus = {"isotropic": sg, "opnorm": sg / (2 * D ** sp.Rational(1, 4))}
    if noise not in taus:
        raise ValueError("noise entries not iid Gaussian")
    th = THRESHOLD_EXPR.subs({tau: taus[noise], m: sp.sqrt(D), n: sp.sqrt(D)})
    return float(sp.simplify(D * sp.diff(sp.log(th), D)))


_ASSUME = (
    Assumption("iid_noise", "iid Gaussian noise entries (isotropic or opnorm)",
               lambda c: c.noise in _IID),
)

BBP_THRESHOLD = Result(
    name="bbp_threshold",
    title="Spiked-matrix (BBP) detection threshold of one gradient",
    quantity="signal_threshold",
    kind="estimate",
    optimizer=None,
    lhs=r"\theta_c",
    expr=THRESHOLD_EXPR,
    assumptions=_ASSUME,
    params=_threshold_params,
    page="spiked",
    d_dependence="isotropic: tau = sigma, threshold ~ D^{1/4}; opnorm: tau = "
    "sigma/(sqrt m + sqrt n), threshold <= sigma/2 (D-free)",
    summary="the top singular vector of theta u v^T + X carries the signal iff theta > this",
)


def _overlap_result(name, title, expr, side):
    return Result(
        name=name,
        title=title,
        quantity="overlap",
        kind="estimate",
        optimizer=None,
        lhs=rf"\langle {side}, \hat {side}_1 \rangle^2",
        expr=expr,
        definitions=DEFS,
        assumptions=_ASSUME + (
            Assumption("above_threshold", "theta = gamma |a_0| above the BBP threshold",
                       lambda c: _signal(c) > bbp_threshold(_tau(c), c.m, c.n)),
        ),
        params=_overlap_params,
        page="spiked",
        d_dependence="through theta' = theta/(tau sqrt n)",
        summary="asymptotic squared overlap of one gradient's top singular vector with the "
        "escape direction (theta = gamma |a_0|)",
    )


OVERLAP_LEFT = _overlap_result("bbp_overlap_left", "Left singular-vector overlap above BBP",
                               LEFT_EXPR, "u")
OVERLAP_RIGHT = _overlap_result("bbp_overlap_right", "Right singular-vector overlap above BBP",
                                RIGHT_EXPR, "v")

D_EXPONENT = Result(
    name="bbp_dimension_exponent",
    title="Exponent b of the BBP threshold's growth D^b (square matrices)",
    quantity="dimension_exponent",
    kind="estimate",
    optimizer=None,
    lhs=r"\frac{d \ln \theta_c}{d \ln D}",
    expr=sp.Symbol("b"),
    assumptions=_ASSUME,
    params=lambda c: {"b": _d_exponent(c.noise)},
    page="spiked",
    d_dependence="isotropic 1/4; opnorm 0",
    summary="d ln theta_c / d ln D for m = n",
)
