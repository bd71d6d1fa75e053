"""The teacher_student landscape: an erf soft committee machine at its symmetric plateau,
against independent implementations (Monte Carlo, an explicit NumPy sum, finite
differences), the dense Hessian at the plateau, and through the engine."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy.special import erf as np_erf

from saddle import Config, ConfigError
from saddle.landscapes import make_landscape
from saddle.landscapes.teacher_student import (
    empirical_loss,
    plateau_arrays,
    population_level,
    population_loss,
    teacher_weights,
)
from saddle.simulate import simulate

SMALL = dict(landscape="teacher_student", m=1, n=8, width=4, teacher_width=2,
             teacher_scale=3.0, landscape_seed=3, escape="loss", loss_drop=0.01,
             dtype="float64")


def _config(**kw):
    return Config.from_dict(**{**SMALL, **kw})


@pytest.fixture(scope="module")
def population():
    """One population landscape (``_config()``) for the module: (config, plateau arrays, L).
    Building it (plateau point, dense H_std, fresh jit closures) is most of a test's time."""
    c = _config()
    return c, plateau_arrays(c), make_landscape(c)


@pytest.fixture(scope="module")
def data():
    """One data-set landscape (``_config(samples=200)``): (config, plateau arrays, L)."""
    c = _config(samples=200)
    return c, plateau_arrays(c), make_landscape(c)


LANDSCAPE = pytest.mark.parametrize("landscape", ["population", "data"])


def _random_params(key, L, scale=0.5):
    w = L.saddle_point
    k1, k2 = jax.random.split(key)
    return {"W1": w["W1"] + scale * jax.random.normal(k1, w["W1"].shape, jnp.float64),
            "W2": w["W2"] + scale * jax.random.normal(k2, w["W2"].shape, jnp.float64)}


def _numpy_loss(W, B1, B2, X):
    """1/(2N) sum_i ||W2 g(W1 x_i / sqrt n) - B2 g(B1 x_i / sqrt n)||^2, one row at a time."""
    n = X.shape[1]
    g = lambda z: np_erf(z / math.sqrt(2))  # noqa: E731
    total = 0.0
    for x in X:
        r = W["W2"] @ g(W["W1"] @ x / math.sqrt(n)) - B2 @ g(B1 @ x / math.sqrt(n))
        total += 0.5 * float(r @ r)
    return total / X.shape[0]


# --- config --------------------------------------------------------------------------------
def test_fields_defaults_dimension_and_refusals():
    assert Config.from_dict({}).config_hash() == "b21a079c74dc4749"  # existing hashes stay
    c = Config.from_dict(landscape="teacher_student", m=1, n=16, escape="loss")
    assert (c.width, c.teacher_width, c.activation, c.teacher_scale, c.samples) == \
        (16, 2, "erf", 1.0, 0)
    assert c.D == 16 * 17
    assert Config.from_dict().teacher_width is None and Config.from_dict().activation is None
    assert Config.from_dict(landscape="linear_network").teacher_width is None
    depth = population_level(dict(m=1, teacher_width=2, teacher_scale=1.0))
    bad = [(dict(teacher_width=5), "teacher_width"), (dict(teacher_width=1), "teacher_width"),
           (dict(activation="relu"), "activation"), (dict(n=2048), "n"),
           (dict(teacher_scale=1.0, loss_drop=depth), "loss_drop"),
           (dict(samples=-1), "samples")]
    for extra, name in bad:
        with pytest.raises(ConfigError, match=name):
            _config(**extra)
    with pytest.raises(ConfigError, match="escape_rank"):  # 1 negative eigenvalue x 3 units
        plateau_arrays(_config(m=4, escape_rank=4))


def test_teacher_is_orthonormal_and_depends_on_the_seed_alone():
    c = _config()
    B1, B2 = teacher_weights(c)
    np.testing.assert_allclose(B1 @ B1.T / c.n, np.eye(2), atol=1e-13)
    np.testing.assert_array_equal(B2, np.full((1, 2), 3.0))
    again, _ = teacher_weights(c.replace(width=6, teacher_scale=1.0, samples=50))
    np.testing.assert_array_equal(B1, again)
    assert not np.array_equal(B1, teacher_weights(c.replace(landscape_seed=4))[0])


