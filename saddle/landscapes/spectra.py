"""Bulk spectra and eigenbases for the spectral saddle, built in float64 NumPy.

Bulk eigenvalues are deterministic quantiles of the named distribution (so the empirical
spectrum is the distribution itself, with no sampling noise), placed on the (i, j) grid by a
permutation drawn from the landscape seed.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = [
    "bulk_quantiles",
    "marchenko_pastur_quantiles",
    "haar_orthogonal",
    "partial_rotation",
]


def _midpoints(count: int) -> np.ndarray:
    return (np.arange(count, dtype=np.float64) + 0.5) / count


def marchenko_pastur_quantiles(u: np.ndarray, ratio: float) -> np.ndarray:
    """Quantiles of the Marchenko-Pastur law with aspect ratio q in (0, 1] and mean 1.

    The density is sqrt((b - x)(x - a)) / (2 pi q x) on [a, b], a, b = (1 -+ sqrt q)^2.
    The CDF is integrated numerically on a grid fine enough that the quantiles are exact to
    about 1e-9, then inverted by interpolation.
    """
    q = float(ratio)
    a, b = (1 - np.sqrt(q)) ** 2, (1 + np.sqrt(q)) ** 2
    # Substituting x = (a + b)/2 - (b - a)/2 cos(theta) removes the square-root endpoints.
    theta = np.linspace(0.0, np.pi, 200_001)
    x = 0.5 * (a + b) - 0.5 * (b - a) * np.cos(theta)
    dx = 0.5 * (b - a) * np.sin(theta)
    dens = np.sqrt(np.clip((b - x) * (x - a), 0, None)) / (2 * np.pi * q * np.maximum(x, 1e-300))
    integrand = dens * dx
    trap = 0.5 * (integrand[1:] + integrand[:-1]) * np.diff(theta)
    cdf = np.concatenate([[0.0], np.cumsum(trap)])
    cdf /= cdf[-1]
    return np.interp(u, cdf, x)


def bulk_quantiles(kind: str, count: int, ratio: float | None, tail: float | None) -> np.ndarray:
    """``count`` positive unit-scale bulk eigenvalues of the named spectrum, ascending.

    - ``constant``: all 1.
    - ``uniform``: evenly spread over [ratio, 1].
    - ``marchenko_pastur``: MP quantiles with aspect ratio ``ratio`` and mean 1.
    - ``power_law``: Pareto quantiles with tail exponent ``tail`` and minimum about 1, so the
      top outliers grow like count^(1/tail).
    """
    u = _midpoints(count)
    if kind == "constant":
        return np.ones(count)
    if kind == "uniform":
        return ratio + (1.0 - ratio) * u
    if kind == "marchenko_pastur":
        vals = marchenko_pastur_quantiles(u, ratio)
        # A near-zero bottom edge (q -> 1) would make the bulk flat; keep it positive.
        return np.maximum(vals, 1e-12)
    if kind == "power_law":
        return (1.0 - u) ** (-1.0 / tail)
    raise ValueError(f"bulk: got {kind!r}; allowed: constant, uniform, marchenko_pastur, power_law")


def haar_orthogonal(rng: np.random.Generator, size: int) -> np.ndarray:
    """A Haar-distributed orthogonal matrix (QR of a Gaussian with the sign fix)."""
    Z = rng.standard_normal((size, size))
    Qm, R = np.linalg.qr(Z)
    return Qm * np.sign(np.diag(R))


def partial_rotation(rng: np.random.Generator, size: int, mixing: float) -> np.ndarray:
    """exp(mixing * (pi/2) * S / sqrt(size)) with S a standard antisymmetric Gaussian.

    S / sqrt(size) has eigenvalues i*theta with theta spread (semicircle) over [-2, 2], so
    ``mixing = 0`` is the identity (coherent) and ``mixing = 1`` turns eigen-directions by
    angles spread over [-pi, pi], which delocalizes them about as much as a Haar basis.
    """
    if mixing == 0.0 or size == 1:
        return np.eye(size)
    G = rng.standard_normal((size, size))
    S = (G - G.T) / np.sqrt(2.0)
    return scipy.linalg.expm((mixing * 0.5 * np.pi / np.sqrt(size)) * S)
