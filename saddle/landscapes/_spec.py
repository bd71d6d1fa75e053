"""The landscape-family spec: how a config becomes a landscape the engine can run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..registry import LANDSCAPES, Component
from .base import AbstractLandscape

__all__ = ["LandscapeSpec", "register"]


class LandscapeSpec(Component):
    """A family of saddle landscapes.

    The engine builds a family's landscape in two parts: ``shared_arrays`` (float64 NumPy,
    built once per landscape draw and shared by every run of a batch; keyed by
    ``shared_key``) and ``build``, which turns those arrays (as JAX arrays), the static
    values and the per-run ``traced`` scalars into an :class:`AbstractLandscape`. Each run
    may have its own scalars: ``build`` is called under ``vmap``.
    """

    # The landscape object has ``minibatch_gradient(W, X)``: the gradient on the inputs X
    # (B, n) of a population loss over x ~ N(0, I_n) (the ``minibatch`` noise model uses it).
    minibatch: ClassVar[bool] = False
    # The landscape object defines ``alignment(W)`` (the ``alignment`` escape criterion).
    alignment: ClassVar[bool] = False

    def shared_key(self, config) -> tuple:
        """The config values the shared arrays depend on (by default every own field that
        is not traced, with the shape and the landscape seed)."""
        own = tuple(getattr(config, f) for f in self.field_names if f not in self.traced)
        return (config.m, config.n, config.escape_rank, config.landscape_seed) + own

    def shared_arrays(self, config) -> dict[str, np.ndarray | None]:
        return {}

    def build(self, static: Mapping[str, Any], arrays: Mapping[str, Any],
              s: Mapping[str, Any], escape_rank: int) -> AbstractLandscape:
        raise NotImplementedError

    def describe(self, config) -> str:
        """A one-line description of a config's landscape, for tables and progress."""
        return f"{config.m}x{config.n} {self.name} landscape (D = {self.dimension(config)})"

    def seed_matters(self, config) -> bool:
        """Whether ``landscape_seed`` changes this config's landscape (its draws are then
        distinct landscapes; otherwise they are one landscape and their runs plain seeds)."""
        return True

    def dense_basis(self, config) -> bool:
        """Whether the landscape holds dense m x m and n x n matrices (for memory estimates)."""
        return False

    def dimension(self, config) -> int:
        """D, the number of parameters."""
        return config.m * config.n

    def param_shapes(self, config) -> tuple[tuple[int, int], ...]:
        """The (rows, cols) of each parameter leaf, in the pytree's order: the learning-rate
        protocols compute an update's nominal norms over these leaves (their sizes sum to
        :meth:`dimension`)."""
        return ((config.m, config.n),)

    def minibatch_entry_std(self, config) -> float | None:
        """The per-entry standard deviation of the minibatch gradient noise at the start
        (expected over the start and the batch), where the family derives it; else None.
        SGD's matched learning rates are set from it under ``minibatch`` noise."""
        return None

    def loss_depth(self, values: Mapping[str, Any]) -> float:
        """How far below f(W*) the loss can go (for the loss escape criterion)."""
        return math.inf

    def escape_loss_scale(self, config) -> float:
        """|f - f(W*)| of a legitimate escape under the projection criterion (the run's
        divergence rule measures blow-ups against it); by default radius^2 / 2 at unit
        curvature."""
        return 0.5 * config.radius**2

    def curvature_scale(self, config) -> float:
        """A typical positive Hessian eigenvalue (the noise's loss scale divides by it)."""
        return 1.0

    def mean_squared_curvature(self, config) -> float:
        """The mean squared Hessian eigenvalue of the bulk (for nominal gradient sizes)."""
        return 0.0

    def numba_unsupported(self, values: Mapping[str, Any]) -> str | None:
        """Why the numba kernels cannot run this landscape, or None."""
        return f"numba does not run landscape {self.name!r}"


def register(spec_class: type[LandscapeSpec]) -> type[LandscapeSpec]:
    """Class decorator: register an instance of a landscape spec."""
    LANDSCAPES.register(spec_class())
    return spec_class
