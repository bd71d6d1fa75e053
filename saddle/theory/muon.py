r"""Muon escape-time bounds: a gap-building phase followed by a ballistic phase.

The lab's Muon step (saddle/optimizers/_muon.py) is, with k_s the scaling factor
(Keller: sqrt(max(1, m/n))),

    M_{t+1} = beta M_t + (1 - beta) G_t,
    U = (1 - beta) G_t + beta M_{t+1}  (Nesterov; else U = M_{t+1}),
    W_{t+1} = W_t - eta k_s orth(U),

and the escape coordinate is a_t = <W_t - W*, E> with E = p q^T, where the gradient along E
is -gamma a_t (spectral saddle, quartic = 0). So

    a_{t+1} - a_t = eta k_s <orth(-U), E>.

Write -U = s E + N. If ||N||_2 <= nu and rho = nu/(s - nu) < 1, polar alignment gives
<polar(-U), E> >= 1 - 2 rho^2 (and <NS(-U), E> >= ell (1 - rho^2) - h rho^2); without a gap
the step still satisfies <orth(-U), E> >= -h (h = 1 for exact polar).

**Ballistic bound.** If rho_t <= rho_bar for all t >= t_0 then

    tau <= t_0 + ceil((R - a_{t_0}) / (eta k_s (1 - 2 rho_bar^2))).

**Certification from the config (gap-building phase).** Everything in -U is a fixed positive
combination sum_k w_k G_k of past gradients (w from beta and Nesterov). Split each gradient:
the escape part gamma a_k E, the bulk part P(Lambda o C_k)Q^T (constant bulk: spectral norm
lambda ||C_bulk,k||_2 <= lambda * 2 eta k_s h k from a start at the saddle), and the noise
Xi_k. The noise sum sum_k w_k Xi_k is Gaussian whatever the trajectory, so
``theory.noise_facts`` bounds its spectral norm (and its component along E) with probability
1 - delta over the whole budget (union over max_steps steps). Then, by induction, a_t >= a_lo(t)
where

    s_t  >= sum_k w_k gamma a_lo(k) - |<Xi_w, E>|,
    nu_t <= ||Xi_w||_2 + |<Xi_w, E>| + lambda sum_k w_k 2 eta k_s h k,
    a_lo(t+1) = a_lo(t) + eta k_s L(rho_t),   L = alignment lower bound (or -h without a gap).

The gap-building phase ends at t_gap, the last time rho_t exceeds 1/2 (plus one); the
ballistic phase then runs at the worst rho_bar of the remaining certified steps. The result
is the closed form above with t_0 = t_gap, a_{t_0} = a_lo(t_gap).

No dimension is hidden: m and n enter only through nu (the noise model's spectral norm, and
for Newton-Schulz the Frobenius norm through x = s / ||U||_F) and through k_s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp

from ..optimizers import MuonSpec
from ..registry import NOISES
from ._core import Assumption, Result
from .alignment import ns_alignment_lower
from .noise_facts import noise_facts

MUON = MuonSpec.name

__all__ = [
    "Certificate",
    "certify",
    "ballistic_bound",
    "MUON_BALLISTIC",
    "MUON_TOTAL",
    "MUON_NS_TOTAL",
    "DELTA",
    "RHO_SWITCH",
]

DELTA = 1e-3  # failure probability of the certificate over the whole step budget
RHO_SWITCH = 0.5  # the ballistic phase starts once rho stays <= this


def ballistic_bound(a0: float, radius: float, lr: float, scale: float, rho_bar: float,
                    t0: int = 0, progress: float | None = None) -> float:
    """t0 + ceil((R - a0) / (lr scale (1 - 2 rho_bar^2))); inf when no progress is certified.

    ``progress`` overrides 1 - 2 rho_bar^2 (e.g. the Newton-Schulz alignment bound).
    """
    p = (1 - 2 * rho_bar**2) if progress is None else progress
    if a0 >= radius:
        return float(t0)
    if p <= 0:
        return math.inf
    return t0 + math.ceil((radius - a0) / (lr * scale * p) - 1e-12)


@dataclass(frozen=True)
class Certificate:
    """The certified lower trajectory of a Muon escape (probability >= 1 - delta)."""

    tau: int  # first t with a_lo(t) >= R (the recursion's bound)
    t_gap: int
    a_gap: float
    rho_bar: float
    progress: float  # certified per-step alignment in the ballistic phase
    scale: float
    lr: float
    radius: float
    a_lo: np.ndarray = field(repr=False)
    rho: np.ndarray = field(repr=False)
    closed_form: float = math.inf  # t_gap + ceil((R - a_gap)/(lr scale progress))


def _check_config(c) -> str | None:
    """None when the certification applies to this config, else the reason."""
    if c.optimizer != MUON:
        return "optimizer is not muon"
    if c.escape_rank != 1:
        return "escape_rank must be 1"
    if c.quartic != 0:
        return "quartic must be 0"
    if c.bulk != "constant":
        return "bulk must be constant"
    if c.init != "saddle":
        return "init must be saddle"
    if c.init_escape <= 0:
        return "init_escape a0 must be > 0 (the noise-only start is not covered)"
    if c.weight_decay not in (0, 0.0, None):
        return "weight_decay must be 0"
    if c.escape != "projection":
        return "escape criterion must be projection"
    if not NOISES[c.noise].has_tail_bound:
        return "heavy-tailed noise has no sub-Gaussian norm bound"
    return None


def certify(config, delta: float = DELTA, bulk_amp: float = math.inf) -> Certificate | None:
    """The certified escape-time bound of a Muon config, or None when it does not apply.

    ``bulk_amp`` = B: a bound on the bulk displacement ||X_t||_2 at every step (X_t = W_t - W*
    - a_t E). The default (inf) assumes nothing: the bulk bound is the drift 2 eta k_s h t.
    A finite B makes the certificate conditional on that hypothesis (see theory.stiff_bulk).
    """
    if _check_config(config) is not None:
        return None
    # seeds do not change the certificate; drop them from the cache key
    return _certify(config.replace(seed=0, seeds=1), delta, float(bulk_amp))


@lru_cache(maxsize=256)
def _certify(c, delta, bulk_amp=math.inf) -> Certificate | None:
    from ..optimizers import NS_COEFFS, muon_scale
    from .newton_schulz import ns_max_output

    facts = noise_facts(c)
    m, n = c.m, c.n
    ks = muon_scale((m, n), c.scaling)
    eta, beta, gamma, lam = c.learning_rate, c.momentum, c.gamma, c.bulk_scale
    R, a0, T = c.radius, c.init_escape, c.max_steps
    polar = c.orthogonalizer == "polar"
    h = 1.0 if polar else ns_max_output(c.ns_steps, NS_COEFFS)
    sig_e = math.sqrt(facts.e_variance[0])
    u = math.sqrt(2 * math.log(facts.events_per_step * T / delta))

    a_lo = [a0]
    rhos = []
    Msig = 0.0  # EMA of gamma a_lo
    Mbulk = 0.0  # EMA of the bulk-gradient bound
    W2 = 0.0  # ||w_M||^2
    Wsum = 0.0  # sum w_M
    for t in range(T):
        bulk_t = lam * min(2 * eta * ks * h * t, bulk_amp)  # bound on ||bulk gradient_t||_2
        sig_t = gamma * a_lo[-1]
        # momentum after this gradient
        Msig = beta * Msig + (1 - beta) * sig_t
        Mbulk = beta * Mbulk + (1 - beta) * bulk_t
        W2 = beta**2 * W2 + (1 - beta) ** 2
        Wsum = beta * Wsum + (1 - beta)
        if c.nesterov:
            S = (1 - beta) * sig_t + beta * Msig
            B = (1 - beta) * bulk_t + beta * Mbulk
            wn = math.sqrt((1 - beta) ** 2 + beta**2 * W2 + 2 * (1 - beta) * beta * (1 - beta))
            ws = (1 - beta) + beta * Wsum
            wmax = (1 - beta) * (1 + beta)
        else:
            S, B, wn, ws, wmax = Msig, Mbulk, math.sqrt(W2), Wsum, 1 - beta
        spec = facts.spectral_bound(wn, ws, wmax, u)
        along = min(sig_e * wn * u, spec) if facts.gaussian_along_e else spec
        s_t = S - along
        nu_t = spec + along + B
        rho_t = nu_t / (s_t - nu_t) if s_t > nu_t else math.inf
        if polar:
            L = (1 - 2 * rho_t**2) if rho_t < 1 else -1.0
        else:
            if rho_t < 1:
                # x = sigma_1(U)/||U||_F >= (s - nu)/(s_up + ||N||_F)
                s_up = S + along
                fro = facts.frobenius_bound(wn, ws, wmax, u) + along
                fro += B * math.sqrt(min(m, n)) + B  # ||bulk||_F <= sqrt(rank) ||bulk||_2
                x_lo = min(1.0, max(0.0, (s_t - nu_t) / (s_up + fro + c.eps)))
                ell = _ns_lo(_floor(x_lo), c.ns_steps, tuple(NS_COEFFS))
                L = ns_alignment_lower(rho_t, ell, h)
            else:
                L = -h
        rhos.append(rho_t)
        a_lo.append(a_lo[-1] + eta * ks * L)
        if a_lo[-1] >= R:
            break
    else:
        return None
    a_lo = np.asarray(a_lo)
    rhos = np.asarray(rhos)
    tau = len(a_lo) - 1
    bad = np.nonzero(rhos > RHO_SWITCH)[0]
    t_gap = int(bad[-1] + 1) if bad.size else 0
    rho_bar = float(rhos[t_gap:].max()) if t_gap < len(rhos) else 0.0
    if polar:
        prog = 1 - 2 * rho_bar**2
    else:
        prog = float(np.min(np.diff(a_lo)[t_gap:]) / (eta * ks))
    cf = ballistic_bound(float(a_lo[t_gap]), R, eta, ks, rho_bar, t_gap, progress=prog)
    return Certificate(tau=tau, t_gap=t_gap, a_gap=float(a_lo[t_gap]), rho_bar=rho_bar,
                       progress=prog, scale=ks, lr=eta, radius=R, a_lo=a_lo, rho=rhos,
                       closed_form=cf)


def _floor(x: float) -> float:
    """Round x down to 3 significant digits (a valid lower end; keeps ns_range's cache small)."""
    if x <= 0:
        return 0.0
    e = math.floor(math.log10(x)) - 2
    return math.floor(x / 10**e) * 10**e


@lru_cache(maxsize=8192)
def _ns_lo(x_lo: float, steps: int, coeffs: tuple) -> float:
    """Lower end of the NS range. The inner loop uses the float64 interval iteration of
    saddle.optimizers (tests check it against the symbolic :func:`ns_range` to 1e-12) minus a
    1e-9 safety margin, because the sympy version costs milliseconds per call."""
    from ..optimizers import newton_schulz_range

    return newton_schulz_range(x_lo, steps, coeffs)[0] - 1e-9


# ---- symbolic results -----------------------------------------------------------------------

tau = sp.Symbol("tau", positive=True)
t0, a_g, R_, eta_, ks_, rb, p_ = sp.symbols(
    "t_gap a_gap R eta k_s rhobar p", positive=True
)

_COMMON = (
    Assumption(MUON, "the optimizer is Muon", lambda c: c.optimizer == MUON),
    Assumption("rank_one", "one escape mode (escape_rank = 1)", lambda c: c.escape_rank == 1),
    Assumption("no_quartic", "quartic = 0 (the gradient along E is exactly -gamma a)",
               lambda c: c.quartic == 0),
    Assumption("constant_bulk", "constant bulk spectrum", lambda c: c.bulk == "constant"),
    Assumption("saddle_init", "init = saddle with a0 = init_escape > 0",
               lambda c: c.init == "saddle" and c.init_escape > 0),
    Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
    Assumption("projection", "escape criterion projection", lambda c: c.escape == "projection"),
    Assumption("sub_gaussian", "sub-Gaussian noise (not student_t)",
               lambda c: NOISES[c.noise].has_tail_bound),
)


def _cert_params(config, ns: bool):
    if (config.orthogonalizer == "newton_schulz") != ns:
        raise ValueError("other orthogonalizer")
    cert = certify(config)
    if cert is None:
        raise ValueError("not certified")
    return {"t_gap": cert.t_gap, "a_gap": cert.a_gap, "R": cert.radius, "eta": cert.lr,
            "k_s": cert.scale, "rhobar": cert.rho_bar, "p": cert.progress}


def _ballistic_params(config):
    cert = certify(config)
    if cert is None or config.orthogonalizer != "polar":
        raise ValueError("not certified")
    rho_all = float(np.max(cert.rho))
    return {"a_0": config.init_escape, "R": config.radius, "eta": cert.lr, "k_s": cert.scale,
            "rhobar": rho_all}


def _certified(ns: bool):
    def check(c):
        if (c.orthogonalizer == "newton_schulz") != ns:
            return False
        return certify(c) is not None

    return check


_ceil = sp.ceiling

MUON_BALLISTIC = Result(
    name="muon_ballistic",
    title="Ballistic escape of exact-polar Muon with a gap from the first step",
    quantity="escape_time",
    kind="upper",
    optimizer=MUON,
    lhs=tau,
    expr=_ceil((R_ - sp.Symbol("a_0", positive=True)) / (eta_ * ks_ * (1 - 2 * rb**2))),
    assumptions=_COMMON + (
        Assumption("polar", "orthogonalizer = polar", lambda c: c.orthogonalizer == "polar"),
        Assumption(
            "gap_from_start",
            "certified rho_t <= rho_bar < 1/sqrt 2 at every step (w.p. 1 - 1e-3)",
            lambda c: (lambda ce: ce is not None and float(np.max(ce.rho)) < 2**-0.5)(
                certify(c)),
        ),
        Assumption("gap_state", "rho_t = nu_t/(s_t - nu_t) <= rho_bar for all t >= t_0",
                   lambda st: st["rho"] <= st["rho_bar"], on="state"),
    ),
    params=_ballistic_params,
    page="muon_escape",
    d_dependence="none explicit; nu (hence rho_bar) carries the noise model's D-dependence",
    summary="each step raises a by >= eta k_s (1 - 2 rho_bar^2)",
)

def _two_phase(ns: bool, name: str, title: str, progress, unused: str, d_dependence: str,
               summary: str) -> Result:
    """The gap-building plus ballistic-phase bound for one orthogonalizer (Newton-Schulz when
    ``ns``, else exact polar): ``progress`` is the ballistic phase's per-step alignment,
    ``unused`` the certificate parameter that its expression leaves out."""
    orth = "newton_schulz" if ns else "polar"
    return Result(
        name=name,
        title=title,
        quantity="escape_time",
        kind="upper",
        optimizer=MUON,
        lhs=tau,
        expr=t0 + _ceil((R_ - a_g) / (eta_ * ks_ * progress)),
        assumptions=_COMMON + (
            Assumption(orth, f"orthogonalizer = {orth}", lambda c: c.orthogonalizer == orth),
            Assumption("certified", "the certified lower trajectory reaches R within max_steps",
                       _certified(ns)),
        ),
        params=lambda c: {k: v for k, v in _cert_params(c, ns).items() if k != unused},
        page="muon_escape",
        d_dependence=d_dependence,
        summary=summary,
    )


MUON_TOTAL = _two_phase(
    False, "muon_total_escape", "Exact-polar Muon: gap-building phase plus ballistic phase",
    progress=1 - 2 * rb**2, unused="p",
    d_dependence="through nu_t only: isotropic noise sigma (sqrt m + sqrt n) lengthens t_gap "
    "and raises rho_bar; opnorm/lowrank noise leave both D-free",
    summary="holds with probability >= 1 - 1e-3 per run",
)

MUON_NS_TOTAL = _two_phase(
    True, "muon_ns_total_escape", "Newton-Schulz Muon: gap-building phase plus ballistic phase",
    progress=p_, unused="rhobar",
    d_dependence="nu_t as for polar, plus ||N||_F in x = s/||U||_F: under isotropic noise "
    "x ~ s/(sigma sqrt(mn)), a D^{1/2} penalty on the signal needed",
    summary="p = min over the ballistic phase of ell(x_t)(1 - rho_t^2) - h rho_t^2",
)
