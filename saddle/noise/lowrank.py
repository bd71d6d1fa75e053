r"""Low-rank noise: Xi = sigma/sqrt(mn) A B^T with A (m x k), B (n x k) i.i.d. N(0, 1).

Each of the k rank-one components has spectral norm about sigma whatever the shape, so the
noise's operator norm does not grow with D. The norm bound of a filtered sum
sum_k w_k Xi_k writes it as A~ B~^T with A~ = [sqrt(w_k) A_k] and applies Gordon's bound to
each factor: sigma (sqrt(m w_max) + sqrt(k sum w)) (sqrt(n w_max) + sqrt(k sum w)) / sqrt(mn).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..fields import int_field
from ._spec import ScaledNoise, register, scalar, square

__all__ = ["LowRank", "NOISE_RANK"]

NOISE_RANK = int_field("noise_rank", 1, "lowrank: rank k of the noise", "noise", lo=1)


@register
class LowRank(ScaledNoise):
    name = "lowrank"
    summary = "sigma/sqrt(mn) A B^T of rank k: spectral norm about sigma"
    fields = (*ScaledNoise.fields, NOISE_RANK)
    static = ("noise_rank",)
    # <A B^T, E> is a sum of products of Gaussians: not Gaussian.
    gaussian_along_e = False

    def check(self, values):
        r_max = min(values["m"], values["n"])
        if values["noise_rank"] > r_max:
            raise ConfigError("noise_rank", values["noise_rank"],
                              f"an integer in [1, min(m, n)] = [1, {r_max}]")

    def sample(self, model, gen, shape, dtype):
        m, n = shape
        rank = dict(model.static)["noise_rank"]
        A = gen.normal((m, rank), dtype, 0)
        B = gen.normal((n, rank), dtype, 1)
        c = (scalar(model, "sigma", dtype) / np.sqrt(m * n)).astype(dtype)
        return c * jnp.matmul(A, B.T, precision=jax.lax.Precision.HIGHEST)

    def entry_std(self, config) -> float:
        return float(config.sigma or 0.0) * math.sqrt(config.noise_rank / (config.m * config.n))

    def e_variance(self, config, row_weights):
        sigma = float(config.sigma or 0.0)
        return (square(sigma) * config.noise_rank / (config.m * config.n),) * config.escape_rank

    def typical_spectral_norm(self, f) -> float:
        k = f.rank
        return f.sigma * (1 + math.sqrt(k / f.m)) * (1 + math.sqrt(k / f.n))

    def spectral_bound(self, f, wnorm, wsum, wmax, u) -> float:
        if wsum == 0:
            return 0.0
        k, m, n = f.rank, f.m, f.n
        a = math.sqrt(m * wmax) + math.sqrt(k * wsum) + math.sqrt(wmax) * u
        b = math.sqrt(n * wmax) + math.sqrt(k * wsum) + math.sqrt(wmax) * u
        return f.sigma * a * b / math.sqrt(m * n)

    def frobenius_bound(self, f, wnorm, wsum, wmax, u) -> float:
        if wsum == 0:
            return 0.0
        # ||A~ B~^T||_F <= ||A~||_F ||B~||_2.
        k, m, n = f.rank, f.m, f.n
        a = math.sqrt(m * k * wsum) + math.sqrt(wmax) * u
        b = math.sqrt(n * wmax) + math.sqrt(k * wsum) + math.sqrt(wmax) * u
        return f.sigma * a * b / math.sqrt(m * n)
