r"""Diagnostics: is the momentum's signal subspace separated enough for the Muon bounds?

Given a matrix M (e.g. a trajectory's momentum or Nesterov input U) and the escape subspace
(U_E, V_E) of rank r, :func:`gap_diagnostic` measures

- s_i = u_i^T M v_i, the signal along each escape direction, and
  nu = ||M - U_E diag(s) V_E^T||_2, the rest's operator norm;
- rho = nu/(s_min - nu) and whether the alignment bound's assumption (rho < 1/sqrt 2) holds;
- the singular-value gap ratio sigma_{r+1}/sigma_r of M;
- the overlap tr(P_r P_E)/r of the top-r left singular subspace of M with span(U_E), with P_r
  computed by the contour integral of :mod:`theory.resolvent`;
- the actual alignment <polar(M), U_E V_E^T> (polar factor by contour integral) next to its
  certified lower bound r (1 - 2 rho^2).

:func:`trajectory_rho` turns an engine trace (``simulate(cfg, trace_stride=k).traces``) into
rho per recorded step, from its ``momentum_signal`` and ``momentum_noise`` columns (these are
measured on the momentum buffer, not on the Nesterov combination).
"""

from __future__ import annotations

import math

import numpy as np

from . import resolvent
from .polar import alignment_lower, rho_of

__all__ = ["gap_diagnostic", "trajectory_rho", "state_of"]


def gap_diagnostic(M: np.ndarray, UE: np.ndarray, VE: np.ndarray, tol: float = 1e-10,
                   contour: bool = True, max_nodes: int = 2000) -> dict:
    """Separation of M's signal subspace from the rest; see the module docstring.

    ``contour=False`` skips the contour-integral quantities (subspace overlap, alignment).
    The polar factor by contour is skipped (alignment nan) when its node count for ``tol``
    exceeds ``max_nodes`` (an ill-conditioned M: the rate is sqrt((kappa-1)/(kappa+1))).
    """
    M = np.asarray(M, np.float64)
    UE = np.asarray(UE, np.float64).reshape(M.shape[0], -1)
    VE = np.asarray(VE, np.float64).reshape(M.shape[1], -1)
    r = UE.shape[1]
    s = np.einsum("ir,ij,jr->r", UE, M, VE)
    sign = np.where(s < 0, -1.0, 1.0)
    s = np.abs(s)
    N = M - (UE * (s * sign)) @ VE.T
    nu = float(np.linalg.norm(N, 2))
    s_min = float(s.min())
    rho = rho_of(s_min, nu)
    sv = np.linalg.svd(M, compute_uv=False)
    gap_ratio = float(sv[r] / sv[r - 1]) if r < len(sv) and sv[r - 1] > 0 else float("nan")
    out = dict(r=r, s=s.tolist(), nu=nu, fro=float(np.linalg.norm(M)), rho=rho,
               holds=bool(rho < 2**-0.5), gap_ratio=gap_ratio,
               alignment_bound=alignment_lower(s_min, nu, r))
    if not contour:
        return out
    try:
        P, info = resolvent.spectral_projector(M, r, tol=tol)
        out["subspace_overlap"] = float(np.trace(P @ (UE @ UE.T)) / r)
        out["projector_nodes"] = info["nodes"]
    except ValueError:
        out["subspace_overlap"] = float("nan")
    out["alignment"] = float("nan")
    kappa = sv[0] / sv[min(M.shape) - 1] if sv[min(M.shape) - 1] > 0 else np.inf
    if np.isfinite(kappa):
        rate = math.sqrt((kappa - 1) / (kappa + 1))
        need = resolvent.nodes_for(resolvent.Contour(0.0, 1.0, rate), tol)
        if need <= max_nodes:
            Q, _ = resolvent.polar_factor(M, tol=tol)
            out["alignment"] = float(np.einsum("ir,ij,jr->", UE * sign, Q, VE))
    return out


