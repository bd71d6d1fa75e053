"""Saddle landscapes: the spectral saddle family and its builder from a config."""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..numerics import dtype_of
from .base import AbstractLandscape
from .spectra import bulk_quantiles, haar_orthogonal, marchenko_pastur_quantiles, partial_rotation
from .spectral import SpectralSaddle

__all__ = [
    "AbstractLandscape",
    "SpectralSaddle",
    "make_landscape",
    "landscape_arrays",
    "bulk_quantiles",
    "marchenko_pastur_quantiles",
    "haar_orthogonal",
    "partial_rotation",
    "coherence",
]

# Independent NumPy streams per landscape ingredient, so that changing one option (say the
# bulk spectrum) leaves the bases and W* of the same landscape seed untouched.
_STREAM_P, _STREAM_Q, _STREAM_BULK, _STREAM_WSTAR = 1, 2, 3, 4


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


def landscape_arrays(config: Config) -> dict[str, np.ndarray | None]:
    """The float64 arrays of a config's landscape: unit bulk, P, Q and W*.

    These depend only on (m, n, escape_rank, bulk, bulk_ratio, bulk_tail, basis, mixing,
    saddle_point, saddle_point_scale, landscape_seed); the scalars gamma, bulk_scale and
    quartic are applied separately, so a batch of configs differing in those shares them.
    """
    m, n, r = config.m, config.n, config.escape_rank
    seed = config.landscape_seed

    count = m * n - r
    vals = bulk_quantiles(config.bulk, count, config.bulk_ratio, config.bulk_tail)
    vals = _rng(seed, _STREAM_BULK).permutation(vals)
    escape_mask = np.zeros((m, n), bool)
    escape_mask[np.arange(r), np.arange(r)] = True
    bulk = np.zeros((m, n))
    bulk[~escape_mask] = vals

    if config.basis == "coherent":
        P = Q = None
    elif config.basis == "incoherent":
        P = haar_orthogonal(_rng(seed, _STREAM_P), m)
        Q = haar_orthogonal(_rng(seed, _STREAM_Q), n)
    else:
        P = partial_rotation(_rng(seed, _STREAM_P), m, config.mixing)
        Q = partial_rotation(_rng(seed, _STREAM_Q), n, config.mixing)

    if config.saddle_point == "zero":
        w_star = np.zeros((m, n))
    else:
        w_star = _rng(seed, _STREAM_WSTAR).standard_normal((m, n)) * (
            config.saddle_point_scale / np.sqrt(n)
        )
    return dict(bulk=bulk, P=P, Q=Q, w_star=w_star)


def make_landscape(config: Config) -> SpectralSaddle:
    """The spectral saddle a config describes, in the config's dtype."""
    import jax.numpy as jnp

    dtype = dtype_of(config.dtype)
    arrs = landscape_arrays(config)

    def cast(x):
        return None if x is None else jnp.asarray(x, dtype)

    return SpectralSaddle(
        bulk=cast(arrs["bulk"]),
        bulk_scale=jnp.asarray(config.bulk_scale, dtype),
        gamma=jnp.asarray(config.gamma, dtype),
        quartic=jnp.asarray(config.quartic, dtype),
        P=cast(arrs["P"]),
        Q=cast(arrs["Q"]),
        w_star=cast(arrs["w_star"]),
        escape_rank=config.escape_rank,
    )


def coherence(landscape: SpectralSaddle) -> float:
    """sqrt(D) * max |E_0|: 1 for a maximally spread escape direction, sqrt(D) for an axis.

    The escape direction p_0 q_0^T has unit Frobenius norm; its largest entry is 1 when it
    is a coordinate axis (coherent) and about sqrt(log m log n / (m n)) when it is Haar.
    """
    m, n = landscape.shape
    E = np.asarray(landscape.escape_direction(0))
    return float(np.sqrt(m * n) * np.abs(E).max())
