"""The spectral saddle against independent references: jax.grad, finite differences and
the dense Hessian's eigen-decomposition (float64, small D)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saddle import Config
from saddle.landscapes import (
    bulk_quantiles,
    coherence,
    haar_orthogonal,
    make_landscape,
    marchenko_pastur_quantiles,
    partial_rotation,
)

CASES = [
    dict(m=5, n=4, escape_rank=1, basis="coherent"),
    dict(m=4, n=6, escape_rank=2, basis="incoherent", bulk="uniform", quartic=0.7),
    dict(m=6, n=6, escape_rank=3, basis="partial", mixing=0.6, bulk="marchenko_pastur",
         bulk_ratio=0.5, saddle_point="random"),
    dict(m=7, n=3, escape_rank=1, basis="incoherent", bulk="power_law", gamma=0.0),
    dict(m=2, n=9, escape_rank=2, basis="incoherent", quartic=2.0, saddle_point="random"),
    dict(m=6, n=5, escape_rank=2, basis="structured", bulk="uniform", quartic=0.4),
    dict(m=8, n=7, escape_rank=3, basis="structured", bulk="power_law", saddle_point="random"),
]


def _landscape(case):
    cfg = dict(case, dtype="float64", gamma=case.get("gamma", 0.3))
    return make_landscape(Config.from_dict(cfg))


@pytest.mark.parametrize("case", CASES)
def test_gradient_matches_autodiff_and_finite_differences(case):
    L = _landscape(case)
    m, n = L.shape
    W = L.w_star + 0.5 * jax.random.normal(jax.random.key(3), (m, n), jnp.float64)
    f, g = jax.jit(L.value_and_grad)(W)
    value = jax.jit(L.value)
    np.testing.assert_allclose(g, jax.jit(jax.grad(L.value))(W), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f, value(W), rtol=1e-13)
    # Central differences along random directions: error O(h^2) with h = 1e-5.
    h = 1e-5
    V = np.random.default_rng(10).standard_normal((4, m, n))
    for v in V:
        fd = (value(W + h * v) - value(W - h * v)) / (2 * h)
        assert abs(fd - jnp.sum(g * v)) < 1e-7 * (1 + abs(fd))


@pytest.mark.parametrize("case", CASES)
def test_dense_hessian_spectrum_is_lambda(case):
    L = _landscape(case)
    H = L.dense_hessian()
    np.testing.assert_allclose(H, H.T, atol=1e-14)
    lam = np.sort(np.asarray(L.eigenvalues(), np.float64).ravel())
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(H)), lam, atol=1e-12)
    # The escape block is exactly r copies of -gamma and the bulk is positive.
    r = case["escape_rank"]
    assert np.all(lam[:r] == -float(L.gamma))
    assert np.all(lam[r:] > 0)


@pytest.mark.parametrize("case", CASES)
def test_escape_directions_are_hessian_eigenvectors(case):
    L = _landscape(case)
    H = L.dense_hessian()
    for i in range(L.escape_rank):
        e = np.asarray(L.escape_direction(i)).ravel()
        assert abs(np.linalg.norm(e) - 1) < 1e-12
        np.testing.assert_allclose(H @ e, -float(L.gamma) * e, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_dense_hessian_away_from_saddle_matches_autodiff(case):
    L = _landscape(case)
    m, n = L.shape
    W = L.w_star + jax.random.normal(jax.random.key(5), (m, n), jnp.float64)
    H_ad = np.asarray(jax.jit(jax.hessian(L.value))(W)).reshape(m * n, m * n)
    np.testing.assert_allclose(L.dense_hessian(W), H_ad, atol=1e-11)


@pytest.mark.parametrize("case", CASES)
def test_escape_coordinates_projection_and_drift(case):
    L = _landscape(case)
    m, n = L.shape
    W = L.w_star + jax.random.normal(jax.random.key(7), (m, n), jnp.float64)
    X = np.asarray(W - L.w_star)
    E = np.stack([np.asarray(L.escape_direction(i)) for i in range(L.escape_rank)])
    a_ref = np.einsum("kij,ij->k", E, X)
    np.testing.assert_allclose(L.escape_coordinates(W), a_ref, atol=1e-12)
    _, _, a = L.value_and_grad_with_coordinates(W)
    np.testing.assert_allclose(a, a_ref, atol=1e-12)
    proj = np.asarray(L.escape_projection(W))
    np.testing.assert_allclose(proj, np.einsum("k,kij->ij", a_ref, E), atol=1e-12)
    # The projection is idempotent and the drift is the norm of the remainder.
    np.testing.assert_allclose(L.escape_projection(L.w_star + proj), proj, atol=1e-12)
    np.testing.assert_allclose(L.orthogonal_drift(W), np.linalg.norm(X - proj), rtol=1e-10)
    np.testing.assert_allclose(L.escape_distance(W), np.linalg.norm(a_ref), rtol=1e-12)


def test_float32_landscape_stays_float32():
    L = make_landscape(Config.from_dict(m=8, n=8, dtype="float32"))
    W = jnp.ones((8, 8), jnp.float32)
    f, g = L.value_and_grad(W)
    assert f.dtype == jnp.float32 and g.dtype == jnp.float32


def test_landscape_is_a_pytree_and_jits_with_batched_gamma():
    L = make_landscape(Config.from_dict(m=6, n=5, dtype="float64"))
    W = jnp.ones((6, 5))

    def f(gamma):
        return jax.tree.map(lambda x: x, L).__class__(**{**L.__dict__, "gamma": gamma}).value(W)

    vals = jax.jit(jax.vmap(f))(jnp.array([0.0, 1.0, 2.0]))
    a = float(L.escape_coordinates(W)[0])
    # f is affine in gamma with slope -a^2/2.
    np.testing.assert_allclose(np.diff(np.asarray(vals)), [-a * a / 2] * 2, rtol=1e-12)


def test_landscape_seed_determines_landscape():
    c = Config.from_dict(m=8, n=6, dtype="float64")
    L1, L2 = make_landscape(c), make_landscape(c)
    L3 = make_landscape(c.replace(landscape_seed=1))
    np.testing.assert_array_equal(L1.P, L2.P)
    assert not np.allclose(L1.P, L3.P)


def test_bulk_spectra_have_their_named_laws():
    np.testing.assert_array_equal(bulk_quantiles("constant", 10, None, None), np.ones(10))
    u = bulk_quantiles("uniform", 1000, 0.2, None)
    assert 0.2 < u.min() < 0.201 and 0.999 < u.max() < 1.0
    assert abs(u.mean() - 0.6) < 1e-12
    # Marchenko-Pastur with ratio q: mean 1, variance q, support [(1-sqrt q)^2, (1+sqrt q)^2].
    for q in (0.1, 0.5, 1.0):
        mp = bulk_quantiles("marchenko_pastur", 200_000, q, None)
        assert abs(mp.mean() - 1) < 1e-3
        assert abs(mp.var() - q) < 2e-3
        assert mp.min() >= (1 - np.sqrt(q)) ** 2 - 1e-9 and mp.max() <= (1 + np.sqrt(q)) ** 2 + 1e-9
    # Power law: P(lambda > x) = x^(-alpha) for x >= 1.
    pl = bulk_quantiles("power_law", 100_000, None, 2.0)
    for x in (1.5, 3.0, 10.0):
        assert abs(np.mean(pl > x) - x**-2.0) < 1e-3


def test_marchenko_pastur_matches_sampled_wishart():
    # Eigenvalues of X^T X / N for X (N x p), p/N = q, converge to MP(q); compare quantiles.
    rng = np.random.default_rng(0)
    N, p = 4000, 1000
    X = rng.standard_normal((N, p))
    ev = np.sort(np.linalg.eigvalsh(X.T @ X / N))
    u = (np.arange(p) + 0.5) / p
    mp = marchenko_pastur_quantiles(u, p / N)
    assert np.max(np.abs(ev - mp)) < 0.05


def test_bases_are_orthogonal_and_mixing_interpolates():
    rng = np.random.default_rng(1)
    H = haar_orthogonal(rng, 50)
    np.testing.assert_allclose(H @ H.T, np.eye(50), atol=1e-12)
    np.testing.assert_array_equal(partial_rotation(rng, 20, 0.0), np.eye(20))
    R = partial_rotation(rng, 40, 0.5)
    np.testing.assert_allclose(R @ R.T, np.eye(40), atol=1e-10)
    cohs = []
    cases = [("coherent", None), ("partial", 0.1), ("partial", 0.5), ("incoherent", None)]
    for basis, mixing in cases:
        d = dict(m=64, n=64, basis=basis, dtype="float64")
        if mixing is not None:
            d["mixing"] = mixing
        cohs.append(coherence(make_landscape(Config.from_dict(d))))
    assert cohs[0] == pytest.approx(64.0)
    assert cohs[0] > cohs[1] > cohs[2] > 1.0
    assert cohs[3] < 10.0  # Haar: about sqrt(log m log n) * const, far below sqrt(D) = 64


def test_structured_basis_is_provably_incoherent():
    """Every entry of a structured (DCT) escape direction is at most mu_P mu_Q / sqrt(mn)
    with mu <= sqrt(2), at any shape; a coherent one has an entry 1."""
    for m, n in [(16, 16), (33, 20), (64, 7), (100, 128)]:
        L = make_landscape(Config.from_dict(m=m, n=n, basis="structured", escape_rank=2,
                                            dtype="float64"))
        for i in range(2):
            E = np.asarray(L.escape_direction(i))
            assert np.linalg.norm(E) == pytest.approx(1.0, abs=1e-12)
            assert np.abs(E).max() <= 2.0 / np.sqrt(m * n) + 1e-12
        assert coherence(L) <= 2.0 + 1e-9


def test_dense_hessian_refuses_large_D():
    L = make_landscape(Config.from_dict(m=80, n=80))
    with pytest.raises(ValueError, match="dense_hessian"):
        L.dense_hessian()
