r"""Heavy-tailed noise: Xi = sigma T with T i.i.d. Student-t(df), unit variance when df > 2.

No sub-Gaussian norm bound exists, so the theory's high-probability bounds do not apply;
for df <= 2 the variance is infinite and T is left unscaled.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..fields import float_field
from ._spec import ScaledNoise, register, scalar, sqrt_mn, square

__all__ = ["StudentT", "NOISE_DF"]

NOISE_DF = float_field("noise_df", 4.0, "student_t: degrees of freedom (> 2 gives unit-variance "
                       "entries)", "noise", lo=0, lo_open=True)


@register
class StudentT(ScaledNoise):
    name = "student_t"
    shape_free_entries = True
    summary = "sigma T, T Student-t(df) scaled to unit variance"
    fields = (*ScaledNoise.fields, NOISE_DF)
    traced = ("sigma", "noise_df")
    gaussian_along_e = False
    has_tail_bound = False

    def sample(self, model, gen, shape, dtype):
        df = scalar(model, "noise_df", dtype)
        T = gen.student_t(df, shape, dtype)
        unit = jnp.where(df > 2, jnp.sqrt(jnp.maximum(df - 2, 0) / df), 1.0).astype(dtype)
        return (scalar(model, "sigma", dtype) * unit) * T

    def _variance(self, config) -> float:
        sigma = float(config.sigma or 0.0)
        return square(sigma) if config.noise_df > 2 else math.inf

    def entry_std(self, config) -> float:
        return math.sqrt(self._variance(config))

    def e_variance(self, config, row_weights):
        return (self._variance(config),) * config.escape_rank

    def typical_spectral_norm(self, f) -> float:
        return f.sigma * sqrt_mn(f.m, f.n)
