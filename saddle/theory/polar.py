r"""Polar alignment: how much of the polar factor of a noisy signal points along the signal.

Rank one. Let M = s u v^T + N with unit u, v, s > 0 and ||N||_2 <= nu < s/2, and
rho = nu / (s - nu). Then

    <polar(M), u v^T>  >=  1 - 2 rho^2.

Proof sketch (docs/theory/polar_alignment.md): Wedin's sin-theta theorem bounds the angles
between u, v and the top singular pair (x_1, y_1) of M by sin theta <= nu/(sigma_1(M)) <= rho.
x_1^T M y_1 = sigma_1 >= s - nu forces s (u.x_1)(v.y_1) >= s - 2 nu > 0, so the top pair
contributes + cos theta_u cos theta_v. The other pairs contribute at least
-sin theta_u sin theta_v (Cauchy-Schwarz). The sum is >= cos(theta_u + theta_v) >= 1 - 2 rho^2.

For Newton-Schulz output X phi(S/||M||_F) Y^T instead of X Y^T the same argument gives

    <NS(M), u v^T>  >=  ell (1 - rho^2) - h rho^2,

with ell the lower end of the NS output range for inputs in [(s - nu)/||M||_F, 1] and h the
largest NS output on [0, 1].

Rank r. With M = U S V^T + N (S = diag(s_1..s_r), s_min = min s_i) and
rho = nu/(s_min - nu), the part of polar(M) outside the top-r singular subspaces contributes
at least -r rho^2 (Cauchy-Schwarz on the Frobenius norms of sin Theta). The part inside has
trace tr(U^T X_r Y_r^T V), which the subspace angles alone do not pin down (it also depends on
how the two r-frames rotate against each other). The lab states the rank-r bound
<polar(M), U V^T> >= r (1 - 2 rho^2) as a *checked conjecture*: tests/test_theory.py searches
random and adversarial (rotation-inducing) perturbations for violations. It is flagged as
``proved=False`` in the result's ``extra``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..optimizers import MuonSpec
from ._core import Assumption, Result
from .alignment import alignment_lower, ns_alignment_lower, polar_np, rho_of
from .muon import certify

MUON = MuonSpec.name

__all__ = [
    "rho_of",
    "alignment_lower",
    "ns_alignment_lower",
    "POLAR_ALIGNMENT",
    "POLAR_ALIGNMENT_RANK_R",
    "polar_np",
]

s, nu, r_ = sp.symbols("s nu r", positive=True)
rho = sp.Symbol("rho", nonnegative=True)


def _certified_params(config):
    cert = certify(config) if config.orthogonalizer == "polar" else None
    if cert is None or not np.isfinite(cert.rho_bar):
        raise ValueError("no certified gap")
    # the bound depends on s and nu only through rho: normalize s = 1
    return {"s": 1.0, "nu": cert.rho_bar / (1 + cert.rho_bar)}


def _has_cert(c) -> bool:
    return c.orthogonalizer == "polar" and certify(c) is not None


def _is_muon(c) -> bool:
    return c.optimizer == MUON


POLAR_ALIGNMENT = Result(
    name="polar_alignment",
    title="Polar alignment under a spectral gap (Wedin + Cauchy-Schwarz)",
    quantity="alignment",
    kind="lower",
    optimizer=MUON,
    lhs=r"\langle \operatorname{polar}(M), u v^\top \rangle",
    expr=1 - 2 * rho**2,
    definitions=((rho, nu / (s - nu)),),
    assumptions=(
        Assumption(MUON, "the optimizer is Muon (the bound is about its update)", _is_muon),
        Assumption(
            "certified_gap",
            "the config's exact-polar Muon run has a certified gap (see muon_total_escape); "
            "the value is 1 - 2 rho_bar^2 at its worst ballistic-phase rho",
            lambda c: _has_cert(c),
        ),
        Assumption(
            "gap",
            "M = s u v^T + N with ||N||_2 <= nu and rho = nu/(s - nu) < 1 "
            "(positive progress needs rho < 1/sqrt 2)",
            lambda st: st["nu"] < st["s"] / 2,
            on="state",
        ),
    ),
    params=_certified_params,
    page="polar_alignment",
    d_dependence="only through nu = ||N||_2 (isotropic noise: ~ sigma (sqrt m + sqrt n))",
    summary="value for a config: 1 - 2 rho_bar^2 with the worst certified rho of the "
    "ballistic phase (see muon_total_escape)",
    extra={"proved": True},
)

POLAR_ALIGNMENT_RANK_R = Result(
    name="polar_alignment_rank_r",
    title="Rank-r polar alignment (checked conjecture)",
    quantity="alignment",
    kind="lower",
    optimizer=MUON,
    lhs=r"\langle \operatorname{polar}(M), U V^\top \rangle",
    expr=r_ * (1 - 2 * rho**2),
    definitions=((rho, nu / (sp.Symbol("s_min", positive=True) - nu)),),
    assumptions=(
        Assumption(MUON, "the optimizer is Muon", _is_muon),
        Assumption(
            "gap",
            "M = U diag(s_i) V^T + N, ||N||_2 <= nu, rho = nu/(s_min - nu) < 1",
            lambda st: st["nu"] < st["s_min"] / 2,
            on="state",
        ),
    ),
    params=lambda c: (_ for _ in ()).throw(ValueError("state-level result")),
    page="polar_alignment",
    d_dependence="only through nu",
    summary="outside-subspace part proved (>= -r rho^2); inside part checked numerically",
    extra={"proved": False},
)
