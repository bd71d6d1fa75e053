r"""Gradient noise models: the stochastic gradient is G = grad f(W) + Xi, fresh Xi each step.

| model | Xi | scale of sigma |
|---|---|---|
| ``none`` | 0 | - |
| ``isotropic`` | sigma Z, Z iid N(0, 1) | per-entry std; ||Xi||_2 ~ sigma (sqrt m + sqrt n) |
| ``opnorm`` | sigma/(sqrt m + sqrt n) Z | ||Xi||_2 ~ sigma whatever the shape |
| ``lowrank`` | sigma/sqrt(mn) A B^T, A (m x k), B (n x k) iid N(0, 1) | each of the k components has ||.||_2 ~ sigma |
| ``kronecker`` | sigma diag(s) Z, s_i^2 ∝ (i + 1)^(-zipf), mean s_i^2 = 1 | Zipf-like row variances, mean per-entry variance sigma^2 |
| ``student_t`` | sigma T, T iid Student-t(df), scaled to unit variance when df > 2 | per-entry std (df > 2) |

Which model holds decides whether a "sufficient spectral gap" is itself D-dependent: under
``isotropic`` noise the operator norm grows like sqrt(m) + sqrt(n); under ``opnorm`` and
``lowrank`` it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from . import prng
from .config import Config

__all__ = ["NoiseModel", "make_noise", "kronecker_row_scales", "Generator", "generator"]


class Generator:
    """Standard normals (and Student-t draws) for one run at one step.

    ``rng = "pcg3d"``: the counter-based hash of :mod:`saddle.prng`, keyed by a 32-bit run
    key; sub-stream j of the step uses the step counter ``step * 4 + j``.
    ``rng = "threefry"``: ``jax.random`` with ``fold_in(key, step)`` and then ``j``.
    """

    def __init__(self, rng: str, key, step):
        self.rng, self.key, self.step = rng, key, step

    def _jax_key(self, j: int):
        if self.rng == "threefry":
            base = jax.random.fold_in(self.key, self.step)
        else:
            base = jax.random.fold_in(jax.random.key(self.key), self.step)
        return jax.random.fold_in(base, j)

    def normal(self, shape, dtype, j: int = 0) -> jax.Array:
        if self.rng == "pcg3d":
            step = jnp.asarray(self.step).astype(jnp.uint32) * jnp.uint32(4) + jnp.uint32(j)
            return prng.normal(self.key, step, shape, dtype)
        return jax.random.normal(self._jax_key(j), shape, dtype)

    def student_t(self, df, shape, dtype) -> jax.Array:
        # Gamma variates have no counter-based form here; both generators use jax.random.
        return jax.random.t(self._jax_key(3), df, shape, dtype)


def generator(rng: str, key, step) -> Generator:
    return Generator(rng, key, step)


def kronecker_row_scales(m: int, zipf: float) -> np.ndarray:
    """Row standard deviations s_i with s_i^2 ∝ (i + 1)^(-zipf) and mean s_i^2 = 1."""
    var = (np.arange(1, m + 1, dtype=np.float64)) ** (-zipf)
    return np.sqrt(var / var.mean())


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class NoiseModel:
    """A noise model as a pytree: ``kind`` and ``rank`` are static, the scales are data.

    ``sigma`` and ``df`` may be batched (one value per run) under ``vmap``.
    """

    sigma: jax.Array
    df: jax.Array
    row_scales: jax.Array | None
    kind: str = field(metadata=dict(static=True))
    rank: int = field(default=1, metadata=dict(static=True))

    def sample(self, gen: Generator, shape: tuple[int, int], dtype) -> jax.Array:
        """One draw of Xi with the given shape and dtype from a run's step generator."""
        m, n = shape
        sigma = self.sigma.astype(dtype)
        if self.kind == "none":
            return jnp.zeros(shape, dtype)
        if self.kind == "isotropic":
            return sigma * gen.normal(shape, dtype)
        if self.kind == "opnorm":
            c = (sigma / (np.sqrt(m) + np.sqrt(n))).astype(dtype)
            return c * gen.normal(shape, dtype)
        if self.kind == "lowrank":
            A = gen.normal((m, self.rank), dtype, 0)
            B = gen.normal((n, self.rank), dtype, 1)
            c = (sigma / np.sqrt(m * n)).astype(dtype)
            return c * jnp.matmul(A, B.T, precision=jax.lax.Precision.HIGHEST)
        if self.kind == "kronecker":
            Z = gen.normal(shape, dtype)
            return (sigma * self.row_scales.astype(dtype))[:, None] * Z
        if self.kind == "student_t":
            df = self.df.astype(dtype)
            T = gen.student_t(df, shape, dtype)
            unit = jnp.where(df > 2, jnp.sqrt(jnp.maximum(df - 2, 0) / df), 1.0).astype(dtype)
            return (sigma * unit) * T
        raise ValueError(f"noise: unknown kind {self.kind!r}")


def make_noise(config: Config) -> NoiseModel:
    """The noise model a config describes (scales in the config's dtype)."""
    from .numerics import dtype_of

    dtype = dtype_of(config.dtype)
    sigma = 0.0 if config.sigma is None else config.sigma
    df = 0.0 if config.noise_df is None else config.noise_df
    rows = None
    if config.noise == "kronecker":
        rows = jnp.asarray(kronecker_row_scales(config.m, config.noise_zipf), dtype)
    return NoiseModel(
        sigma=jnp.asarray(sigma, dtype),
        df=jnp.asarray(df, dtype),
        row_scales=rows,
        kind=config.noise,
        rank=config.noise_rank or 1,
    )
