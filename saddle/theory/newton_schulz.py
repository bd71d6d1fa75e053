r"""The Newton-Schulz output range, computed symbolically from the polynomial.

One quintic step maps each normalized singular value x of the Newton-Schulz input to
phi(x) = a x + b x^3 + c x^5. After k steps the output is the composition phi^{(k)}(x).

The image of an interval under a continuous map is an interval, so
phi^{(k)}([x_lo, x_hi]) is computed one step at a time. Each step needs the endpoints and
the real critical points of phi inside the current interval. Those are the roots of
phi'(x) = a + 3 b x^2 + 5 c x^4, a quadratic in x^2, solved exactly by sympy. Values are
evaluated at :data:`PRECISION` significant digits, so the interval is exact up to that
precision (no grid, no float64 root finder).

The inverse question, the smallest input that reaches a target output, follows the
increasing branch of phi on [0, x_c]: with x_c the first positive critical point,
phi^{(k)}(x) >= y on a neighbourhood [x*, ...] of x* = psi^{(k)}(y), psi being the inverse of
phi on that branch.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..optimizers import MuonSpec
from ._core import Assumption, Result

MUON = MuonSpec.name

__all__ = [
    "PRECISION",
    "phi_expr",
    "critical_points",
    "ns_range",
    "ns_min_input",
    "composed_polynomial",
    "NS_RANGE",
    "NS_MIN_INPUT",
    "X_LO_DEFAULT",
    "NS_TARGET_DEFAULT",
]

PRECISION = 40
X_LO_DEFAULT = 1e-2  # the reference input floor of the design (a signal at 1 % of ||U||_F)
NS_TARGET_DEFAULT = 0.5  # "half a polar step"

x = sp.Symbol("x", positive=True)
a_, b_, c_ = sp.symbols("a b c", real=True)


def _rational(v) -> sp.Rational:
    return sp.nsimplify(str(float(v)), rational=True) if not isinstance(v, sp.Basic) else v


def phi_expr(coeffs) -> sp.Expr:
    """phi(x) = a x + b x^3 + c x^5 with the coefficients as exact rationals."""
    a, b, c = (_rational(v) for v in coeffs)
    return a * x + b * x**3 + c * x**5


PHI_SYMBOLIC = a_ * x + b_ * x**3 + c_ * x**5


@lru_cache(maxsize=32)
def critical_points(coeffs: tuple) -> tuple[sp.Expr, ...]:
    """The real positive roots of phi'(x) = a + 3 b x^2 + 5 c x^4, exact, ascending."""
    a, b, c = (_rational(v) for v in coeffs)
    y = sp.Symbol("y")
    out = []
    for root in sp.solve(sp.Eq(a + 3 * b * y + 5 * c * y**2, 0), y):
        if root.is_real and root > 0:
            out.append(sp.sqrt(root))
    return tuple(sorted(out, key=lambda r: float(r)))


def _image(coeffs, lo: sp.Float, hi: sp.Float) -> tuple[sp.Float, sp.Float]:
    phi = phi_expr(coeffs)
    pts = [lo, hi] + [r.evalf(PRECISION) for r in critical_points(coeffs)]
    vals = [phi.evalf(PRECISION, subs={x: p}) for p in pts if lo <= p <= hi]
    return min(vals), max(vals)


def ns_range(x_lo: float, steps: int = 5, coeffs=(3.4445, -4.7750, 2.0315), x_hi: float = 1.0):
    """phi^{(steps)}([x_lo, x_hi]) as a (low, high) pair of floats (exact to PRECISION digits)."""
    if not 0 <= x_lo <= x_hi:
        raise ValueError(f"ns_range: need 0 <= x_lo <= x_hi, got {x_lo}, {x_hi}")
    if steps < 0:
        raise ValueError(f"ns_range: steps must be >= 0, got {steps}")
    coeffs = tuple(float(v) for v in coeffs)
    lo, hi = sp.Float(str(x_lo), PRECISION), sp.Float(str(x_hi), PRECISION)
    for _ in range(steps):
        lo, hi = _image(coeffs, lo, hi)
    return float(lo), float(hi)


def ns_max_output(steps: int = 5, coeffs=(3.4445, -4.7750, 2.0315)) -> float:
    """max |phi^{(steps)}| over [0, 1]: the largest singular value NS can output."""
    return _ns_max_output(int(steps), tuple(float(v) for v in coeffs))