# --- value and gradient --------------------------------------------------------------------
def test_population_loss_matches_a_monte_carlo_average(population):
    """The closed form against the empirical loss on N = 2^18 Gaussian inputs, within
    5 standard errors of the mean (value and every gradient entry; both from the same
    2^18 rows, so the gradient's tolerance is sqrt(8) tighter in absolute terms than with
    the 2^15 rows it used before). Everything is one jit: eager dispatch of the per-row
    gradients, not the arithmetic, was the cost."""
    _, _, L = population
    W = _random_params(jax.random.key(0), L)
    N = 2**18
    X = jnp.asarray(np.random.default_rng(0).standard_normal((N, 8)))

    @jax.jit
    def rows_and_closed_form(W, X):
        row = jax.value_and_grad(lambda w, x: empirical_loss(w["W1"], w["W2"], L.B1, L.B2,
                                                              x[None]))
        pop = jax.value_and_grad(lambda w: population_loss(w["W1"], w["W2"], L.B1, L.B2))
        return jax.vmap(row, (None, 0))(W, X), pop(W)

    (per_row, g_rows), (f_pop, g_pop) = jax.tree.map(np.asarray, rows_and_closed_form(W, X))
    se = per_row.std() / math.sqrt(N)
    assert abs(per_row.mean() - f_pop) < 5 * se, (f_pop, se)
    for k in W:
        mean, std = g_rows[k].mean(0), g_rows[k].std(0)
        assert np.all(np.abs(mean - g_pop[k]) < 5 * std / math.sqrt(N) + 1e-12), k


@LANDSCAPE
def test_value_and_gradient_match_explicit_sums_and_finite_differences(landscape, request):
    c, _, L = request.getfixturevalue(landscape)
    W = _random_params(jax.random.key(1), L)
    f, g, a = jax.jit(L.value_and_grad_with_coordinates)(W)
    if c.samples:  # the empirical loss exactly, against a row-by-row NumPy sum
        np_W = {k: np.asarray(v) for k, v in W.items()}
        exact = _numpy_loss(np_W, np.asarray(L.B1), np.asarray(L.B2), np.asarray(L.X))
        np.testing.assert_allclose(f + L.level, exact, rtol=1e-12)
    flat, unravel = ravel_pytree(W)
    gflat = ravel_pytree(g)[0]
    value = jax.jit(lambda x: L.value(unravel(x)))
    rng = np.random.default_rng(2)
    for _ in range(3):
        d = jnp.asarray(rng.standard_normal(flat.shape))
        h = 1e-5
        fd = (value(flat + h * d) - value(flat - h * d)) / (2 * h)
        np.testing.assert_allclose(fd, jnp.dot(gflat, d), rtol=1e-7)
    E = L.escape_direction(0)
    np.testing.assert_allclose(a[0], sum(jnp.sum(E[k] * W[k]) for k in W), rtol=1e-12)


