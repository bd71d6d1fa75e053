"""The landscape interface: exactly what the engine calls, for any parameter pytree."""

from __future__ import annotations

import abc
from functools import reduce

import jax
import jax.numpy as jnp

from ..reduce import tree_dot, tree_sum

__all__ = ["AbstractLandscape"]


class AbstractLandscape(abc.ABC):
    """A loss f(W) with a saddle point W* and an escape subspace spanned by r orthonormal
    directions E_0, ..., E_{r-1}. W may be one matrix or a pytree of them (a network's
    weights); E_i and W* have W's structure.

    Concrete landscapes are frozen dataclasses registered as JAX pytrees, so they pass
    through ``jit`` and ``vmap`` as ordinary arguments. The engine calls the four abstract
    members; everything else is derived here.
    """

    escape_rank: int

    @abc.abstractmethod
    def value_and_grad_with_coordinates(self, W) -> tuple[jax.Array, object, jax.Array]:
        """(f(W), grad f(W), a(W)): the loss, its gradient (W's structure) and the escape
        coordinates a_i = <E_i, W - W*>, shape (escape_rank,), sharing the work."""

    @abc.abstractmethod
    def direction_coordinates(self, X) -> jax.Array:
        """<E_i, X> for i < r: the escape coordinates of a displacement X (linear in X)."""

    @abc.abstractmethod
    def escape_direction(self, i: int):
        """The i-th unit escape direction E_i (Frobenius norm 1 over all leaves)."""

    @property
    @abc.abstractmethod
    def saddle_point(self):
        """W*."""

    def alignment(self, W) -> jax.Array:
        """How far W has learned the landscape's first teacher mode: 0 on the plateau, 1 once
        learned (the ``alignment`` escape criterion). Only families whose spec sets
        ``alignment = True`` define it; config validation refuses the criterion elsewhere."""
        raise NotImplementedError(f"{type(self).__name__} defines no alignment")

    # --- derived -------------------------------------------------------------------------
    def value_and_grad(self, W):
        value, grad, _ = self.value_and_grad_with_coordinates(W)
        return value, grad

    def value(self, W) -> jax.Array:
        return self.value_and_grad(W)[0]

    def grad(self, W):
        return self.value_and_grad(W)[1]

    def escape_coordinates(self, W) -> jax.Array:
        """a_i = <E_i, W - W*>."""
        return self.direction_coordinates(jax.tree.map(jnp.subtract, W, self.saddle_point))

    def escape_distance(self, W) -> jax.Array:
        """||Pi_esc(W - W*)||_F, the quantity the projection criterion compares to R."""
        a = self.escape_coordinates(W)
        return jnp.sqrt(tree_sum(a * a))

    def escape_projection(self, W):
        """Pi_esc(W - W*) = sum_i a_i E_i."""
        a = self.escape_coordinates(W)
        parts = [jax.tree.map(lambda e, i=i: a[i] * e, self.escape_direction(i))
                 for i in range(self.escape_rank)]
        return reduce(lambda x, y: jax.tree.map(jnp.add, x, y), parts)

    def orthogonal_drift(self, W) -> jax.Array:
        """||Pi_perp(W - W*)||_F: how far the iterate has strayed outside the escape subspace."""
        X = jax.tree.map(jnp.subtract, W, self.saddle_point)
        a = self.escape_coordinates(W)
        return jnp.sqrt(jnp.maximum(tree_dot(X, X) - tree_sum(a * a), 0.0))
