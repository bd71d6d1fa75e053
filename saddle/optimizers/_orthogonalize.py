"""Orthogonalizers for Muon: the quintic Newton-Schulz iteration and the exact polar factor."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..reduce import tree_norm

__all__ = [
    "NS_COEFFS",
    "newton_schulz",
    "polar_factor",
    "newton_schulz_range",
    "ns_polynomial",
]

# Keller Jordan's quintic coefficients (a, b, c): phi(x) = a x + b x^3 + c x^5.
NS_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz(
    X: jax.Array,
    steps: int = 5,
    coeffs=NS_COEFFS,
    eps: float | jax.Array = 1e-7,
) -> jax.Array:
    r"""Approximate the polar factor of a matrix with the quintic Newton-Schulz iteration.

    .. math::

        X_0 = X / (\lVert X \rVert_F + \epsilon), \qquad
        A = X_k X_k^\top,\; X_{k+1} = a X_k + (b A + c A^2) X_k .

    A tall input is transposed first so the Gram matrix A is min(m, n) square; the cost is
    ``steps * (4 r^2 c + 2 r^3)`` FLOPs for r = min(m, n), c = max(m, n). Each singular value
    x of X_0 maps to phi^(steps)(x); see :func:`newton_schulz_range`.

    ‖X‖_F is summed as the fixed pairwise tree of :func:`saddle.reduce.tree_sum`, so the
    result does not depend on the batch; a low-precision X (bf16) has it summed in float32.
    """
    if X.ndim != 2:
        raise ValueError(f"newton_schulz: got a {X.ndim}-D array; allowed: 2-D matrices")
    a, b, c = (jnp.asarray(v, X.dtype) for v in coeffs)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    Xn = X if jnp.finfo(X.dtype).bits >= 32 else X.astype(jnp.float32)
    X = (Xn / (tree_norm(Xn) + jnp.asarray(eps, Xn.dtype))).astype(X.dtype)

    def body(_, X):
        A = X @ X.T
        B = b * A + c * (A @ A)
        return a * X + B @ X

    X = jax.lax.fori_loop(0, steps, body, X, unroll=True)
    return X.T if tall else X


def polar_factor(X: jax.Array, refine: int | None = None) -> jax.Array:
    r"""The exact orthogonal polar factor U Vᵀ of X = U Σ Vᵀ; zero maps to zero.

    This is the idealized orthogonalizer the theory speaks of: every nonzero singular value
    becomes 1. It is computed from the eigendecomposition of the small Gram matrix
    (r×r, r = min(m, n)), ``X G^{-1/2}`` with ``G = XᵀX``, followed by ``refine`` cubic
    Newton–Schulz steps ``P ← 1.5 P − 0.5 P PᵀP``, which converge quadratically to the polar
    factor and remove the rounding the Gram matrix introduces (default: 2 steps when the Gram
    matrix is float64, 10 when it is float32, enough to lift directions whose singular values
    the float32 Gram matrix loses, down to ~1e-4 of the largest). Eigenvalues below
    ``r · eps · λ_max`` are clamped to that floor, so every singular value of the first
    estimate lies in [0, 1 + O(eps)], inside the cubic's basin; exactly zero singular values
    stay zero (the partial isometry on X's range, as Newton–Schulz also gives). The Gram
    eigendecomposition runs in float64 when x64 is enabled.

    Why not the SVD: XLA's CPU SVD costs ~20 ms for one 64×64 float32 matrix, 10–30× the
    symmetric eigensolver; tests compare this factor with the SVD's U Vᵀ to float rounding.
    """
    if X.ndim != 2:
        raise ValueError(f"polar_factor: got a {X.ndim}-D array; allowed: 2-D matrices")
    dtype = X.dtype
    tall = X.shape[0] >= X.shape[1]
    Y = X if tall else X.T  # Y is m×r with m >= r
    wide = jnp.promote_types(dtype, jnp.float64) if jax.config.jax_enable_x64 else dtype
    Yw = Y.astype(wide)
    G = Yw.T @ Yw
    w, V = jnp.linalg.eigh(G)
    r = Y.shape[1]
    floor = r * jnp.finfo(wide).eps * jnp.maximum(w[-1], jnp.finfo(wide).tiny)
    inv_sqrt = jnp.where(w > 0, 1.0 / jnp.sqrt(jnp.maximum(w, floor)), 0.0)
    P = (Yw @ (V * inv_sqrt)) @ V.T
    if refine is None:
        refine = 2 if wide == jnp.float64 else 10
    for _ in range(refine):
        P = 1.5 * P - 0.5 * P @ (P.T @ P)
    P = P.astype(dtype)
    O = P if tall else P.T
    return jnp.where(jnp.any(X != 0), O, jnp.zeros_like(O))


def ns_polynomial(coeffs=NS_COEFFS) -> np.polynomial.Polynomial:
    """phi(x) = a x + b x^3 + c x^5 as a NumPy polynomial."""
    a, b, c = (float(v) for v in coeffs)
    return np.polynomial.Polynomial([0.0, a, 0.0, b, 0.0, c])


def _image(phi: np.polynomial.Polynomial, lo: float, hi: float) -> tuple[float, float]:
    """The exact image interval phi([lo, hi]): endpoints plus interior critical points."""
    pts = [lo, hi]
    for r in phi.deriv().roots():
        if abs(r.imag) < 1e-12 and lo < r.real < hi:
            pts.append(r.real)
    vals = phi(np.array(pts))
    return float(vals.min()), float(vals.max())


def newton_schulz_range(
    x_lo: float, steps: int = 5, coeffs=NS_COEFFS, x_hi: float = 1.0
) -> tuple[float, float]:
    """The interval that ``steps`` Newton-Schulz steps map [x_lo, x_hi] onto.

    The image of an interval under a continuous map is an interval, so the image under the
    composition phi^(steps) is obtained one step at a time, each from phi's endpoints and
    its real critical points (roots of a + 3 b x^2 + 5 c x^4). The result is exact up to
    float64 rounding, not a grid estimate.
    """
    if not 0 <= x_lo <= x_hi:
        raise ValueError(f"newton_schulz_range: need 0 <= x_lo <= x_hi, got {x_lo}, {x_hi}")
    phi = ns_polynomial(coeffs)
    lo, hi = float(x_lo), float(x_hi)
    for _ in range(steps):
        lo, hi = _image(phi, lo, hi)
    return lo, hi