# --- the plateau ---------------------------------------------------------------------------
@LANDSCAPE
def test_plateau_is_a_symmetric_critical_point_with_negative_curvature(landscape, request):
    """W* has equal units, zero gradient and f = 0; its dense Hessian's negative eigenvalues
    are those of H_std, each h - 1 times, with the escape directions as eigenvectors; the
    rest (the symmetric subspace among them) is >= 0."""
    c, arrays, L = request.getfixturevalue(landscape)
    samples = c.samples
    W = L.saddle_point
    assert np.ptp(np.asarray(W["W1"]), axis=0).max() == 0 and np.ptp(W["W2"]) == 0
    f, g, a = L.value_and_grad_with_coordinates(W)
    assert float(f) == 0.0 and not np.any(a)
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g)) < 1e-12
    if not samples:
        np.testing.assert_allclose(L.level, population_level(c.to_dict()), rtol=1e-12)
    flat, unravel = ravel_pytree(W)
    H = np.asarray(jax.jit(jax.hessian(lambda x: L.value(unravel(x))))(flat))
    ev = np.linalg.eigvalsh(H)
    curv = arrays["curvatures"]
    neg = ev[ev < -1e-10]
    np.testing.assert_allclose(neg, np.repeat(np.sort(curv), c.width - 1), rtol=1e-8)
    for i in range(len(curv) * (c.width - 1)):
        E = np.asarray(ravel_pytree(L.escape_direction(i))[0])
        np.testing.assert_allclose(H @ E, curv[i // (c.width - 1)] * E, atol=1e-10)
        np.testing.assert_allclose(E @ E, 1.0, rtol=1e-12)
    # on the symmetric subspace (all units moving together) W* is a minimum
    n, h = c.n, c.width
    basis = np.eye(n + c.m)
    S = np.stack([np.asarray(ravel_pytree(
        {"W1": jnp.outer(jnp.ones(h), z[:n]), "W2": jnp.outer(z[n:], jnp.ones(h))})[0])
        for z in jnp.asarray(basis)], axis=1) / math.sqrt(h)
    assert np.linalg.eigvalsh(S.T @ H @ S)[0] > 1e-6


@pytest.mark.parametrize("extra", [dict(m=3, width=5, escape_rank=3),  # one eigenvector z
                                   dict(m=5, width=3, escape_rank=5, samples=200)])  # three
def test_escape_coordinates_are_dual_to_the_escape_directions(extra):
    """E_i = u_j (x) z_l, i = l (h - 1) + j: orthonormal, and a(E_i) = e_i."""
    c = _config(**extra)
    r = c.escape_rank
    L = make_landscape(c)
    Es = [np.asarray(ravel_pytree(L.escape_direction(i))[0]) for i in range(r)]
    np.testing.assert_allclose(np.array(Es) @ np.array(Es).T, np.eye(r), atol=1e-13)
    unravel = ravel_pytree(L.saddle_point)[1]
    coords = jax.jit(L.direction_coordinates)
    for i, E in enumerate(Es):
        np.testing.assert_allclose(coords(unravel(jnp.asarray(E))), np.eye(r)[i], atol=1e-13)


# --- minibatches ---------------------------------------------------------------------------
def test_minibatch_gradient_is_unbiased(population, data):
    """The mean of 2^10 minibatch gradients (64 fresh rows each) is the population gradient
    within 5 standard errors of the mean (the same sizes as before; jitted)."""
    L = population[2]
    W = _random_params(jax.random.key(3), L)
    full = jax.jit(L.grad)(W)
    X = jnp.asarray(np.random.default_rng(4).standard_normal((2**16, 8)))
    batches = X.reshape(2**10, 2**6, 8)
    mb = jax.jit(jax.vmap(L.minibatch_gradient, (None, 0)))(W, batches)
    for k in W:
        mean, std = jnp.mean(mb[k], 0), jnp.std(mb[k], 0)
        assert np.all(np.abs(mean - full[k]) < 5 * std / math.sqrt(2**10) + 1e-12), k
    # on a data set the minibatch over every row is the full (empirical) gradient
    Ld = data[2]
    exact = Ld.minibatch_gradient(W, Ld.X)
    for k, v in Ld.grad(W).items():
        np.testing.assert_allclose(exact[k], v, rtol=1e-12, atol=1e-15)


# --- through the engine --------------------------------------------------------------------
RUN = dict(landscape="teacher_student", m=1, n=8, width=4, teacher_width=2, teacher_scale=3.0,
           escape="loss", noise="none", init="random", init_scale=1e-3, seeds=4)
LEVEL = population_level(dict(m=1, teacher_width=2, teacher_scale=3.0))  # 0.1045


@pytest.mark.parametrize("optimizer,lr,fraction,budget", [
    ("sgd", 0.3, 0.5, 1500), ("adamw", None, 0.5, 600), ("muon", None, 0.5, 300),
    # Mano v1 cannot change the norm of W2's single row at first order: it leaves the
    # plateau (about 10% of the gap within ~2000 steps) and then crawls
    ("mano", None, 0.05, 1500)])
def test_every_optimizer_leaves_the_plateau(optimizer, lr, fraction, budget):
    """From W* + 1e-3 Z without noise, the loss falls by ``fraction`` of the plateau's gap.
    Measured escape times: sgd 630-717, adamw 266-269, muon 108-111, mano 593-613."""
    c = Config.from_dict(optimizer=optimizer, learning_rate=lr, loss_drop=fraction * LEVEL,
                         max_steps=budget, **RUN)
    res = simulate(c)
    assert all(r.escaped for r in res.runs), [r.status for r in res.runs]
    assert all(r.final_loss <= -fraction * LEVEL for r in res.runs)


@pytest.mark.parametrize("samples", [0, 256])
def test_online_and_finite_data_sgd_leave_the_plateau(samples):
    c = Config.from_dict(**{**RUN, "seeds": 2, "noise": "minibatch"}, optimizer="sgd",
                         learning_rate=0.3, minibatch_size=16, loss_drop=0.5 * LEVEL,
                         max_steps=3000, samples=samples)
    res = simulate(c)
    assert all(r.escaped for r in res.runs), [r.status for r in res.runs]
