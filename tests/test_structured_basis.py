"""Structured (randomized DCT-II / Walsh-Hadamard) bases: orthogonality, fast apply against
the dense matrices, NumPy against JAX, the incoherence bound, determinism, and a small
spectral-saddle quadratic built on them (gradient and Hessian spectrum)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from saddle.landscapes.spectra import haar_orthogonal
from saddle.landscapes.structured import (
    AxisTransform,
    StructuredBasis,
    apply,
    apply_np,
    apply_transpose,
    apply_transpose_np,
    make_axis_transform,
    structured_basis,
)

DCT_SIZES = (1, 2, 3, 7, 16, 33, 64, 100)
HADAMARD_SIZES = (1, 2, 16, 64)
AXIS_CASES = [("dct", n) for n in DCT_SIZES] + [("hadamard", n) for n in HADAMARD_SIZES]
# (m, n, kind): "auto" mixes Hadamard (powers of two) with the DCT on the other axis.
SHAPES = [(1, 1, "dct"), (3, 7, "dct"), (16, 33, "dct"), (33, 64, "auto"), (64, 7, "auto"),
          (8, 16, "hadamard"), (16, 16, "dct")]


# Jitted entry points: eager dispatch of every small op would dominate the test time.
_to = jax.jit(lambda B, X: B.to_eigenbasis(X))
_from = jax.jit(lambda B, X: B.from_eigenbasis(X))
_apply = jax.jit(apply, static_argnames="axis")
_apply_t = jax.jit(apply_transpose, static_argnames="axis")
_escape = jax.jit(lambda B, i, j: B.escape_direction(i, j))


def _rng(seed=0):
    return np.random.default_rng(seed)


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II written out: T_kj = sqrt(c_k / n) cos(pi k (2j + 1) / 2n)."""
    k, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    T = np.sqrt(2.0 / n) * np.cos(np.pi * k * (2 * j + 1) / (2 * n))
    T[0] /= np.sqrt(2.0)
    return T


def _explicit(t: AxisTransform) -> np.ndarray:
    """P = T D Pi of one round, built from its definition (independent of the fast code)."""
    n = t.size
    T = _dct_matrix(n) if t.kind == "dct" else scipy.linalg.hadamard(n) / math.sqrt(n)
    g = np.asarray(t.perm[0])
    Pi = np.zeros((n, n))
    Pi[np.arange(n), g] = 1.0  # (Pi x)_k = x[g(k)]
    return T @ np.diag(np.asarray(t.signs[0], np.float64)) @ Pi


# --- the matrices ------------------------------------------------------------------------------


