r"""Gaussian noise with i.i.d. entries: ``none``, ``isotropic`` and ``opnorm``.

| model | Xi | scale of sigma |
|---|---|---|
| ``none`` | 0 | - |
| ``isotropic`` | sigma Z, Z iid N(0, 1) | per-entry std; ||Xi||_2 ~ sigma (sqrt m + sqrt n) |
| ``opnorm`` | sigma/(sqrt m + sqrt n) Z | ||Xi||_2 ~ sigma whatever the shape |

Which holds decides whether a "sufficient spectral gap" is itself D-dependent: under
``isotropic`` noise the operator norm grows like sqrt(m) + sqrt(n); under ``opnorm`` it
does not. Norm bounds for filtered sums use Gordon's inequality, E||G||_2 <= sqrt m + sqrt n
for G standard Gaussian, and Gaussian concentration (Lipschitz constant 1 in Frobenius).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from ._spec import NoiseSpec, ScaledNoise, register, scalar, sqrt_mn

__all__ = ["NoNoise", "Isotropic", "OpNorm"]


@register
class NoNoise(NoiseSpec):
    name = "none"
    shape_free_entries = True
    rotation_invariant = True
    summary = "no noise: full-batch gradients"
    numba = True
    draws = False

    def sample(self, model, gen, shape, dtype):
        return jnp.zeros(shape, dtype)

    def numba_scale(self, config) -> float:
        return 0.0

    def entry_std(self, config) -> float:
        return 0.0

    def typical_spectral_norm(self, f) -> float:
        return 0.0

    def spectral_bound(self, f, wnorm, wsum, wmax, u) -> float:
        return 0.0

    def frobenius_bound(self, f, wnorm, wsum, wmax, u) -> float:
        return 0.0


@register
class Isotropic(ScaledNoise):
    name = "isotropic"
    shape_free_entries = True
    rotation_invariant = True
    is_default = True
    summary = "sigma Z: per-entry std sigma"
    numba = True

    def sample(self, model, gen, shape, dtype):
        return scalar(model, "sigma", dtype) * gen.normal(shape, dtype)

    def typical_spectral_norm(self, f) -> float:
        return f.sigma * sqrt_mn(f.m, f.n)

    def spectral_bound(self, f, wnorm, wsum, wmax, u) -> float:
        if wsum == 0:
            return 0.0
        return f.sigma * wnorm * (math.sqrt(f.m) + math.sqrt(f.n) + u)

    def frobenius_bound(self, f, wnorm, wsum, wmax, u) -> float:
        if wsum == 0:
            return 0.0
        return f.sigma * wnorm * (math.sqrt(f.m * f.n) + u)


@register
class OpNorm(ScaledNoise):
    name = "opnorm"
    rotation_invariant = True
    summary = "sigma/(sqrt m + sqrt n) Z: spectral norm about sigma at every shape"
    numba = True

    def sample(self, model, gen, shape, dtype):
        m, n = shape
        c = (scalar(model, "sigma", dtype) / (np.sqrt(m) + np.sqrt(n))).astype(dtype)
        return c * gen.normal(shape, dtype)

    def numba_scale(self, config) -> float:
        return config.sigma / (np.sqrt(config.m) + np.sqrt(config.n))

    def entry_std(self, config) -> float:
        return float(config.sigma or 0.0) / sqrt_mn(config.m, config.n)

    def typical_spectral_norm(self, f) -> float:
        return f.sigma

    def spectral_bound(self, f, wnorm, wsum, wmax, u) -> float:
        if wsum == 0:
            return 0.0
        return f.sigma * wnorm * (1 + u / (math.sqrt(f.m) + math.sqrt(f.n)))

    def frobenius_bound(self, f, wnorm, wsum, wmax, u) -> float:
        if wsum == 0:
            return 0.0
        return f.sigma * wnorm * (math.sqrt(f.m * f.n) + u) / (math.sqrt(f.m) + math.sqrt(f.n))
