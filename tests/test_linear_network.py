"""The linear_network landscape: f(W1, W2) = 1/2 ||W2 W1 - S||_F^2 - 1/2 ||S||_F^2 against
closed forms (gradient, Hessian spectrum at the origin, the logistic law of gradient
flow), through the engine with every kind of optimizer, and through the CLI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from saddle import Config, ConfigError, cli, engine
from saddle.landscapes import make_landscape
from saddle.landscapes.linear_network import singular_values, teacher_arrays
from saddle.simulate import simulate

SMALL = dict(landscape="linear_network", m=3, n=4, width=5, teacher_rank=2, escape_rank=2,
             teacher_scale=1.5, teacher_decay=0.5, landscape_seed=3, dtype="float64")


def _random_params(key, L, scale=0.7):
    w = L.saddle_point
    k1, k2 = jax.random.split(key)
    return {"W1": scale * jax.random.normal(k1, w["W1"].shape, jnp.float64),
            "W2": scale * jax.random.normal(k2, w["W2"].shape, jnp.float64)}


# --- config --------------------------------------------------------------------------------
def test_fields_defaults_dimension_and_checks():
    c = Config.from_dict(landscape="linear_network", m=16, n=8)
    assert (c.width, c.teacher_rank, c.teacher_scale, c.teacher_decay) == (16, 1, 1.0, 0.5)
    assert c.D == 16 * (16 + 8)
    assert c.gamma is None and c.basis is None  # the spectral family's fields
    assert Config.from_dict().width is None  # and ours, elsewhere
    assert Config.from_dict(landscape="linear_network", m=5, n=7, width=64).D == 64 * 12
    bad = [(dict(m=3, n=4, teacher_rank=4), "teacher_rank"),
           (dict(teacher_rank=2, escape_rank=3), "escape_rank"),
           (dict(width=0), "width"), (dict(width=2**20 + 1), "width"),
           (dict(m=2**12, n=2**12, width=2**18), "width"),  # D = 2^31
           (dict(teacher_decay=0), "teacher_decay"),
           (dict(teacher_decay=1.5), "teacher_decay"), (dict(teacher_scale=0), "teacher_scale"),
           # depth 1/2 (1 + 1/4) = 0.625 for two modes at scale 1, decay 1/2
           (dict(teacher_rank=2, escape="loss", loss_drop=0.625), "loss_drop"),
           # width 1 fits only the first mode: depth 1/2
           (dict(teacher_rank=2, width=1, escape="loss", loss_drop=0.55), "loss_drop")]
    for extra, name in bad:
        with pytest.raises(ConfigError, match=name):
            Config.from_dict(landscape="linear_network", **extra)
    Config.from_dict(landscape="linear_network", teacher_rank=2, escape="loss", loss_drop=0.62)


def test_teacher_has_the_declared_singular_values_and_depends_on_the_seed_alone():
    c = Config.from_dict(**SMALL)
    a = teacher_arrays(c)
    U, V = a["U"], a["V"]
    np.testing.assert_allclose(U.T @ U, np.eye(2), atol=1e-14)
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-14)
    L = make_landscape(c)
    sv = np.linalg.svd(np.asarray(L.S), compute_uv=False)
    np.testing.assert_allclose(sv[:2], [1.5, 0.75], rtol=1e-13)
    np.testing.assert_allclose(sv[2:], 0, atol=1e-13)
    np.testing.assert_allclose(singular_values(c.to_dict()), [1.5, 0.75])
    again = teacher_arrays(c.replace(width=9, teacher_scale=3.0))
    assert all(np.array_equal(a[k], again[k]) for k in a)
    other = teacher_arrays(c.replace(landscape_seed=4))
    assert not np.array_equal(a["U"], other["U"])


# --- value and gradient --------------------------------------------------------------------
def test_value_and_gradient_match_closed_form_autodiff_and_finite_differences():
    L = make_landscape(Config.from_dict(**SMALL))
    S = np.asarray(L.S)
    W = _random_params(jax.random.key(0), L)
    f, g, a = L.value_and_grad_with_coordinates(W)
    P = np.asarray(W["W2"]) @ np.asarray(W["W1"])
    np.testing.assert_allclose(f, 0.5 * np.sum((P - S) ** 2) - 0.5 * np.sum(S**2), rtol=1e-12)
    auto = jax.grad(lambda w: L.value(w))(W)  # autodiff through the value alone
    for k in W:
        np.testing.assert_allclose(g[k], auto[k], rtol=1e-12, atol=1e-13)
    flat, unravel = ravel_pytree(W)
    gflat = ravel_pytree(g)[0]
    rng = np.random.default_rng(1)
    for _ in range(3):
        d = jnp.asarray(rng.standard_normal(flat.shape))
        h = 1e-5
        fd = (L.value(unravel(flat + h * d)) - L.value(unravel(flat - h * d))) / (2 * h)
        np.testing.assert_allclose(fd, jnp.dot(gflat, d), rtol=1e-8)
    # the escape coordinates are the inner products with the escape directions
    for i in range(2):
        E = L.escape_direction(i)
        np.testing.assert_allclose(a[i], sum(jnp.sum(E[k] * W[k]) for k in W), rtol=1e-12)


def test_origin_is_critical_with_value_zero():
    L = make_landscape(Config.from_dict(**SMALL))
    f, g, a = L.value_and_grad_with_coordinates(L.saddle_point)
    assert float(f) == 0.0 and not np.any(a)
    assert all(not np.any(x) for x in jax.tree.leaves(g))


# --- the Hessian at the origin -------------------------------------------------------------
def test_hessian_at_origin_is_plus_minus_s_with_multiplicity_width_and_flat_elsewhere():
    c = Config.from_dict(**SMALL)
    L = make_landscape(c)
    flat, unravel = ravel_pytree(L.saddle_point)
    H = np.asarray(jax.hessian(lambda x: L.value(unravel(x)))(flat))
    assert H.shape == (c.D, c.D) == (35, 35)
    s = singular_values(c.to_dict())
    h = c.width
    expected = np.sort(np.concatenate([-s.repeat(h), s.repeat(h), np.zeros(c.D - 4 * h)]))
    np.testing.assert_allclose(np.linalg.eigvalsh(H), expected, atol=1e-12)
    # E_i: unit, orthonormal, eigenvectors with eigenvalue -s_i (same signs on both layers)
    Es = [np.asarray(ravel_pytree(L.escape_direction(i))[0]) for i in range(2)]
    np.testing.assert_allclose(np.array(Es) @ np.array(Es).T, np.eye(2), atol=1e-14)
    for i, E in enumerate(Es):
        np.testing.assert_allclose(H @ E, -s[i] * E, atol=1e-12)
        np.testing.assert_allclose(L.direction_coordinates(unravel(jnp.asarray(E))),
                                   np.eye(2)[i], atol=1e-14)
    # the opposite sign on the second layer is the +s_i eigenvector
    flip = {"W1": L.escape_direction(0)["W1"], "W2": -L.escape_direction(0)["W2"]}
    F = np.asarray(ravel_pytree(flip)[0])
    np.testing.assert_allclose(H @ F, s[0] * F, atol=1e-12)


# --- gradient flow -------------------------------------------------------------------------
def test_gradient_descent_from_a_balanced_start_follows_the_logistic_law():
    """Along E_0 from W = x E_0: W1 = a e_0 v^T, W2 = a u e_0^T with a = x/sqrt(2), so
    c = a^2 = x^2/2 and the escape coordinate is sqrt(2) a = sqrt(2 c). GD with step eta
    follows dc/dt = 2c(s - c), c(t) = s / (1 + (s/c0 - 1) exp(-2 s t)), t = eta k, to
    first order in eta: the worst relative error over the sigmoid (at its steep part) was
    measured at 2.0e-2, 1.0e-2, 5.1e-3 for eta = 2e-3, 1e-3, 5e-4; the test runs
    eta = 1e-3 and allows 1.5e-2. The run stops at radius 1.99 (c = 0.99 s)."""
    s, eta, x, radius = 2.0, 1e-3, 2e-3, 1.99
    c = Config.from_dict(landscape="linear_network", m=4, n=3, width=5, teacher_rank=2,
                         teacher_scale=s, optimizer="sgd", learning_rate=eta, noise="none",
                         init="saddle", init_escape=x, escape="projection", radius=radius,
                         max_steps=8000,
                         dtype="float64")
    res = simulate(c, trace_stride=1)
    tr = res.traces[0]
    a0 = np.asarray(tr["escape_coordinates"][:, 0])
    k = np.arange(len(a0))
    c_sim = a0**2 / 2
    c0 = x**2 / 2
    c_law = s / (1 + (s / c0 - 1) * np.exp(-2 * s * eta * k))
    assert c_law[-1] > 0.99 * s  # the run crosses the whole sigmoid
    err = np.max(np.abs(c_sim / c_law - 1))
    assert err < 1.5e-2, err
    # the loss along the path is 1/2 c^2 - s c (the second mode stays untouched)
    np.testing.assert_allclose(tr["loss"], 0.5 * c_sim**2 - s * c_sim, rtol=1e-9, atol=1e-15)
    # no drift off the escape direction (balanced start, one mode); the trace computes it
    # as sqrt(||X||^2 - a^2), so float64 cancellation leaves about sqrt(eps) * ||X||
    assert np.max(tr["orthogonal_drift"]) < 1e-6
    # the escape time against the law's time to reach c = R^2/2: 4605 vs 4603.3 steps
    c_r = radius**2 / 2
    t_r = np.log((s / c0 - 1) / (s / c_r - 1)) / (2 * s) / eta
    assert res.runs[0].escaped and abs(res.runs[0].escape_time - t_r) < 5e-3 * t_r


# --- a finite data set (samples = N > 0) ---------------------------------------------------
DATA = dict(SMALL, samples=7)


def _empirical(L, W):
    """The empirical loss from the rows of X directly: mean_b 1/2 ||(P - S) x_b||^2 minus
    its value at the origin, mean_b 1/2 ||S x_b||^2 (NumPy, float64)."""
    X, S = np.asarray(L.X), np.asarray(L.S)
    P = np.asarray(W["W2"]) @ np.asarray(W["W1"])
    return 0.5 * np.mean(np.sum(((P - S) @ X.T) ** 2, 0) - np.sum((S @ X.T) ** 2, 0))


def test_data_set_is_drawn_once_from_the_landscape_seed():
    c = Config.from_dict(**DATA)
    L = make_landscape(c)
    X = np.asarray(L.X)
    assert X.shape == (7, 4)
    np.testing.assert_allclose(L.Sigma, X.T @ X / 7, rtol=1e-14)
    np.testing.assert_allclose(L.SSigma, np.asarray(L.S) @ X.T @ X / 7, rtol=1e-12, atol=1e-15)
    # the run's seed, the width and teacher_scale leave the data; landscape_seed draws anew
    for same in (dict(seed=9), dict(width=2), dict(teacher_scale=4.0)):
        assert np.array_equal(make_landscape(c.replace(**same)).X, X)
    assert not np.array_equal(make_landscape(c.replace(landscape_seed=4)).X, X)
    # and the teacher is the population's (its own streams)
    pop = make_landscape(c.replace(samples=0))
    assert pop.X is None and pop.Sigma is None and np.array_equal(pop.S, L.S)
    bad = [(dict(samples=2**25), "samples"), (dict(samples=-1), "samples"),
           (dict(m=8, n=2**20, samples=2**8), "samples"),  # 2^28 entries
           (dict(teacher_rank=2, escape_rank=2, samples=1), "escape_rank")]
    for extra, name in bad:
        with pytest.raises(ConfigError, match=name):
            Config.from_dict(**dict(SMALL, **extra))
    assert Config.from_dict().samples is None  # the field applies to this family only


def test_empirical_value_and_gradient_match_autodiff_and_finite_differences():
    L = make_landscape(Config.from_dict(**DATA))
    W = _random_params(jax.random.key(2), L)
    f, g, a = L.value_and_grad_with_coordinates(W)
    np.testing.assert_allclose(f, _empirical(L, W), rtol=1e-12)
    # the closed form: dW1 = W2^T (P - S) Sigma, dW2 = (P - S) Sigma W1^T
    G = (np.asarray(W["W2"]) @ np.asarray(W["W1"]) - np.asarray(L.S)) @ np.asarray(L.Sigma)
    np.testing.assert_allclose(g["W1"], np.asarray(W["W2"]).T @ G, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g["W2"], G @ np.asarray(W["W1"]).T, rtol=1e-12, atol=1e-14)
    auto = jax.grad(lambda w: L.value(w))(W)
    for k in W:
        np.testing.assert_allclose(g[k], auto[k], rtol=1e-12, atol=1e-13)
    flat, unravel = ravel_pytree(W)
    gflat = ravel_pytree(g)[0]
    rng = np.random.default_rng(3)
    for _ in range(3):
        d = jnp.asarray(rng.standard_normal(flat.shape))
        h = 1e-5
        fd = (_empirical(L, unravel(flat + h * d)) - _empirical(L, unravel(flat - h * d))) / (2 * h)
        np.testing.assert_allclose(fd, jnp.dot(gflat, d), rtol=1e-8)
    f0, g0, _ = L.value_and_grad_with_coordinates(L.saddle_point)
    assert float(f0) == 0.0 and all(not np.any(x) for x in jax.tree.leaves(g0))


def test_empirical_hessian_at_origin_is_plus_minus_svals_of_s_sigma():
    """With Sigma-hat the origin's second-order term is -<W2 W1, S Sigma-hat>: the spectrum
    is +-mu_i (the singular values of S Sigma-hat), multiplicity width each, 0 elsewhere,
    and E_i (from the SVD of S Sigma-hat) has E_i^T H E_i = -mu_i."""
    c = Config.from_dict(**DATA)
    L = make_landscape(c)
    flat, unravel = ravel_pytree(L.saddle_point)
    H = np.asarray(jax.hessian(lambda x: L.value(unravel(x)))(flat))
    mu = np.linalg.svd(np.asarray(L.S) @ np.asarray(L.Sigma), compute_uv=False)[:2]
    assert not np.allclose(mu, singular_values(c.to_dict()), rtol=0.05)  # Sigma-hat matters
    h = c.width
    expected = np.sort(np.concatenate([-mu.repeat(h), mu.repeat(h), np.zeros(c.D - 4 * h)]))
    np.testing.assert_allclose(np.linalg.eigvalsh(H), expected, atol=1e-12)
    Es = [np.asarray(ravel_pytree(L.escape_direction(i))[0]) for i in range(2)]
    np.testing.assert_allclose(np.array(Es) @ np.array(Es).T, np.eye(2), atol=1e-14)
    for i, E in enumerate(Es):
        np.testing.assert_allclose(E @ H @ E, -mu[i], rtol=1e-12)
        np.testing.assert_allclose(H @ E, -mu[i] * E, atol=1e-12)


def test_samples_zero_is_the_population_loss_bit_for_bit():
    """samples = 0 (the default) computes the population loss exactly as before the data
    set existed: the same operations give the same bits."""
    c = Config.from_dict(**SMALL)
    assert c.samples == 0
    L = make_landscape(c)
    assert L.X is None and L.Sigma is None and L.SSigma is None
    W = _random_params(jax.random.key(4), L)
    f, g, _ = L.value_and_grad_with_coordinates(W)
    hi = jax.lax.Precision.HIGHEST
    P = jnp.matmul(W["W2"], W["W1"], precision=hi)
    G = P - L.S
    assert float(f) == float(jnp.sum(P * (0.5 * P - L.S)))
    assert np.array_equal(g["W1"], jnp.matmul(W["W2"].T, G, precision=hi))
    assert np.array_equal(g["W2"], jnp.matmul(G, W["W1"].T, precision=hi))
    a = teacher_arrays(c)
    assert np.array_equal(L.U, a["U"]) and np.array_equal(L.V, a["V"])


def test_full_batch_on_a_data_set_is_noise_none():
    """noise = none on a data set: deterministic gradient descent on the empirical loss;
    its loss trace is the empirical loss of the iterates, and it leaves the plateau."""
    c = Config.from_dict(landscape="linear_network", m=6, n=5, width=8, teacher_rank=1,
                         samples=64, noise="none", optimizer="sgd", seeds=2, max_steps=400,
                         dtype="float64")
    assert (c.init, c.escape, c.loss_drop) == ("random", "loss", 0.25)
    res = simulate(c, trace_stride=1)
    assert all(r.escaped for r in res.runs), [r.status for r in res.runs]
    L = make_landscape(c)
    tr = res.traces[0]
    assert tr["loss"][-1] <= -0.25
    # the depth is empirical: below -1/2 tr(S Sigma S^T) is out of reach
    S, Sig = np.asarray(L.S), np.asarray(L.Sigma)
    assert tr["loss"].min() >= -0.5 * np.trace(S @ Sig @ S.T) - 1e-12


# --- through the engine and the CLI --------------------------------------------------------
WIDE = dict(landscape="linear_network", m=16, n=16, width=64, teacher_rank=1,
            noise="isotropic", sigma=1e-3, init="random", init_scale=1e-3, seeds=4,
            escape="loss", loss_drop=0.25)


@pytest.mark.parametrize("optimizer,budget", [("adamw", 500), ("muon", 500), ("sgd", 500),
                                              ("mano", 12000)])
def test_every_optimizer_leaves_the_plateau(optimizer, budget):
    """Leaving the plateau: the loss falls by half the depth 1/2 s_1^2 (so by 0.25)."""
    c = Config.from_dict(optimizer=optimizer, max_steps=budget, **WIDE)
    assert c.D == 64 * 32
    res = simulate(c)
    assert all(r.escaped for r in res.runs), [r.status for r in res.runs]
    assert all(r.final_loss <= -0.25 for r in res.runs)


def test_batched_runs_equal_single_runs_bit_for_bit_and_scale_does_not_recompile():
    c = Config.from_dict(landscape="linear_network", m=6, n=5, width=7, teacher_rank=2,
                         escape_rank=2, optimizer="muon", noise="isotropic", sigma=1e-3,
                         init="random", init_scale=1e-2, seeds=3, max_steps=400,
                         escape="loss", loss_drop=0.2)
    together = simulate(c)
    alone = simulate(c, batch_size=1)
    assert [r.escape_time for r in together.runs] == [r.escape_time for r in alone.runs]
    assert [r.final_loss for r in together.runs] == [r.final_loss for r in alone.runs]
    assert all(r.escaped for r in together.runs)
    before = engine.compile_count()
    simulate(c.replace(teacher_scale=2.0, seed=5))
    assert engine.compile_count() == before


def test_cli_runs_the_family_in_process(capsys):
    argv = ["run", "--landscape", "linear_network", "--m", "6", "--n", "5", "--width", "8",
            "--teacher-rank", "2", "--teacher-scale", "1.5", "--optimizer", "sgd",
            "--noise", "isotropic", "--sigma", "0.001", "--init", "random",
            "--init-scale", "0.01", "--escape", "loss", "--loss-drop", "0.5",
            "--seeds", "2", "--max-steps", "2000", "--json", "--quiet"]
    assert cli.main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["config"]["landscape"] == "linear_network" and d["config"]["width"] == 8
    assert all(r["escaped"] for r in d["runs"]), d["runs"]
