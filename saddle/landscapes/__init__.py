"""Saddle landscapes: the family interface, the registered families and the builder.

A family is one module that implements :class:`AbstractLandscape` and registers a
:class:`LandscapeSpec` in :data:`saddle.registry.LANDSCAPES`; :mod:`.spectral` is the
built-in one.
"""

from __future__ import annotations

import numpy as np

from ..numerics import dtype_of
from ..registry import LANDSCAPES, import_submodules
from ._spec import LandscapeSpec
from .base import AbstractLandscape
from .spectra import bulk_quantiles, haar_orthogonal, marchenko_pastur_quantiles, partial_rotation
from .spectral import SpectralSaddle, landscape_arrays

__all__ = [
    "AbstractLandscape",
    "LandscapeSpec",
    "SpectralSaddle",
    "make_landscape",
    "cast_array",
    "landscape_arrays",
    "bulk_quantiles",
    "marchenko_pastur_quantiles",
    "haar_orthogonal",
    "partial_rotation",
    "coherence",
]

def cast_array(x, dtype):
    """A shared landscape array in the run's dtype: float arrays are cast; None and
    structured objects (pytrees of integer index arrays) pass through."""
    import jax.numpy as jnp

    if x is None or not isinstance(x, np.ndarray):
        return x
    return jnp.asarray(x, dtype)


def make_landscape(config) -> AbstractLandscape:
    """The landscape a config describes, in the config's dtype."""
    import jax.numpy as jnp

    dtype = dtype_of(config.dtype)
    spec = LANDSCAPES[config.landscape]

    arrays = {k: cast_array(v, dtype) for k, v in spec.shared_arrays(config).items()}
    scalars = {k: jnp.asarray(getattr(config, k), dtype) for k in spec.traced}
    return spec.build(dict(spec.static_key(config)), arrays, scalars, config.escape_rank)


def coherence(landscape: SpectralSaddle) -> float:
    """sqrt(D) * max |E_0|: 1 for a maximally spread escape direction, sqrt(D) for an axis.

    The escape direction p_0 q_0^T has unit Frobenius norm; its largest entry is 1 when it
    is a coordinate axis (coherent) and about sqrt(log m log n / (m n)) when it is Haar.
    """
    m, n = landscape.shape
    E = np.asarray(landscape.escape_direction(0))
    return float(np.sqrt(m * n) * np.abs(E).max())


# Every module of this package registers its families on import: a new one is a new file.
import_submodules(__name__, __path__)
