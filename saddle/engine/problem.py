"""The problem a run solves: its landscape, noise model and optimizer, built from specs.

The arrays every run of a batch shares (a landscape draw, noise row scales) are built once
on the host and cached; :func:`build_problem` then assembles the JAX objects from those
arrays and one run's (possibly traced) scalars, inside the compiled program.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from ..config import Config
from ..landscapes import AbstractLandscape, cast_array
from ..noise import NoiseModel, noise_model
from ..numerics import dtype_of
from .structure import Structure, shared_arrays_key

__all__ = ["Problem", "build_problem", "shared_arrays"]


class Problem(NamedTuple):
    """One run's landscape, noise model and optimizer, and its noise generator's name."""

    landscape: AbstractLandscape
    noise: NoiseModel
    optimizer: optax.GradientTransformation
    rng: str


def build_problem(structure: Structure, shared: dict, s: dict[str, jax.Array]) -> Problem:
    """The problem of a structure, from the batch's shared arrays and one run's scalars."""
    landscape, noise, optimizer = structure.components
    L = landscape.build(dict(structure.landscape_static), shared["landscape"], s,
                        structure.escape_rank)
    Xi = noise_model(noise, structure.noise_static, s, shared["noise"])
    opt = optimizer.build(dict(structure.optimizer_static), s)
    return Problem(L, Xi, opt, structure.rng)


_SHARED_CACHE: dict[tuple, dict[str, Any]] = {}
_SHARED_CACHE_SIZE = 2  # landscapes kept; each holds O(mn + m^2 + n^2) numbers


def shared_arrays(config: Config) -> dict[str, Any]:
    """Arrays shared by every run of a batch: ``{"landscape": {...}, "noise": {...}}``.

    The last few are cached per process (keyed by :func:`shared_arrays_key` and the default
    device): a sweep at D = 1.7e7 spent about 1 s per batch rebuilding the same 16.8M-entry
    landscape, as long as the GPU's compute for the batch.
    """
    key = (shared_arrays_key(config), str(jax.config.jax_default_device))
    hit = _SHARED_CACHE.pop(key, None)
    if hit is None:
        hit = _build_shared_arrays(config)
    _SHARED_CACHE[key] = hit  # most recent last
    while len(_SHARED_CACHE) > _SHARED_CACHE_SIZE:
        _SHARED_CACHE.pop(next(iter(_SHARED_CACHE)))
    return hit


def _build_shared_arrays(config: Config) -> dict[str, Any]:
    dtype = dtype_of(config.dtype)
    landscape, noise, _ = config.components()

    def cast(arrays):
        return {k: cast_array(v, dtype) for k, v in arrays.items()}

    return {"landscape": cast(landscape.shared_arrays(config)),
            "noise": cast(noise.shared_arrays(config))}
