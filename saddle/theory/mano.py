r"""Mano v1 from the saddle W* = 0: the Frobenius norm grows on a fixed clock.

Mano v1 (``saddle/optimizers/_mano.py``) updates W slice by slice (columns on even steps,
rows on odd ones, n_0 = m, n_1 = n):

    W <- (1 - eta lambda) W - 0.2 eta sqrt(n_k) vhat,

where each slice vhat_j of vhat has norm at most 1 (exactly 1 unless the tangent slice is
below the floor eps) and is orthogonal to the slice W_j of W: v1 normalizes W_j before the
projection, so <W_j, vhat_j> = 0 whenever ||W_j|| >= eps or W_j = 0. Hence, per slice,

    ||W_j'||^2 = (1 - eta lambda)^2 ||W_j||^2 + 0.04 eta^2 n_k ||vhat_j||^2,

(the cross term vanishes, whatever the gradient, the momentum, the noise or the landscape)
and summed over the D / n_k slices of the step's axis, with N_t = ||W_t||_F^2 and
u = 1 - (1 - eta lambda)^2 = eta lambda (2 - eta lambda),

    N_{t+1} <= (1 - u) N_t + delta,   delta = 0.04 eta^2 D,

with equality when no tangent slice is below the floor. The momentum, Nesterov and the
gradient only turn W; they cannot make it longer.

**The clock.** Started at the saddle (W_0 = W* + a_0 E, so N_0 = a_0^2), induction gives
N_t <= N_inf + (1 - u)^t (a_0^2 - N_inf) with N_inf = delta / u (N_t <= a_0^2 + delta t
when lambda = 0). When W* = 0 the escape coordinates A_t (the projections of W_t - W* on the
orthonormal escape directions E_1, ..., E_r) satisfy ||A_t|| <= ||W_t - W*||_F = sqrt(N_t),
so the projection criterion ||A_t|| >= R needs N_t >= R^2, that is

    tau >= ceil(Lq(k, u)),   k = (R^2 - a_0^2) / (delta - u a_0^2),
    Lq(k, u) = ln(1 - u k) / ln(1 - u),   Lq(k, 0) = k,

which without weight decay reads tau >= (R^2 - a_0^2) / (0.04 eta^2 D). With weight decay the
norm saturates at sqrt(N_inf) = sqrt(0.04 eta D / (lambda (2 - eta lambda))): if that is
below R (u k >= 1) the bound is infinite, no run ever escapes. This is a theorem (kind
``lower``): nothing is approximated; the one case outside it is a slice of W_t with norm
strictly between 0 and eps (then v1's normalization leaves a cross term of at most
0.4 eps eta sqrt(n_k) per slice), a trajectory condition listed as such.

**Where it is tight, and where not.** The bound counts only how far W has travelled; the
escape also needs W to point along E. On a dense basis (partial, structured) the projected
momentum turns W onto E while it grows, and in the regime map (base regime, 4 draws per D)
the measured median escape is 1.02 x the bound at 32^2 under matched_spectral (321 against
313), 1.09-1.17 x at 64^2 and 1.6-2.0 x at 128^2, where the bound (79 steps) is short
compared with the turning time; under matched_rms (eta = 1e-3) the bound is 24,414, 6,104
and 1,526 steps at 32^2, 64^2 and 128^2: the first two prove the censoring at 3,000 steps,
the third is met at 1.08 x (1,653-1,660). On the coherent basis the escape coordinate is one
entry of W, capped by the norms of its row and column, which the bound ignores: there it is
valid but loose (every coherent base-regime run is censored at 3,000 steps, 10-40 x the
bound). The entry's own clock (its column's squared norm gains 0.04 eta^2 m on column steps)
is not a bound: on row steps the momentum's persistence makes the column's cross term
positive, and in the gamma = 0 and lambda = 0.01 coherent cells the runs escape before it.

**The estimate on a dense basis.** Where E is spread over W (any basis but the coherent one)
and gamma > 0 (then E is the minimizer of f on every sphere ||W - W*||_F = rho: the quadratic
part is smallest along the most negative eigenvalue, the quartic term is constant there), the
normalized tangent steps turn W onto E while the clock runs, so tau ~ the clock itself:
``mano_clock_estimate`` is the same formula as an estimate, with the measured accuracy above
(1.02-1.17 x while the clock is >= 150 steps, up to 2 x when it is 79: the momentum's
memory of about 1/(1 - mu) = 20 steps delays the turn).

Under matched_spectral eta ~ 1 / (sqrt m + sqrt n), so eta^2 D ~ sqrt(D) for square shapes:
the bound falls like D^{-1/2}. Under matched_rms eta is fixed and it falls like 1/D.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..optimizers import ManoSpec
from ._core import FUNCTIONS, Assumption, Result

MANO = ManoSpec.name
__all__ = ["lq", "norm_clock_steps", "MANO_NORM_CLOCK", "MANO_CLOCK_ESTIMATE"]


def lq(k, u) -> float:
    """ln(1 - u k) / ln(1 - u) (its limit k at u = 0); inf when u k >= 1 (the norm
    saturates below the radius)."""
    k, u = float(k), float(u)
    if k <= 0:
        return 0.0
    if u == 0:
        return k
    if u * k >= 1:
        return math.inf
    return math.log1p(-u * k) / math.log1p(-u)


FUNCTIONS["Lq"] = np.vectorize(lq, otypes=[float])
Lq = sp.Function("Lq")

_eta, _lam, _D, _R, _a0 = sp.symbols("eta lambda D R a_0", nonnegative=True)
_delta, _u, _k = sp.symbols("delta u k", nonnegative=True)

CLOCK_DEFS = (
    (_delta, _eta**2 * _D / 25),
    (_u, _eta * _lam * (2 - _eta * _lam)),
    (_k, (_R**2 - _a0**2) / (_delta - _u * _a0**2)),
)


def _params(c) -> dict[str, float]:
    if c.optimizer != MANO:
        raise ValueError("the clock is Mano's")
    return {"eta": c.learning_rate, "lambda": c.weight_decay or 0.0, "D": c.m * c.n,
            "R": c.radius, "a_0": abs(c.init_escape or 0.0)}


def norm_clock_steps(config) -> float:
    """The unrounded clock Lq(k, u): steps until ||W||_F can first reach the radius (inf when
    weight decay caps the norm below it)."""
    p = _params(config)
    delta = 0.04 * p["eta"] ** 2 * p["D"]
    u = p["eta"] * p["lambda"] * (2 - p["eta"] * p["lambda"])
    return lq((p["R"] ** 2 - p["a_0"] ** 2) / (delta - u * p["a_0"] ** 2), u)


_CLOCK_ASSUME = (
    Assumption(MANO, "the optimizer is Mano", lambda c: c.optimizer == MANO),
    Assumption("v1", "variant v1 (slices of W normalized before the tangent projection)",
               lambda c: c.variant == "v1"),
    Assumption("zero_saddle", "saddle_point = zero (W* = 0, so ||A|| <= ||W||_F)",
               lambda c: c.saddle_point == "zero"),
    Assumption("saddle_init", "init = saddle (W_0 = W* + a_0 E, ||W_0||_F = |a_0|)",
               lambda c: c.init == "saddle"),
    Assumption("projection", "escape criterion projection (||A|| >= R)",
               lambda c: c.escape == "projection"),
)

MANO_NORM_CLOCK = Result(
    name="mano_norm_clock",
    title="Mano v1 from W* = 0: the escape waits for the Frobenius norm's clock",
    quantity="escape_time",
    kind="lower",
    optimizer=MANO,
    lhs=sp.Symbol("tau", positive=True),
    expr=sp.ceiling(Lq(_k, _u)),
    definitions=CLOCK_DEFS,
    assumptions=_CLOCK_ASSUME + (
        Assumption("slice_floor", "no slice of W_t has a norm strictly between 0 and eps "
                   "(v1's projection is then exactly tangent)",
                   lambda st: not 0 < st["min_slice_norm"] < st["eps"], on="state"),
    ),
    params=_params,
    page="mano",
    d_dependence="delta = 0.04 eta^2 D: D^{-1} at fixed eta (matched_rms), D^{-1/2} under "
    "matched_spectral (eta ~ 1/(sqrt m + sqrt n))",
    summary="proved for any gradient, noise, momentum and landscape with W* = 0; on dense "
    "bases the measured median is 1.02-1.17 x the bound while the clock is >= 150 steps, "
    "1.6-2 x when it is 79; valid but loose (> 10 x) on the coherent basis",
)

MANO_CLOCK_ESTIMATE = Result(
    name="mano_clock_estimate",
    title="Mano v1 from W* = 0 on a dense basis: the escape comes with the norm's clock",
    quantity="escape_time",
    kind="estimate",
    optimizer=MANO,
    lhs=sp.Symbol("tau", positive=True),
    expr=sp.ceiling(Lq(_k, _u)),
    definitions=CLOCK_DEFS,
    assumptions=_CLOCK_ASSUME + (
        Assumption("dense_basis", "basis not coherent (E spread over W; on the coherent basis "
                   "the entry is capped by its row and column and the clock is loose)",
                   lambda c: c.basis != "coherent"),
        Assumption("unstable", "gamma > 0 (E minimizes f on every sphere around W*, so the "
                   "tangent steps turn W onto E)", lambda c: c.gamma > 0),
    ),
    params=_params,
    page="mano",
    d_dependence="as mano_norm_clock: D^{-1} (matched_rms), D^{-1/2} (matched_spectral)",
    summary="the lower bound read as an estimate: 1.02-1.17 x short while the clock is >= "
    "150 steps, up to 2 x when it is 79 (the momentum's turning lag)",
)
