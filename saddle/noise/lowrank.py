r"""Low-rank noise: Xi = sigma/sqrt(mn) A B^T with A (m x k), B (n x k) i.i.d. N(0, 1).

Each of the k rank-one components has spectral norm about sigma whatever the shape, so the
noise's operator norm does not grow with D. The norm bound of a filtered sum
sum_k w_k Xi_k writes it as A~ B~^T with A~ = [sqrt(w_k) A_k] and applies Gordon's bound to
each factor: sigma (sqrt(m w_max) + sqrt(k sum w)) (sqrt(n w_max) + sqrt(k sum w)) / sqrt(mn).

Coherence with the escape direction (``noise_coherence`` c in [0, 1], spectral landscape):
the draw is rotated, Xi_c = R_L Xi R_R^T, by the plane rotation R_L that turns the unit
direction u = a_1/||a_1|| of the first left factor toward +-p_0 (the sign of p_0^T u) until
|p_0^T R_L u| = max(|p_0^T u|, sqrt(c)), and likewise R_R for b_1 and q_0. R_L and R_R are
orthogonal, so every singular value of Xi_c equals that of the same draw at c = 0: the
Frobenius and operator norms are unchanged *per draw* (up to rounding), hence so is their
law and every norm fact below. Only the orientation changes: with rho_a = p_0^T a_1/||a_1||
and rho_b = q_0^T b_1/||b_1|| (rho^2 ~ Beta(1/2, (m-1)/2), independent of the norms), and
the other components' factors independent of the rotations (so still isotropic),

    Var <Xi_c, E_0> = sigma^2 E max(rho_a^2, c) E max(rho_b^2, c) + (k - 1) sigma^2/(mn),

exactly: sigma^2 k/(mn) at c = 0, about c^2 sigma^2 for c >> 1/m, and sigma^2 k at c = 1 with
k = 1 (the noise is then +-||Xi|| E_0). The sign of <Xi_c, E_0> stays symmetric: mean 0.
c = 0 is the old law, drawn by the old code path (bit-identical numbers and hashes).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from ..errors import ConfigError
from ..fields import float_field, int_field
from ._spec import ScaledNoise, register, scalar, square

__all__ = ["LowRank", "NOISE_RANK", "NOISE_COHERENCE", "raise_overlap"]

NOISE_RANK = int_field("noise_rank", 1, "lowrank: rank k of the noise", "noise", lo=1)
NOISE_COHERENCE = float_field(
    "noise_coherence", 0.0, "lowrank, spectral landscape: rotate each draw so that its first "
    "factors overlap the escape vectors p_0, q_0 by at least sqrt(c) (norms unchanged per "
    "draw; 0: the plain law)", "noise", lo=0, hi=1)


def raise_overlap(X: jax.Array, u: jax.Array, p: jax.Array, c) -> jax.Array:
    """R X for the rotation R in the plane of the unit vectors u and +-p (the sign of p^T u)
    that turns u until |p^T R u| = max(|p^T u|, sqrt(c)); the identity where |p^T u| is
    already that large. X: (m, k); u, p: (m,). R is orthogonal: it changes no norm."""
    dot = jnp.dot(p, u, precision=jax.lax.Precision.HIGHEST)
    rho = jnp.abs(dot)
    target = jnp.sqrt(jnp.asarray(c, X.dtype))
    w = jnp.where(dot < 0, -p, p) - rho * u  # the unit direction in the plane normal to u
    wn = jnp.sqrt(jnp.sum(w * w))
    w = w / jnp.where(wn > 0, wn, 1)
    delta = jnp.where(rho < target, jnp.arccos(jnp.clip(rho, 0, 1)) - jnp.arccos(target), 0)
    ux, wx = u @ X, w @ X  # (k,) coordinates of X's columns in the plane
    cos, sin = jnp.cos(delta), jnp.sin(delta)
    return (X + jnp.outer(u, (cos - 1) * ux - sin * wx)
            + jnp.outer(w, (cos - 1) * wx + sin * ux))


def _mean_max_overlap(dim: int, c: float) -> float:
    """E max(rho^2, c) for rho the first coordinate of a uniform unit vector in R^dim
    (rho^2 ~ Beta(1/2, (dim - 1)/2); E rho^2 1{rho^2 > c} = (1/dim) P(Beta(3/2, .) > c))."""
    if dim == 1:
        return 1.0
    b = (dim - 1) / 2
    return (c * scipy.stats.beta.cdf(c, 0.5, b)
            + scipy.stats.beta.sf(c, 1.5, b) / dim)


@register
class LowRank(ScaledNoise):
    name = "lowrank"
    # Gaussian factors (and a coherence relative to the escape vectors, which turn with P, Q)
    rotation_invariant = True
    summary = "sigma/sqrt(mn) A B^T of rank k: spectral norm about sigma"
    fields = (*ScaledNoise.fields, NOISE_RANK, NOISE_COHERENCE)
    # noise_coherence is static: c > 0 takes another code path (gradient_noise), and c = 0
    # normalizes to None (see applies), so the old configs' hashes and numbers stay.
    static = ("noise_rank", "noise_coherence")
    # <A B^T, E> is a sum of products of Gaussians: not Gaussian.
    gaussian_along_e = False

    def applies(self, field, values):
        return field != "noise_coherence" or (values["noise_coherence"] or 0.0) > 0

    def check(self, values):
        r_max = min(values["m"], values["n"])
        if values["noise_rank"] > r_max:
            raise ConfigError("noise_rank", values["noise_rank"],
                              f"an integer in [1, min(m, n)] = [1, {r_max}]")
        if (values["noise_coherence"] or 0.0) > 0 and values["landscape"] != "spectral":
            raise ConfigError("noise_coherence", values["noise_coherence"],
                              "0 unless landscape = 'spectral' (the noise is turned toward "
                              "its escape vectors p_0, q_0)")

    def uses_landscape(self, static):
        return (static.get("noise_coherence") or 0.0) > 0

    def _factors(self, model, gen, shape, dtype):
        """(A, B, sigma/sqrt(mn)): the draw is the scale times A B^T."""
        m, n = shape
        rank = dict(model.static)["noise_rank"]
        A = gen.normal((m, rank), dtype, 0)
        B = gen.normal((n, rank), dtype, 1)
        return A, B, (scalar(model, "sigma", dtype) / np.sqrt(m * n)).astype(dtype)

    def sample(self, model, gen, shape, dtype):
        A, B, c = self._factors(model, gen, shape, dtype)
        return c * jnp.matmul(A, B.T, precision=jax.lax.Precision.HIGHEST)

    def gradient_noise(self, model, gen, landscape, params, grad):
        """The coherent draw R_L Xi R_R^T (module docstring), from the same A, B as sample."""
        A, B, scale = self._factors(model, gen, params.shape, params.dtype)
        coherence = dict(model.static)["noise_coherence"]
        p, q = landscape.escape_vectors(0)
        A = raise_overlap(A, A[:, 0] / jnp.sqrt(jnp.sum(A[:, 0] ** 2)), p.astype(A.dtype),
                          coherence)
        B = raise_overlap(B, B[:, 0] / jnp.sqrt(jnp.sum(B[:, 0] ** 2)), q.astype(B.dtype),
                          coherence)
        return scale * jnp.matmul(A, B.T, precision=jax.lax.Precision.HIGHEST)

    def entry_std(self, config) -> float:
        return float(config.sigma or 0.0) * math.sqrt(config.noise_rank / (config.m * config.n))

    def e_variance(self, config, row_weights):
        sigma = float(config.sigma or 0.0)
        m, n, k = config.m, config.n, config.noise_rank
        plain = square(sigma) * k / (m * n)
        c = config.noise_coherence or 0.0
        if c == 0:
            return (plain,) * config.escape_rank
        # E_0 gets the rotated first component (module docstring); the other escape
        # directions are not exact here (the rotation also moves p_0's neighbours): the
        # plain value is kept for them as an approximation.
        e0 = (square(sigma) * _mean_max_overlap(m, c) * _mean_max_overlap(n, c)
              + square(sigma) * (k - 1) / (m * n))
        return (e0,) + (plain,) * (config.escape_rank - 1)

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