def trajectory_rho(trace: dict) -> np.ndarray:
    """rho_t = nu_t/(s_t - nu_t) per recorded step of an engine trace (inf without a gap)."""
    s = np.asarray(trace["momentum_signal"], np.float64)
    nu = np.asarray(trace["momentum_noise"], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(s > nu, nu / (s - nu), np.inf)
    return rho


def state_of(trace: dict, i: int) -> dict:
    """A trajectory state (for state-level assumptions): s, nu, rho at trace row i."""
    s = float(trace["momentum_signal"][i])
    nu = float(trace["momentum_noise"][i])
    return dict(s=s, nu=nu, s_min=s, rho=rho_of(s, nu) if math.isfinite(s) else math.inf)


def replay_muon(config, seed: int = 0, steps: int | None = None, tol: float = 1e-10,
                contour_every: int = 10):
    """Replay one Muon run in float64 NumPy and diagnose the gap at every step.

    The algebra is the lab's Muon (EMA momentum, optional Nesterov, Newton-Schulz or exact
    polar, the scaling factor, no weight decay) on the config's spectral saddle (quadratic:
    quartic must be 0), with NumPy Gaussian noise from ``seed`` (isotropic, opnorm or none;
    a replay, not the engine's random stream). Stops at the escape (|a| >= radius) or after
    ``steps`` (default max_steps). The contour-integral diagnostics run every
    ``contour_every`` steps (they cost hundreds of solves each; 0: never).

    Returns a list of per-step dicts: t, a (before the step), da (the step's change of a),
    bulk_norm (||X_t||_2, X_t = W_t - W* - a_t E, before the step) and the
    :func:`gap_diagnostic` of -U against the escape direction (s, nu, rho, holds,
    alignment, alignment_bound, subspace_overlap, gap_ratio).
    """
    from ..landscapes import landscape_arrays
    from ..optimizers import NS_COEFFS, MuonSpec, muon_scale
    from ..registry import NOISES

    c = config
    noise = NOISES[c.noise]
    iid_gaussian = noise.numba and noise.row_scales(c) is None
    if c.optimizer != MuonSpec.name or c.quartic != 0 or not iid_gaussian:
        raise ValueError("replay_muon: needs muon, quartic 0, and i.i.d. Gaussian noise "
                         "(none, isotropic or opnorm)")
    m, n = c.m, c.n
    arr = landscape_arrays(c)
    if arr["basis"] is not None:
        P, Q = arr["basis"].dense()
    else:
        P = np.eye(m) if arr["P"] is None else arr["P"]
        Q = np.eye(n) if arr["Q"] is None else arr["Q"]
    lam = c.bulk_scale * arr["bulk"]
    r = c.escape_rank
    idx = np.arange(r)
    lam[idx, idx] = -c.gamma
    p0, q0 = P[:, :1], Q[:, :1]
    E = p0 @ q0.T
    rng = np.random.default_rng(seed)
    sd = noise.numba_scale(c)
    X = c.init_escape * E + (c.init_scale * rng.standard_normal((m, n))
                             if c.init == "random" else 0.0)
    beta, eta = c.momentum, c.learning_rate
    ks = muon_scale((m, n), c.scaling)
    Mom = np.zeros((m, n))
    out = []
    T = c.max_steps if steps is None else steps
    for t in range(T):
        a = float(np.sum(X * E))
        if t >= 1 and abs(a) >= c.radius:
            break
        G = P @ (lam * (P.T @ X @ Q)) @ Q.T + sd * rng.standard_normal((m, n))
        Mom = beta * Mom + (1 - beta) * G
        U = (1 - beta) * G + beta * Mom if c.nesterov else Mom
        if c.orthogonalizer == "polar":
            O = _polar(U)
        else:
            O = _ns(U, c.ns_steps, NS_COEFFS, c.eps)
        step = -eta * ks * O
        diag = gap_diagnostic(-U, p0, q0, tol=tol,
                              contour=contour_every > 0 and t % contour_every == 0)
        bulk = float(np.linalg.norm(X - a * E, 2))
        X = X + step
        out.append(dict(t=t, a=a, da=float(np.sum(step * E)), bulk_norm=bulk, **diag))
    return out


def _polar(U):
    u, _, vt = np.linalg.svd(U, full_matrices=False)
    return u @ vt


def _ns(U, steps, coeffs, eps):
    a, b, c = coeffs
    tall = U.shape[0] > U.shape[1]
    X = U.T if tall else U
    X = X / (np.linalg.norm(X) + eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X
