r"""The spectral saddle: a quadratic saddle with a chosen Hessian spectrum and eigenbasis.

.. math::

    f(W) = \tfrac12 \sum_{ij} \Lambda_{ij} \langle p_i q_j^\top, W - W^*\rangle^2
           + \tfrac{\kappa}{4} \lVert W - W^* \rVert_F^4

with P = [p_i] in O(m), Q = [q_j] in O(n). The Hessian at W* has eigenvectors p_i q_j^T and
eigenvalues Lambda_ij. The r escape modes sit at (i, i), i < r, with Lambda_ii = -gamma; all
other entries form the bulk. Everything goes through C = P^T (W - W*) Q, so one value and
gradient costs O(mn(m + n)) with dense bases and O(mn) with the coherent (identity) basis.
No D x D matrix is ever formed except by :meth:`SpectralSaddle.dense_hessian`, which exists
for verification at small D.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..reduce import tree_sum
from .base import AbstractLandscape

__all__ = ["SpectralSaddle"]

_HI = jax.lax.Precision.HIGHEST


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class SpectralSaddle(AbstractLandscape):
    """A spectral saddle. Build it with :func:`saddle.landscapes.make_landscape`.

    Attributes:
        bulk: (m, n) unit bulk eigenvalues; zero at the escape positions (i, i), i < r.
        bulk_scale: scalar lambda multiplying ``bulk``.
        gamma: scalar flatness; the escape eigenvalue is -gamma.
        quartic: scalar kappa of the quartic cap.
        P, Q: orthogonal bases (m, m) and (n, n), or None for the coherent (identity) basis.
        w_star: (m, n) saddle point W*.
        escape_rank: r (static).
    """

    bulk: jax.Array
    bulk_scale: jax.Array
    gamma: jax.Array
    quartic: jax.Array
    P: jax.Array | None
    Q: jax.Array | None
    w_star: jax.Array
    escape_rank: int = field(metadata=dict(static=True))

    def __post_init__(self):
        m, n = self.bulk.shape
        if not 1 <= self.escape_rank <= min(m, n):
            raise ValueError(f"escape_rank: got {self.escape_rank}; allowed: 1..{min(m, n)}")
        if (self.P is None) != (self.Q is None):
            raise ValueError("P and Q: both or neither must be given")
        if self.P is not None and (self.P.shape != (m, m) or self.Q.shape != (n, n)):
            raise ValueError(f"P, Q: shapes {self.P.shape}, {self.Q.shape} do not fit {(m, n)}")
        if self.w_star.shape != (m, n):
            raise ValueError(f"w_star: shape {self.w_star.shape}; allowed: {(m, n)}")

    # --- structure -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.bulk.shape)

    @property
    def coherent(self) -> bool:
        return self.P is None

    @property
    def saddle_point(self) -> jax.Array:
        return self.w_star

    def eigenvalues(self) -> jax.Array:
        """Lambda as an (m, n) array: the Hessian's eigenvalues at W*."""
        lam = self.bulk_scale * self.bulk
        idx = jnp.arange(self.escape_rank)
        return lam.at[idx, idx].set(-self.gamma)

    # --- rotations -----------------------------------------------------------------------
    def to_eigenbasis(self, X: jax.Array) -> jax.Array:
        """C = P^T X Q."""
        if self.coherent:
            return X
        return jnp.matmul(jnp.matmul(self.P.T, X, precision=_HI), self.Q, precision=_HI)

    def from_eigenbasis(self, C: jax.Array) -> jax.Array:
        """X = P C Q^T."""
        if self.coherent:
            return C
        return jnp.matmul(jnp.matmul(self.P, C, precision=_HI), self.Q.T, precision=_HI)

    # --- value and gradient --------------------------------------------------------------
    def value_and_grad_with_coordinates(self, W: jax.Array):
        """(f(W), grad f(W), a): the escape coordinates a come free from C's diagonal."""
        X = W - self.w_star
        C = self.to_eigenbasis(X)
        idx = jnp.arange(self.escape_rank)
        a = C[idx, idx]
        GC = (self.bulk_scale * self.bulk) * C
        GC = GC.at[idx, idx].add(-self.gamma * a)
        sq = tree_sum(X * X)
        value = 0.5 * tree_sum(GC * C) + 0.25 * self.quartic * sq * sq
        grad = self.from_eigenbasis(GC) + (self.quartic * sq) * X
        return value, grad, a

    def value_and_grad(self, W: jax.Array):
        value, grad, _ = self.value_and_grad_with_coordinates(W)
        return value, grad

    def value(self, W: jax.Array) -> jax.Array:
        X = W - self.w_star
        C = self.to_eigenbasis(X)
        sq = tree_sum(X * X)
        return 0.5 * tree_sum(self.eigenvalues() * C * C) + 0.25 * self.quartic * sq * sq

    # --- the escape subspace -------------------------------------------------------------
    def escape_coordinates(self, W: jax.Array) -> jax.Array:
        return self.direction_coordinates(W - self.w_star)

    def direction_coordinates(self, X: jax.Array) -> jax.Array:
        """<p_i q_i^T, X> for i < r: the escape coordinates of a displacement X (linear)."""
        r = self.escape_rank
        if self.coherent:
            idx = jnp.arange(r)
            return X[idx, idx]
        Y = jnp.matmul(self.P[:, :r].T, X, precision=_HI)  # (r, n)
        return tree_sum(Y * self.Q[:, :r].T, axis=1)

    def escape_direction(self, i: int) -> jax.Array:
        m, n = self.shape
        if self.coherent:
            return jnp.zeros((m, n), self.bulk.dtype).at[i, i].set(1)
        return jnp.outer(self.P[:, i], self.Q[:, i])

    def escape_projection(self, W: jax.Array) -> jax.Array:
        a = self.escape_coordinates(W)
        r = self.escape_rank
        if self.coherent:
            idx = jnp.arange(r)
            return jnp.zeros(self.shape, W.dtype).at[idx, idx].set(a)
        return jnp.matmul(self.P[:, :r] * a, self.Q[:, :r].T, precision=_HI)

    # --- verification ---------------------------------------------------------------------
    def dense_hessian(self, W: jax.Array | None = None) -> np.ndarray:
        """The D x D Hessian at W (default W*), as float64 NumPy, for small-D checks only.

        Uses row-major vectorization: vec(P C Q^T) = (P kron Q) vec(C), so the quadratic
        part is K diag(vec Lambda) K^T with K = P kron Q. The quartic cap adds
        kappa (||X||^2 I + 2 vec X vec X^T).
        """
        m, n = self.shape
        D = m * n
        if D > 4096:
            raise ValueError(f"dense_hessian: D = {D} is too large; allowed: D <= 4096")
        lam = np.asarray(self.eigenvalues(), np.float64).reshape(-1)
        if self.coherent:
            H = np.diag(lam)
        else:
            K = np.kron(np.asarray(self.P, np.float64), np.asarray(self.Q, np.float64))
            H = (K * lam) @ K.T
        if W is not None:
            x = (np.asarray(W, np.float64) - np.asarray(self.w_star, np.float64)).reshape(-1)
            kappa = float(self.quartic)
            H = H + kappa * (np.dot(x, x) * np.eye(D) + 2 * np.outer(x, x))
        return H