@pytest.mark.parametrize("rounds", [1, 2])
@pytest.mark.parametrize("kind,n", AXIS_CASES)
def test_dense_is_orthogonal(kind, n, rounds):
    P = make_axis_transform(_rng(n), n, kind, rounds).dense()
    assert P.shape == (n, n) and P.dtype == np.float64
    np.testing.assert_allclose(P.T @ P, np.eye(n), rtol=0, atol=1e-12)
    np.testing.assert_allclose(P @ P.T, np.eye(n), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind,n", AXIS_CASES)
def test_dense_is_T_D_Pi(kind, n):
    t = make_axis_transform(_rng(1), n, kind)
    np.testing.assert_allclose(t.dense(), _explicit(t), rtol=0, atol=1e-13)


def test_auto_kind_and_validation():
    assert make_axis_transform(_rng(), 64, "auto").kind == "hadamard"
    assert make_axis_transform(_rng(), 100, "auto").kind == "dct"
    assert make_axis_transform(_rng(), 64).kind == "dct"
    assert structured_basis(_rng(), 64, 64).P.kind == "dct"  # the fastest, the default
    with pytest.raises(ValueError, match="power-of-two"):
        make_axis_transform(_rng(), 12, "hadamard")
    with pytest.raises(ValueError, match="kind"):
        make_axis_transform(_rng(), 8, "fourier")
    with pytest.raises(ValueError, match="rounds"):
        make_axis_transform(_rng(), 8, rounds=0)
    with pytest.raises(ValueError, match="n:"):
        make_axis_transform(_rng(), 0)
    with pytest.raises(ValueError, match="rounds"):
        StructuredBasis(make_axis_transform(_rng(), 8, rounds=1),
                        make_axis_transform(_rng(), 8, rounds=2))
    with pytest.raises(ValueError, match="length"):
        apply(make_axis_transform(_rng(), 8), jnp.zeros((4, 3)), axis=0)


# --- fast apply against the dense matrices -------------------------------------------------------


@pytest.mark.parametrize("rounds", [1, 2])
@pytest.mark.parametrize("m,n,kind", SHAPES)
def test_rotations_match_dense(m, n, kind, rounds):
    B = structured_basis(_rng(m * 1000 + n), m, n, kind, rounds)
    P, Q = B.dense()
    X = _rng(7).standard_normal((m, n))
    np.testing.assert_allclose(_to(B, jnp.asarray(X)), P.T @ X @ Q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_from(B, jnp.asarray(X)), P @ X @ Q.T, rtol=0, atol=1e-12)
    # One axis at a time, either axis, both directions.
    Xj = jnp.asarray(X)
    np.testing.assert_allclose(_apply(B.P, Xj, axis=0), P @ X, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_apply_t(B.P, Xj, axis=0), P.T @ X, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_apply(B.Q, Xj, axis=1), X @ Q.T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_apply_t(B.Q, Xj, axis=-1), X @ Q, rtol=0, atol=1e-12)


def test_rotations_batch_over_leading_axes():
    B = structured_basis(_rng(3), 16, 33)
    P, Q = B.dense()
    X = _rng(4).standard_normal((3, 16, 33))
    C = np.asarray(_to(B, jnp.asarray(X)))
    np.testing.assert_allclose(C, np.einsum("ai,sab,bj->sij", P, X, Q), rtol=0, atol=1e-12)


@pytest.mark.parametrize("m,n,kind", SHAPES)
def test_roundtrip(m, n, kind):
    B = structured_basis(_rng(5), m, n, kind)
    X = _rng(6).standard_normal((m, n))
    for dtype, tol in ((jnp.float64, 1e-13), (jnp.float32, 2e-6)):
        Xj = jnp.asarray(X, dtype)
        C = _to(B, Xj)
        assert C.dtype == dtype
        back = _from(B, C)
        assert back.dtype == dtype
        np.testing.assert_allclose(back, X, rtol=0, atol=tol * max(1.0, np.abs(X).max()))
        np.testing.assert_allclose(_to(B, _from(B, Xj)), X, rtol=0,
                                   atol=tol * max(1.0, np.abs(X).max()))
        # Orthogonal: the Frobenius norm is kept.
        np.testing.assert_allclose(np.linalg.norm(np.asarray(C, np.float64)), np.linalg.norm(X),
                                   rtol=10 * tol)


@pytest.mark.parametrize("rounds", [1, 2])
@pytest.mark.parametrize("m,n,kind", SHAPES)
def test_numpy_reference_matches_jax(m, n, kind, rounds):
    B = structured_basis(_rng(8), m, n, kind, rounds)
    X = _rng(9).standard_normal((m, n))
    ref = B.to_eigenbasis_np(X)
    np.testing.assert_allclose(_to(B, jnp.asarray(X)), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_from(B, jnp.asarray(X)), B.from_eigenbasis_np(X),
                               rtol=0, atol=1e-12)
    C32 = np.asarray(_to(B, jnp.asarray(X, jnp.float32)), np.float64)
    np.testing.assert_allclose(C32, ref, rtol=0, atol=5e-6 * np.abs(X).max())
    # The per-axis NumPy functions agree with the JAX ones too.
    np.testing.assert_allclose(apply_np(B.P, X, 0), _apply(B.P, jnp.asarray(X), axis=0),
                               atol=1e-12)
    np.testing.assert_allclose(apply_transpose_np(B.Q, X, 1),
                               _apply_t(B.Q, jnp.asarray(X), axis=1), atol=1e-12)


# --- incoherence -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind,n", AXIS_CASES)
def test_coherence_bound_holds(kind, n):
    t = make_axis_transform(_rng(10), n, kind)
    mu = t.coherence()
    assert mu <= t.coherence_bound() + 1e-12
    if kind == "hadamard":
        assert mu == pytest.approx(1.0, abs=1e-12)  # every entry is +-1/sqrt(n)


@pytest.mark.parametrize("m,n,kind", SHAPES)
def test_escape_directions_obey_the_bound(m, n, kind):
    B = structured_basis(_rng(11), m, n, kind)
    P, Q = B.dense()
    bound = B.escape_entry_bound()
    assert bound == pytest.approx(B.P.coherence_bound() * B.Q.coherence_bound()
                                  / math.sqrt(m * n))
    # Every p_i q_j^T at once: its largest entry is max|P| max|Q|.
    assert np.abs(P).max() * np.abs(Q).max() <= bound + 1e-12
    for i in range(min(m, n, 4)):
        E = np.asarray(_escape(B, i, i))
        np.testing.assert_allclose(E, np.outer(P[:, i], Q[:, i]), rtol=0, atol=1e-13)
        assert np.abs(E).max() <= bound + 1e-12
    E = np.asarray(_escape(B, 0, n - 1))
    np.testing.assert_allclose(E, np.outer(P[:, 0], Q[:, n - 1]), rtol=0, atol=1e-13)


def test_direction_coordinates_are_the_diagonal():
    B = structured_basis(_rng(12), 16, 33)
    P, Q = B.dense()
    X = _rng(13).standard_normal((16, 33))
    a = np.asarray(jax.jit(lambda B, X: B.direction_coordinates(X, 5))(B, jnp.asarray(X)))
    np.testing.assert_allclose(a, [P[:, i] @ X @ Q[:, i] for i in range(5)], atol=1e-12)


@pytest.mark.parametrize("n", [64, 100, 256])
def test_structured_is_more_incoherent_than_haar(n):
    """One round of T D Pi beats a Haar basis on the largest entry: Haar's is about
    sqrt(2 ln(n^2) / n), the DCT's at most sqrt(2 / n), Hadamard's exactly 1 / sqrt(n)."""
    haar = np.abs(haar_orthogonal(_rng(14), n)).max()
    assert haar == pytest.approx(math.sqrt(2 * math.log(n * n) / n), rel=0.35)
    dct = np.abs(make_axis_transform(_rng(15), n, "dct").dense()).max()
    assert dct <= math.sqrt(2.0 / n) + 1e-12 < haar
    if n & (n - 1) == 0:
        had = np.abs(make_axis_transform(_rng(16), n, "hadamard").dense()).max()
        assert had == pytest.approx(1 / math.sqrt(n), abs=1e-12)


def test_two_rounds_are_haar_like():
    """More rounds give up the deterministic bound: the largest entry grows to Haar's size."""
    n = 256
    t = make_axis_transform(_rng(17), n, "hadamard", rounds=2)
    assert t.coherence_bound() == math.sqrt(n)
    mu = t.coherence()
    assert 1.5 < mu < 2 * math.sqrt(2 * math.log(2 * n * n / 1e-3))


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_same_basis_bit_for_bit():
    A = structured_basis(_rng(42), 33, 64, "dct", rounds=2)
    B = structured_basis(_rng(42), 33, 64, "dct", rounds=2)
    for a, b in zip(jax.tree_util.tree_leaves(A), jax.tree_util.tree_leaves(B), strict=True):
        np.testing.assert_array_equal(a, b)
    X = jnp.asarray(_rng(1).standard_normal((33, 64)), jnp.float32)
    f = jax.jit(lambda B, X: B.from_eigenbasis(B.to_eigenbasis(X) * 2))
    np.testing.assert_array_equal(f(A, X), f(B, X))
    np.testing.assert_array_equal(f(A, X), f(A, X))


@pytest.mark.parametrize("kind", ["dct", "hadamard"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_bit_identical_whatever_the_batch(kind, dtype):
    """A run's rotation does not depend on how many runs share its batch (or on vmap)."""
    B = structured_basis(_rng(3), 32, 64, kind)
    f = jax.jit(lambda B, X: B.from_eigenbasis(0.5 * B.to_eigenbasis(X)))
    X = jnp.asarray(_rng(4).standard_normal((5, 32, 64)), dtype)
    one = np.stack([np.asarray(f(B, X[i])) for i in range(5)])
    np.testing.assert_array_equal(f(B, X), one)
    np.testing.assert_array_equal(f(B, X[:2]), one[:2])
    np.testing.assert_array_equal(jax.vmap(f, in_axes=(None, 0))(B, X), one)


def test_vmap_over_a_batch_of_bases():
    """One basis per run (stacked pytrees) under vmap equals each basis on its own."""
    bases = [structured_basis(_rng(s), 16, 32) for s in range(3)]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *bases)
    X = jnp.asarray(_rng(9).standard_normal((3, 16, 32)))
    out = jax.vmap(_to)(stacked, X)
    for s, B in enumerate(bases):
        np.testing.assert_array_equal(out[s], _to(B, X[s]))


def test_escape_projection():
    B = structured_basis(_rng(12), 16, 33)
    P, Q = B.dense()
    X = _rng(13).standard_normal((16, 33))
    proj = np.asarray(jax.jit(lambda B, X: B.escape_projection(X, 3))(B, jnp.asarray(X)))
    expected = sum((P[:, i] @ X @ Q[:, i]) * np.outer(P[:, i], Q[:, i]) for i in range(3))
    np.testing.assert_allclose(proj, expected, rtol=0, atol=1e-12)


def test_different_seeds_differ():
    A = structured_basis(_rng(1), 32, 32)
    B = structured_basis(_rng(2), 32, 32)
    assert not np.array_equal(A.P.perm, B.P.perm)
    assert not np.array_equal(A.P.dense(), B.P.dense())
    assert not np.array_equal(A.Q.dense(), B.Q.dense())
    # P and Q of one basis are independent draws too.
    assert not np.array_equal(A.P.dense(), A.Q.dense())


def test_pytree_static_fields_and_jit_argument():
    B = structured_basis(_rng(0), 8, 7, "auto")
    leaves, treedef = jax.tree_util.tree_flatten(B)
    assert len(leaves) == 6  # signs, perm, inv_perm for P and for Q
    B2 = jax.tree_util.tree_unflatten(treedef, leaves)
    assert (B2.P.kind, B2.Q.kind, B2.P.rounds) == ("hadamard", "dct", 1)
    # A second basis of the same structure reuses the compiled function (no retrace).
    traces = []
    f = jax.jit(lambda B, X: (traces.append(1), B.to_eigenbasis(X))[1])
    X = jnp.ones((8, 7))
    f(B, X)
    f(structured_basis(_rng(1), 8, 7, "auto"), X)
    assert len(traces) == 1


# --- a spectral-saddle quadratic on a structured basis -----------------------------------------


def _quadratic(B: StructuredBasis, lam, w_star):
    """f(W) = 1/2 sum Lambda * C^2 with C = P^T (W - W*) Q through the fast rotation."""

    def f(W):
        C = B.to_eigenbasis(W - w_star)
        return 0.5 * jnp.sum(lam * C * C)

    return f


@pytest.mark.parametrize("m,n,kind", [(8, 8, "hadamard"), (7, 9, "dct"), (4, 16, "auto")])
def test_quadratic_gradient_and_hessian_spectrum(m, n, kind):
    rng = _rng(20)
    B = structured_basis(rng, m, n, kind)
    lam = rng.uniform(0.5, 2.0, (m, n))
    lam[0, 0] = lam[1, 1] = -0.3  # two escape directions
    lam = jnp.asarray(lam)
    w_star = jnp.asarray(rng.standard_normal((m, n)))
    f = _quadratic(B, lam, w_star)
    W = jnp.asarray(rng.standard_normal((m, n)))

    # Gradient: jax.grad through the fast transforms equals P (Lambda * C) Q^T.
    g = jax.jit(jax.grad(f))(W)
    expected = _from(B, lam * _to(B, W - w_star))
    np.testing.assert_allclose(g, expected, rtol=0, atol=1e-12)
    P, Q = B.dense()
    X = np.asarray(W - w_star)
    np.testing.assert_allclose(g, P @ (np.asarray(lam) * (P.T @ X @ Q)) @ Q.T, atol=1e-12)

    # Hessian of the flattened W: its eigenvalues are exactly Lambda.
    D = m * n
    assert D <= 64
    H = jax.jit(jax.hessian(lambda w: f(w.reshape(m, n))))(W.reshape(-1))
    H = np.asarray(H)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(H), np.sort(np.asarray(lam).reshape(-1)),
                               rtol=0, atol=1e-12)
    # ... with eigenvectors p_i q_j^T: the escape directions.
    for i in range(2):
        e = np.asarray(_escape(B, i, i)).reshape(-1)
        np.testing.assert_allclose(H @ e, -0.3 * e, atol=1e-12)


@pytest.mark.slow
def test_benchmark_smoke():
    """benchmarks/structured.py runs and its variants agree (it asserts that every rotation
    returns X and that the jax.scipy path gives the library's C)."""
    from benchmarks.structured import bench_size, machine_info, markdown

    row = bench_size(32, repeats=1)
    assert set(row["ratios"]) == set(row["ratios_min"])
    assert "structured dct" in markdown([row], machine_info(), 1)
