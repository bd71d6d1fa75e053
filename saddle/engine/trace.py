"""Per-iterate diagnostics: what a trace row holds and how rows become arrays."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..landscapes import AbstractLandscape
from ..reduce import tree_dot, tree_sum

__all__ = ["TRACE_FIELDS", "trace_row", "rows_to_trace", "concat_traces"]

TRACE_FIELDS = (
    "escape_distance",
    "orthogonal_drift",
    "loss",
    "update_fro",
    "update_spectral",
    "escape_alignment",
    "momentum_signal",
    "momentum_noise",
    # Leakage (claim C4): how much of the step misses the escape subspace.
    "update_orthogonal",  # ||dW_perp||_F, dW_perp = dW - sum_i <dW, E_i> E_i
    "update_leakage",  # ||dW_perp||_F / ||dW||_F, in [0, 1]
    "momentum_alignment",  # |p_0^T u_1| |q_0^T v_1| = |u_1^T E_0 v_1|, (u_1, v_1) M's top pair
    "drift_spectral",  # ||X_perp||_2, X_perp = W - W* - sum_i a_i E_i (orthogonal_drift is _F)
)
# Trace files written before a field existed lack its column: readers fill it with NaN.
_EXACT_SPECTRAL = 256  # exact SVD for min(m, n) up to this; power iteration above


def _spectral_norm(A: jax.Array) -> jax.Array:
    """||A||_2: exact (SVD) for small matrices, 40 power iterations from a fixed start above
    (a deterministic lower estimate, used only for diagnostics)."""
    if min(A.shape) <= _EXACT_SPECTRAL:
        return jnp.linalg.svd(A, compute_uv=False)[0]
    v = jnp.ones((A.shape[1],), A.dtype) / np.sqrt(A.shape[1])

    def it(_, v):
        w = A.T @ (A @ v)
        return w / jnp.maximum(jnp.sqrt(tree_sum(w * w)), jnp.finfo(A.dtype).tiny)

    v = jax.lax.fori_loop(0, 40, it, v)
    Av = A @ v
    return jnp.sqrt(tree_sum(Av * Av))


def _top_singular_pair(A: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(u_1, v_1, s_1) of A: exact (SVD) for small matrices, 40 power iterations on A^T A
    from a fixed start above (as :func:`_spectral_norm`; diagnostics only)."""
    if min(A.shape) <= _EXACT_SPECTRAL:
        U, S, Vt = jnp.linalg.svd(A, full_matrices=False)
        return U[:, 0], Vt[0], S[0]
    tiny = jnp.finfo(A.dtype).tiny
    v = jnp.ones((A.shape[1],), A.dtype) / np.sqrt(A.shape[1])

    def it(_, v):
        w = A.T @ (A @ v)
        return w / jnp.maximum(jnp.sqrt(tree_sum(w * w)), tiny)

    v = jax.lax.fori_loop(0, 40, it, v)
    Av = A @ v
    s = jnp.sqrt(tree_sum(Av * Av))
    return Av / jnp.maximum(s, tiny), v, s


def _momentum_alignment(mu, E0) -> jax.Array:
    """|u_1^T E_0 v_1| for the momentum's top singular pair: |p_0^T u_1| |q_0^T v_1| when
    E_0 = p_0 q_0^T. NaN for a zero momentum or a pytree of several matrices."""
    leaves = jax.tree.leaves(mu)
    if len(leaves) != 1:
        return jnp.asarray(jnp.nan, leaves[0].dtype)
    M, E = leaves[0], jax.tree.leaves(E0)[0]
    u, v, s = _top_singular_pair(M)
    return jnp.where(s > 0, jnp.abs(u @ (E @ v)), jnp.nan)


def _tree_spectral_norm(tree) -> jax.Array:
    """The spectral norm of the block-diagonal operator a pytree of matrices forms."""
    return jnp.max(jnp.stack([_spectral_norm(x) for x in jax.tree.leaves(tree)]))


def trace_row(L: AbstractLandscape, W, W_new, mu, a, f) -> jax.Array:
    """The diagnostics of iterate W_t (see TRACE_FIELDS), one vector per run:
    the escape coordinates a, then the fields in order."""
    dtype = jax.tree.leaves(W)[0].dtype
    X = jax.tree.map(jnp.subtract, W, L.saddle_point)
    dist2 = tree_sum(a * a)
    drift = jnp.sqrt(jnp.maximum(tree_dot(X, X) - dist2, 0))
    E0 = L.escape_direction(0)
    sgn = jnp.where(a[0] < 0, -1.0, 1.0).astype(dtype)
    delta = jax.tree.map(jnp.subtract, W_new, W)
    dfro = jnp.sqrt(tree_dot(delta, delta))
    dspec = _tree_spectral_norm(delta)
    along = tree_dot(delta, E0) * sgn
    align = jnp.where(dspec > 0, along / jnp.where(dspec > 0, dspec, 1), jnp.nan)
    moved = dfro > 0
    # dW_perp formed explicitly: ||dW||^2 - sum d_i^2 cancels when dW is nearly along E_0.
    d = L.direction_coordinates(delta)
    perp = delta
    for i in range(L.escape_rank):
        Ei = E0 if i == 0 else L.escape_direction(i)
        perp = jax.tree.map(lambda x, e, c=d[i]: x - c * e, perp, Ei)
    dperp = jnp.sqrt(tree_dot(perp, perp))
    Xperp = X
    for i in range(L.escape_rank):
        Ei = E0 if i == 0 else L.escape_direction(i)
        Xperp = jax.tree.map(lambda x, e, c=a[i]: x - c * e, Xperp, Ei)
    drift_spec = _tree_spectral_norm(Xperp)
    leak = dperp / jnp.where(moved, dfro, 1)
    nan = jnp.asarray(jnp.nan, dtype)
    if mu is None:
        sig = noise = malign = nan
    else:
        proj = tree_dot(mu, E0)
        sig = jnp.abs(proj)
        noise = _tree_spectral_norm(jax.tree.map(lambda m, e: m - proj * e, mu, E0))
        malign = _momentum_alignment(mu, E0)
    row = jnp.stack(
        [
            jnp.sqrt(dist2),
            drift,
            f,
            jnp.where(moved, dfro, nan),
            jnp.where(moved, dspec, nan),
            jnp.where(moved, align, nan),
            sig,
            noise,
            jnp.where(moved, dperp, nan),
            jnp.where(moved, leak, nan),
            malign,
            drift_spec,
        ]
    ).astype(dtype)
    return jnp.concatenate([a.astype(dtype), row])


def rows_to_trace(t: np.ndarray, rows: np.ndarray, r: int) -> dict[str, np.ndarray]:
    out = {"t": t.astype(np.int64), "escape_coordinates": rows[:, :r]}
    for k, name in enumerate(TRACE_FIELDS):
        out[name] = rows[:, r + k]
    return out


def concat_traces(parts: list[dict], r: int) -> dict[str, np.ndarray]:
    if not parts:
        empty = {"t": np.zeros(0, np.int64), "escape_coordinates": np.zeros((0, r))}
        empty.update({name: np.zeros(0) for name in TRACE_FIELDS})
        return empty
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
