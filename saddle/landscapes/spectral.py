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

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..fields import choice_field, float_field
from ..reduce import tree_sum
from ._spec import LandscapeSpec, register
from .base import AbstractLandscape
from .spectra import bulk_quantiles, haar_orthogonal, partial_rotation
from .structured import StructuredBasis, structured_basis

__all__ = ["SpectralSaddle", "SpectralSpec", "landscape_arrays", "BULKS", "BASES"]

BULKS = ("constant", "uniform", "marchenko_pastur", "power_law")
BASES = ("coherent", "incoherent", "partial", "structured")
SADDLE_POINTS = ("zero", "random")

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
        P, Q: dense orthogonal bases (m, m) and (n, n), or None.
        w_star: (m, n) saddle point W*.
        escape_rank: r (static).
        basis: a :class:`~saddle.landscapes.structured.StructuredBasis` (fast transforms)
            in place of dense P and Q, or None. With neither, the basis is the identity
            (coherent).
    """

    bulk: jax.Array
    bulk_scale: jax.Array
    gamma: jax.Array
    quartic: jax.Array
    P: jax.Array | None
    Q: jax.Array | None
    w_star: jax.Array
    escape_rank: int = field(metadata=dict(static=True))
    basis: StructuredBasis | None = None

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
        return self.P is None and self.basis is None

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
        if self.basis is not None:
            return self.basis.to_eigenbasis(X)
        if self.coherent:
            return X
        return jnp.matmul(jnp.matmul(self.P.T, X, precision=_HI), self.Q, precision=_HI)

    def from_eigenbasis(self, C: jax.Array) -> jax.Array:
        """X = P C Q^T."""
        if self.basis is not None:
            return self.basis.from_eigenbasis(C)
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

    def value(self, W: jax.Array) -> jax.Array:
        X = W - self.w_star
        C = self.to_eigenbasis(X)
        sq = tree_sum(X * X)
        return 0.5 * tree_sum(self.eigenvalues() * C * C) + 0.25 * self.quartic * sq * sq

    # --- the escape subspace -------------------------------------------------------------
    def direction_coordinates(self, X: jax.Array) -> jax.Array:
        """<p_i q_i^T, X> for i < r: the escape coordinates of a displacement X (linear)."""
        r = self.escape_rank
        if self.basis is not None:
            return self.basis.direction_coordinates(X, r)
        if self.coherent:
            idx = jnp.arange(r)
            return X[idx, idx]
        Y = jnp.matmul(self.P[:, :r].T, X, precision=_HI)  # (r, n)
        return tree_sum(Y * self.Q[:, :r].T, axis=1)

    def escape_direction(self, i: int) -> jax.Array:
        m, n = self.shape
        if self.basis is not None:
            return self.basis.escape_direction(i, dtype=self.bulk.dtype)
        if self.coherent:
            return jnp.zeros((m, n), self.bulk.dtype).at[i, i].set(1)
        return jnp.outer(self.P[:, i], self.Q[:, i])

    def escape_vectors(self, i: int) -> tuple[jax.Array, jax.Array]:
        """(p_i, q_i): the unit singular vectors of E_i = p_i q_i^T, shapes (m,) and (n,)."""
        m, n = self.shape
        dtype = self.bulk.dtype
        if self.basis is not None:
            return self.basis.P.column(i, dtype), self.basis.Q.column(i, dtype)
        if self.coherent:
            return (jnp.zeros((m,), dtype).at[i].set(1), jnp.zeros((n,), dtype).at[i].set(1))
        return self.P[:, i], self.Q[:, i]

    def escape_projection(self, W: jax.Array) -> jax.Array:
        a = self.escape_coordinates(W)
        r = self.escape_rank
        idx = jnp.arange(r)
        if self.basis is not None:
            return self.basis.from_eigenbasis(jnp.zeros(self.shape, W.dtype).at[idx, idx].set(a))
        if self.coherent:
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
            P, Q = self.basis.dense() if self.basis is not None else (self.P, self.Q)
            K = np.kron(np.asarray(P, np.float64), np.asarray(Q, np.float64))
            H = (K * lam) @ K.T
        if W is not None:
            x = (np.asarray(W, np.float64) - np.asarray(self.w_star, np.float64)).reshape(-1)
            kappa = float(self.quartic)
            H = H + kappa * (np.dot(x, x) * np.eye(D) + 2 * np.outer(x, x))
        return H


# --------------------------------------------------------------------------------------
# The family's spec: its fields, its shared arrays and how the engine builds it.

_LS = "landscape"
_FIELDS = (
    float_field("gamma", 0.1, "flatness: escape modes have Hessian eigenvalue -gamma", _LS, lo=0),
    choice_field("bulk", "constant", BULKS, "bulk Hessian spectrum", _LS),
    float_field("bulk_scale", 1.0, "bulk eigenvalue size lambda (the largest for uniform)", _LS,
                lo=0, lo_open=True),
    float_field("bulk_ratio", 0.1, "uniform: lambda_lo/lambda_hi; marchenko_pastur: aspect "
                "ratio q", _LS, lo=0, hi=1, lo_open=True),
    float_field("bulk_tail", 2.0, "power_law: tail exponent alpha of the bulk density", _LS,
                lo=0, lo_open=True),
    float_field("quartic", 0.0, "quartic cap kappa: + kappa/4 ||W - W*||_F^4", _LS, lo=0),
    choice_field("basis", "incoherent", BASES, "eigenbasis P, Q against the coordinate axes",
                 _LS),
    float_field("mixing", 0.5, "partial basis: rotation strength in [0, 1] (0 coherent, 1 ~ "
                "Haar)", _LS, lo=0, hi=1),
    choice_field("saddle_point", "zero", SADDLE_POINTS, "where the saddle W* sits", _LS),
    float_field("saddle_point_scale", 1.0, "random W*: entries N(0, scale^2 / n)", _LS, lo=0),
)

# Fields whose meaning depends on another field's value; elsewhere they normalize to None.
_CONDITIONAL = {
    "bulk_ratio": lambda v: v["bulk"] in ("uniform", "marchenko_pastur"),
    "bulk_tail": lambda v: v["bulk"] == "power_law",
    "mixing": lambda v: v["basis"] == "partial",
    "saddle_point_scale": lambda v: v["saddle_point"] == "random",
}

# Independent NumPy streams per landscape ingredient, so that changing one option (say the
# bulk spectrum) leaves the bases and W* of the same landscape seed untouched.
_STREAM_P, _STREAM_Q, _STREAM_BULK, _STREAM_WSTAR = 1, 2, 3, 4


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


def landscape_arrays(config) -> dict[str, np.ndarray | None]:
    """The float64 arrays of a config's spectral saddle: unit bulk, P, Q and W*.

    These depend only on (m, n, escape_rank, bulk, bulk_ratio, bulk_tail, basis, mixing,
    saddle_point, saddle_point_scale, landscape_seed); the scalars gamma, bulk_scale and
    quartic are applied separately, so a batch of configs differing in those shares them.
    """
    m, n, r = config.m, config.n, config.escape_rank
    seed = config.landscape_seed
    basis = None

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
    elif config.basis == "structured":
        P = Q = None
        basis = structured_basis(_rng(seed, _STREAM_P), m, n)
    else:
        P = partial_rotation(_rng(seed, _STREAM_P), m, config.mixing)
        Q = partial_rotation(_rng(seed, _STREAM_Q), n, config.mixing)

    if config.saddle_point == "zero":
        w_star = np.zeros((m, n))
    else:
        w_star = _rng(seed, _STREAM_WSTAR).standard_normal((m, n)) * (
            config.saddle_point_scale / np.sqrt(n)
        )
    return dict(bulk=bulk, P=P, Q=Q, w_star=w_star, basis=basis)


@register
class SpectralSpec(LandscapeSpec):
    name = "spectral"
    is_default = True
    summary = "quadratic saddle with a chosen Hessian spectrum and eigenbasis"
    fields = _FIELDS
    traced = ("gamma", "bulk_scale", "quartic")

    def applies(self, field, values):
        rule = _CONDITIONAL.get(field)
        return rule is None or rule(values)

    def static_key(self, config) -> tuple:
        # Incoherent and partial bases compile alike: both are dense P and Q.
        kind = config.basis if config.basis in ("coherent", "structured") else "dense"
        return (("basis", kind),)

    def shared_arrays(self, config):
        return landscape_arrays(config)

    def build(self, static, arrays, s, escape_rank):
        dense = static["basis"] == "dense"
        return SpectralSaddle(
            bulk=arrays["bulk"], bulk_scale=s["bulk_scale"], gamma=s["gamma"],
            quartic=s["quartic"], P=arrays["P"] if dense else None,
            Q=arrays["Q"] if dense else None, w_star=arrays["w_star"],
            escape_rank=escape_rank,
            basis=arrays["basis"] if static["basis"] == "structured" else None,
        )

    def describe(self, config) -> str:
        return (f"{config.m}x{config.n} spectral saddle (D = {config.D}, r = "
                f"{config.escape_rank}, gamma = {config.gamma}, {config.basis} basis)")

    def dense_basis(self, config) -> bool:
        return config.basis in ("incoherent", "partial")

    def loss_depth(self, values) -> float:
        """gamma^2/(4 kappa), infinite for kappa = 0 (and 0 for gamma = 0)."""
        gamma, quartic = values["gamma"], values["quartic"]
        if gamma == 0:
            return 0.0
        if quartic == 0:
            return math.inf
        try:
            return gamma**2 / (4 * quartic)
        except OverflowError:
            return math.inf

    def check(self, values):
        if values["escape"] == "loss" and not values["loss_drop"] < self.loss_depth(values):
            depth = self.loss_depth(values)
            raise ConfigError(
                "loss_drop",
                values["loss_drop"],
                f"a number in (0, {depth:.6g}): the landscape's depth gamma^2/(4 quartic)"
                if math.isfinite(depth) and depth > 0
                else "a reachable drop; with gamma = 0 the loss never falls below f(W*), "
                "use escape = 'projection'",
            )

    def escape_loss_scale(self, config) -> float:
        """gamma r^2/2 + kappa r^4/4: the size of each term of f - f(W*) = f at the radius
        along the escape direction (f(W*) = 0)."""
        r2 = config.radius**2
        return 0.5 * config.gamma * r2 + 0.25 * config.quartic * r2 * r2

    def seed_matters(self, config) -> bool:
        """The seed draws the bases, the bulk's placement and a random W*: with a coherent
        basis, a constant bulk and W* = 0 there is nothing to draw. With W* = 0, an
        equivariant optimizer and rotation-invariant noise, the draws differ but the law of a
        run does not (the bulk's eigenvalues are fixed quantiles; only P and Q are drawn, and
        they cannot matter): the draws are then one landscape in law."""
        from ..registry import NOISES, OPTIMIZERS

        if config.saddle_point != "zero":
            return True
        if OPTIMIZERS[config.optimizer].equivariant and NOISES[config.noise].rotation_invariant:
            return False
        return not (config.basis == "coherent" and config.bulk == "constant")

    def curvature_scale(self, config) -> float:
        """bulk_scale: the bulk's (largest, for uniform; about mean otherwise) eigenvalue."""
        return config.bulk_scale

    def mean_squared_curvature(self, config) -> float:
        bulk = np.asarray(landscape_arrays(config)["bulk"], float)
        try:
            return float(np.mean(bulk**2)) * config.bulk_scale**2
        except OverflowError:
            return math.inf

    def numba_unsupported(self, values):
        return None if values["basis"] == "coherent" else "numba runs the coherent basis only"
