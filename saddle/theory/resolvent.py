r"""Resolvent calculus, numerically: spectral projectors and the polar factor by contour integrals.

For a symmetric positive semidefinite A (A = M M^T or M^T M):

- spectral projector onto the eigenvalues inside a contour Gamma:
  P = (1/2 pi i) oint_Gamma (z - A)^{-1} dz;
- inverse square root: A^{-1/2} = (1/2 pi i) oint_Gamma z^{-1/2} (z - A)^{-1} dz for Gamma
  around the whole spectrum and away from the branch cut (-inf, 0]; then
  polar(M) = M (M^T M)^{-1/2}.

Both use the trapezoid rule on a circle z = c + r e^{i theta}, N nodes. For the projector, the
trapezoid sum of 1/(z - lambda) is exactly 1/(1 - q^N) for an eigenvalue inside
(q = (lambda - c)/r) and -q^{-N}/(1 - q^{-N}) outside, so the error is geometric with ratio

    q* = max( max_inside |lambda - c|/r,  max_outside r/|lambda - c| ).

With the enclosed eigenvalues in [alpha, beta] and the others <= g < alpha, the best circle has
c = (alpha + beta)/2, r = sqrt((beta - alpha)/2 * (c - g)) and q* = sqrt((beta - alpha)/(beta +
alpha - 2 g)): the gap sets the rate. For z^{-1/2} the excluded point is the branch point 0
(g = 0), giving q* = sqrt((beta - alpha)/(beta + alpha)), a function of the condition number.
The node count for a target accuracy eps is N = ceil(ln(eps/C)/ln q*) with a small safety
constant C.

Conjugate symmetry (A real symmetric) halves the work: the nodes come in pairs z, conj(z) and
the sum is twice the real part over the upper half circle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Contour",
    "projector_contour",
    "polar_contour",
    "spectral_projector",
    "inverse_sqrt",
    "polar_factor",
    "nodes_for",
    "trapezoid",
]


@dataclass(frozen=True)
class Contour:
    """A circle c + r e^{i theta} and its predicted geometric convergence ratio q."""

    center: float
    radius: float
    rate: float  # q*: the error shrinks like q*^N


def projector_contour(alpha: float, beta: float, gap_below: float) -> Contour:
    """The best circle around [alpha, beta] excluding eigenvalues <= gap_below (< alpha)."""
    if not gap_below < alpha <= beta:
        raise ValueError(f"need gap_below < alpha <= beta, got {gap_below}, {alpha}, {beta}")
    c = 0.5 * (alpha + beta)
    half = 0.5 * (beta - alpha)
    if half == 0:
        half = 1e-3 * (alpha - gap_below)  # a point spectrum: any small circle works
    r = math.sqrt(half * (c - gap_below))
    q = max(half / r, r / (c - gap_below))
    return Contour(c, r, q)


def polar_contour(alpha: float, beta: float) -> Contour:
    """The best circle around [alpha, beta] (alpha > 0) excluding the branch point 0."""
    return projector_contour(alpha, beta, 0.0)


def nodes_for(contour: Contour, tol: float, safety: float = 10.0, minimum: int = 8) -> int:
    """Nodes N with safety * q^N <= tol (even, for the conjugate-pair half sum)."""
    if contour.rate <= 0:
        return minimum
    N = math.ceil(math.log(tol / safety) / math.log(contour.rate))
    N = max(N, minimum)
    return N + (N % 2)


def trapezoid(A: np.ndarray, contour: Contour, N: int, f=None, B: np.ndarray | None = None):
    """(1/2 pi i) oint f(z) (z - A)^{-1} B dz by the N-node trapezoid rule (real result).

    ``f`` defaults to 1 (the projector); ``B`` defaults to the identity.
    """
    A = np.asarray(A, np.float64)
    k = A.shape[0]
    if B is None:
        B = np.eye(k)
    if N % 2:
        raise ValueError("N must be even")
    theta = 2 * np.pi * (np.arange(N // 2) + 0.5) / N  # upper half; conjugates mirror
    out = np.zeros((k, B.shape[1]), np.complex128)
    I = np.eye(k)
    for th in theta:
        w = contour.radius * np.exp(1j * th)  # dz/(i dtheta) * (1/N) * 2 pi / (2 pi)
        z = contour.center + w
        fz = 1.0 if f is None else f(z)
        out += fz * w * np.linalg.solve(z * I - A, B)
    return 2 * out.real / N


def _eig_bounds(A: np.ndarray):
    w = np.linalg.eigvalsh(A)  # only to place the contour; the integral uses solves
    return w[::-1]


def spectral_projector(M: np.ndarray, r: int, tol: float = 1e-12, N: int | None = None,
                       side: str = "left") -> tuple[np.ndarray, dict]:
    """Projector onto the top-r left (M M^T) or right (M^T M) singular subspace of M.

    Returns (P, info) with info = dict(nodes, rate, gap_ratio, contour).
    """
    M = np.asarray(M, np.float64)
    A = M @ M.T if side == "left" else M.T @ M
    lam = _eig_bounds(A)
    if not 1 <= r < len(lam):
        raise ValueError(f"r must be in 1..{len(lam) - 1}, got {r}")
    alpha, beta, g = lam[r - 1], lam[0], max(lam[r], 0.0)
    if not alpha > g:
        raise ValueError("no gap between the r-th and (r+1)-th singular values")
    C = projector_contour(alpha, beta, g)
    n_nodes = nodes_for(C, tol) if N is None else N
    P = trapezoid(A, C, n_nodes)
    return P, dict(nodes=n_nodes, rate=C.rate, gap_ratio=math.sqrt(g / alpha), contour=C)


def inverse_sqrt(A: np.ndarray, tol: float = 1e-12, N: int | None = None):
    """A^{-1/2} for symmetric positive definite A by the contour integral."""
    lam = _eig_bounds(A)
    if lam[-1] <= 0:
        raise ValueError("A must be positive definite")
    C = polar_contour(lam[-1], lam[0])
    n_nodes = nodes_for(C, tol) if N is None else N
    return trapezoid(A, C, n_nodes, f=lambda z: 1 / np.sqrt(z)), dict(nodes=n_nodes,
                                                                      rate=C.rate, contour=C)


def polar_factor(M: np.ndarray, tol: float = 1e-12, N: int | None = None,
                 method: str = "dilation"):
    """The polar factor of a full-rank M by a contour integral.

    ``method="dilation"`` (default): the Hermitian dilation H = [[0, M], [M^T, 0]] has
    eigenvalues +-sigma_i (and 0); sign(H) = 2 P_+ - I has polar(M) as its off-diagonal block,
    so polar(M) = 2 P_+[:m, m:] with P_+ the projector onto [sigma_min, sigma_max]. The rate is
    sqrt((kappa - 1)/(kappa + 1)), kappa = sigma_max/sigma_min.
    ``method="gram"``: M (M^T M)^{-1/2} with the z^{-1/2} integral; the rate is
    sqrt((kappa^2 - 1)/(kappa^2 + 1)), much slower for ill-conditioned M.
    """
    M = np.asarray(M, np.float64)
    if method == "dilation":
        m, n = M.shape
        H = np.zeros((m + n, m + n))
        H[:m, m:] = M
        H[m:, :m] = M.T
        sv = np.linalg.svd(M, compute_uv=False)  # only to place the contour
        if sv[-1] <= 0:
            raise ValueError("M must have full rank")
        C = projector_contour(sv[-1], sv[0], 0.0)
        n_nodes = nodes_for(C, tol) if N is None else N
        P = trapezoid(H, C, n_nodes)
        return 2 * P[:m, m:], dict(nodes=n_nodes, rate=C.rate, contour=C)
    if method != "gram":
        raise ValueError(f"method: got {method!r}; allowed: dilation, gram")
    if M.shape[0] >= M.shape[1]:
        S, info = inverse_sqrt(M.T @ M, tol, N)
        return M @ S, info
    S, info = inverse_sqrt(M @ M.T, tol, N)
    return S @ M, info