@lru_cache(maxsize=32)
def _ns_max_output(steps: int, coeffs: tuple) -> float:
    # cached: the exact interval iteration costs about a second of sympy per call
    lo, hi = ns_range(0.0, steps, coeffs, 1.0)
    return max(abs(lo), abs(hi))


def ns_min_input(target: float, steps: int = 5, coeffs=(3.4445, -4.7750, 2.0315)) -> float:
    """The smallest x in (0, 1] with phi^{(steps)}(x) = target (first crossing), or inf.

    phi is increasing on [0, x_c] (x_c its first positive critical point, phi(0) = 0); the
    first crossing of level y is the inverse image on that branch, applied ``steps`` times.
    Returns inf when some intermediate level exceeds phi(x_c) (the target is unreachable
    from below on the increasing branch).
    """
    coeffs = tuple(float(v) for v in coeffs)
    crit = critical_points(coeffs)
    phi = phi_expr(coeffs)
    if coeffs[0] <= 0:
        raise ValueError("ns_min_input: need a > 0 (phi increasing at 0)")
    xc = crit[0].evalf(PRECISION) if crit else sp.Float(1, PRECISION)
    top = phi.evalf(PRECISION, subs={x: xc})
    y = sp.Float(str(target), PRECISION)
    if y <= 0:
        return 0.0
    for _ in range(steps):
        if y > top:
            return float("inf")
        y = sp.nsolve(phi - y, x, (sp.Float(0, PRECISION), xc), solver="bisect",
                      prec=PRECISION)
    return float(y)


def composed_polynomial(steps: int, coeffs=(3.4445, -4.7750, 2.0315)) -> sp.Poly:
    """phi^{(steps)} as an exact sympy polynomial (degree 5^steps; use small steps only)."""
    if steps > 4:
        raise ValueError("composed_polynomial: steps > 4 gives degree > 625; use ns_range")
    p = x
    phi = phi_expr(coeffs)
    for _ in range(steps):
        p = sp.expand(phi.subs(x, p))
    return sp.Poly(p, x)


# ---- results -------------------------------------------------------------------------------

ell, h_, xlo, k_ = sp.symbols("ell_k h_k x_lo k", positive=True)


def _ns_config(config) -> tuple[int, tuple]:
    if config.optimizer != MUON or config.orthogonalizer != "newton_schulz":
        raise ValueError("not a Newton-Schulz Muon config")
    from ..optimizers import NS_COEFFS

    return int(config.ns_steps), tuple(NS_COEFFS)


def _range_params(config):
    steps, coeffs = _ns_config(config)
    lo, _ = ns_range(X_LO_DEFAULT, steps, coeffs)
    return {"ell_k": lo}


def _input_params(config):
    steps, coeffs = _ns_config(config)
    return {"x_lo": ns_min_input(NS_TARGET_DEFAULT, steps, coeffs)}


_NS_ASSUME = (
    Assumption(
        "newton_schulz",
        "Muon orthogonalizes with the quintic Newton-Schulz iteration",
        lambda c: c.optimizer == MUON and c.orthogonalizer == "newton_schulz",
    ),
)

NS_RANGE = Result(
    name="ns_output_range",
    title="Newton-Schulz output range for inputs in [x_lo, 1]",
    quantity="ns_output",
    kind="lower",
    optimizer=MUON,
    lhs=r"\phi^{\circ k}(x)",
    expr=ell,
    assumptions=_NS_ASSUME,
    params=_range_params,
    page="newton_schulz",
    d_dependence="none in phi; D enters through x = s/||U||_F (the Frobenius norm of the noise)",
    summary=f"lower end of phi^(k)([{X_LO_DEFAULT}, 1]), with phi(x) = a x + b x^3 + c x^5",
    extra={"phi": PHI_SYMBOLIC, "x_lo": X_LO_DEFAULT},
)

NS_MIN_INPUT = Result(
    name="ns_min_input",
    title=f"Smallest normalized singular value that Newton-Schulz maps to {NS_TARGET_DEFAULT}",
    quantity="ns_input",
    kind="estimate",
    optimizer=MUON,
    lhs="x^*",
    expr=xlo,
    assumptions=_NS_ASSUME,
    params=_input_params,
    page="newton_schulz",
    d_dependence="none; compare with s/||U||_F, which shrinks like D^{-1/2} under isotropic noise",
    summary="first crossing of phi^(k)(x) = target on the increasing branch",
    extra={"target": NS_TARGET_DEFAULT},
)
