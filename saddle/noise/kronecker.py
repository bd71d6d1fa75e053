r"""Kronecker (row-scaled) noise: Xi = sigma diag(s) Z with Zipf-like row variances.

s_i^2 is proportional to (i + 1)^(-zipf) with mean s_i^2 = 1, so the mean per-entry variance
is sigma^2 while a few rows carry most of it. Along a unit direction p q^T the noise has
variance sigma^2 sum_i s_i^2 p_i^2, which depends on where p points. The spectral norm
bound uses Chevet's inequality, E||diag(s) G||_2 <= s_max sqrt n + ||s||_2/sqrt(m) sqrt m.
"""

from __future__ import annotations

import math

import numpy as np

from ..fields import float_field
from ._spec import ScaledNoise, register, scalar, square

__all__ = ["Kronecker", "NOISE_ZIPF", "kronecker_row_scales"]

NOISE_ZIPF = float_field("noise_zipf", 1.0, "kronecker: Zipf exponent of the row scales", "noise",
                         lo=0)


def kronecker_row_scales(m: int, zipf: float) -> np.ndarray:
    """Row standard deviations s_i with s_i^2 ∝ (i + 1)^(-zipf) and mean s_i^2 = 1."""
    var = (np.arange(1, m + 1, dtype=np.float64)) ** (-zipf)
    return np.sqrt(var / var.mean())


@register
class Kronecker(ScaledNoise):
    name = "kronecker"
    summary = "sigma diag(s) Z: Zipf-like row variances, mean per-entry variance sigma^2"
    fields = (*ScaledNoise.fields, NOISE_ZIPF)
    numba = True

    def shared_key(self, config) -> tuple:
        return (config.noise_zipf,)

    def shared_arrays(self, config):
        return {"row_scales": kronecker_row_scales(config.m, config.noise_zipf)}

    def sample(self, model, gen, shape, dtype):
        Z = gen.normal(shape, dtype)
        sigma = scalar(model, "sigma", dtype)
        return (sigma * model.arrays["row_scales"].astype(dtype))[:, None] * Z

    def numba_row_scales(self, arrays):
        return arrays["row_scales"]

    def row_scales(self, config):
        return kronecker_row_scales(config.m, config.noise_zipf)

    def e_variance(self, config, row_weights):
        sigma = float(config.sigma or 0.0)
        return tuple(square(sigma) * w for w in row_weights)

    def typical_spectral_norm(self, f) -> float:
        return f.sigma * (f.row_scale_max * math.sqrt(f.n) + math.sqrt(f.m))

    def spectral_bound(self, f, wnorm, wsum, wmax, u) -> float:
        if wsum == 0:
            return 0.0
        smax = f.row_scale_max
        return f.sigma * wnorm * (smax * math.sqrt(f.n) + math.sqrt(f.m) + smax * u)

    def frobenius_bound(self, f, wnorm, wsum, wmax, u) -> float:
        if wsum == 0:
            return 0.0
        return f.sigma * wnorm * (math.sqrt(f.m * f.n) + f.row_scale_max * u)
