"""The abstract landscape interface every saddle family implements."""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from ..reduce import tree_sum

__all__ = ["AbstractLandscape"]


class AbstractLandscape(abc.ABC):
    """A loss f(W) on R^{m x n} with a saddle point W* and an escape subspace.

    Concrete landscapes are frozen dataclasses registered as JAX pytrees, so they pass
    through ``jit`` and ``vmap`` as ordinary arguments. They implement the abstract methods
    below; everything else is derived here and is not overridden.
    """

    shape: tuple[int, int]
    escape_rank: int

    @abc.abstractmethod
    def value_and_grad(self, W: jax.Array) -> tuple[jax.Array, jax.Array]:
        """f(W) and its gradient, sharing the work between them."""

    @abc.abstractmethod
    def escape_coordinates(self, W: jax.Array) -> jax.Array:
        """The escape coordinates a_i = <E_i, W - W*>, shape (escape_rank,)."""

    @abc.abstractmethod
    def escape_direction(self, i: int) -> jax.Array:
        """The i-th unit escape direction E_i (an m x n matrix of Frobenius norm 1)."""

    @property
    @abc.abstractmethod
    def saddle_point(self) -> jax.Array:
        """W*."""

    # --- derived -------------------------------------------------------------------------
    def value(self, W: jax.Array) -> jax.Array:
        return self.value_and_grad(W)[0]

    def grad(self, W: jax.Array) -> jax.Array:
        return self.value_and_grad(W)[1]

    def escape_distance(self, W: jax.Array) -> jax.Array:
        """||Pi_esc(W - W*)||_F, the quantity the projection criterion compares to R."""
        a = self.escape_coordinates(W)
        return jnp.sqrt(tree_sum(a * a))

    def escape_projection(self, W: jax.Array) -> jax.Array:
        """Pi_esc(W - W*) = sum_i a_i E_i, an m x n matrix."""
        a = self.escape_coordinates(W)
        return sum(a[i] * self.escape_direction(i) for i in range(self.escape_rank))

    def orthogonal_drift(self, W: jax.Array) -> jax.Array:
        """||Pi_perp(W - W*)||_F: how far the iterate has strayed outside the escape subspace."""
        X = W - self.saddle_point
        a = self.escape_coordinates(W)
        return jnp.sqrt(jnp.maximum(tree_sum(X * X) - tree_sum(a * a), 0.0))
