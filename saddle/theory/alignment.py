"""Polar-alignment lower bounds as plain functions of (s, nu) or rho.

The statements and their proofs are in :mod:`theory.polar`, which also re-exports these
functions. They live here so that the Muon certificate (:mod:`theory.muon`), which
evaluates them along its trajectory, and the polar results, which evaluate that
certificate, do not import each other.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rho_of", "alignment_lower", "ns_alignment_lower", "polar_np"]


def rho_of(s_val: float, nu_val: float) -> float:
    """rho = nu / (s - nu), inf when s <= nu."""
    return nu_val / (s_val - nu_val) if s_val > nu_val else float("inf")


def alignment_lower(s_val: float, nu_val: float, r: int = 1) -> float:
    """The certified lower bound on <polar(M), U V^T> (rank r); -r when rho >= 1."""
    rh = rho_of(s_val, nu_val)
    if rh >= 1:
        return -float(r)
    return r * (1 - 2 * rh * rh)


def ns_alignment_lower(rho_val: float, ell: float, h: float) -> float:
    """The rank-one lower bound on <NS(M), u v^T>: ell (1 - rho^2) - h rho^2; -h if rho >= 1."""
    if rho_val >= 1:
        return -h
    return ell * (1 - rho_val**2) - h * rho_val**2


def polar_np(M: np.ndarray) -> np.ndarray:
    """Exact polar factor U V^T (float64 NumPy)."""
    U, _, Vt = np.linalg.svd(np.asarray(M, np.float64), full_matrices=False)
    return U @ Vt
