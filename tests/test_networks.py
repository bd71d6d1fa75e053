"""The bridge from the linear network to the spectral saddle (saddle.networks), the networks
spec, and the networks section of the reproduction."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from saddle import Config, experiments, networks, reproduce
from saddle.landscapes import make_landscape

SMALL = dict(landscape="linear_network", m=3, n=4, width=5, teacher_rank=2, teacher_scale=1.5,
             teacher_decay=0.5, landscape_seed=3, dtype="float64", init="random",
             init_scale=1e-3, escape="loss", loss_drop=0.05)
GD = dict(landscape="linear_network", m=16, n=16, width=64, init="random", init_scale=1e-3,
          escape="loss", loss_drop=0.05, optimizer="sgd", learning_rate=0.05, noise="none",
          max_steps=2000, seeds=4)


def _network_hessian_eigs(config):
    L = make_landscape(config)
    flat, unravel = ravel_pytree(L.saddle_point)
    H = jax.hessian(lambda w: L.value(unravel(w)))(jnp.zeros_like(flat))
    return np.linalg.eigvalsh(np.asarray(H, np.float64))


def test_equivalent_preserves_D_and_the_escape_curvature():
    """jax.hessian of the network at the origin against the equivalent's spectrum: the same
    D, the same most negative eigenvalue -s_1, and a flat bulk (|lambda| <= 1e-6 s_1)."""
    c = Config.from_dict(**SMALL)
    eq = networks.spectral_equivalent(c)
    assert eq.D == c.D == 5 * (3 + 4) and (eq.m, eq.n) == (5, 7)
    net = _network_hessian_eigs(c)
    np.testing.assert_allclose(net.min(), -1.5, atol=1e-10)
    assert np.sum(np.abs(net) < 1e-10) == c.D - 2 * 5 * 2  # flat except +-s_i, h each
    lam = np.sort(np.asarray(make_landscape(eq).eigenvalues(), float).ravel())
    assert lam[0] == pytest.approx(-1.5) and eq.gamma == 1.5 and eq.escape_rank == 1
    assert np.all(np.abs(lam[1:]) <= 1e-6 * 1.5 * (1 + 1e-9))
    assert eq.optimizer == c.optimizer and eq.learning_rate == c.learning_rate
    assert eq.init == "random" and eq.init_scale == c.init_scale
    assert eq.init_escape == pytest.approx(1e-3 * math.sqrt(5 - 1))
    # the equivalent's loss criterion crosses where the network's does along its line
    s, d = 1.5, 0.05
    a2 = 2 * (s - math.sqrt(s * s - 2 * d))
    assert eq.loss_drop == pytest.approx(s * a2 / 2)
    with pytest.raises(ValueError, match="landscape"):
        networks.spectral_equivalent(eq)


def test_noise_mapping_and_the_minibatch_scale_at_the_start():
    c = Config.from_dict(**{**SMALL, "noise": "minibatch", "minibatch_size": 8})
    eq = networks.spectral_equivalent(c)
    assert eq.noise == "isotropic" and eq.sigma == pytest.approx(networks.minibatch_entry_std(c))
    assert networks.spectral_equivalent(c, noise="none").noise == "none"
    # the closed form against sampled minibatch noise at random starts of scale eps
    L = make_landscape(c)
    key = jax.random.PRNGKey(0)
    sq = []
    for _ in range(200):
        key, k1, k2, k3 = jax.random.split(key, 4)
        W = {"W1": 1e-3 * jax.random.normal(k1, (5, 4), jnp.float64),
             "W2": 1e-3 * jax.random.normal(k2, (3, 5), jnp.float64)}
        X = jax.random.normal(k3, (8, 4), jnp.float64)
        _, g, _ = L.value_and_grad_with_coordinates(W)
        mb = L.minibatch_gradient(W, X)
        sq.append(sum(float(jnp.sum((mb[k] - g[k]) ** 2)) for k in g) / c.D)
    assert math.sqrt(np.mean(sq)) == pytest.approx(networks.minibatch_entry_std(c), rel=0.1)


def test_gd_plateau_formula_against_noiseless_gd_on_the_network():
    """Gradient flow c(t) = s/(1 + (s/c0 - 1) e^{-2st}) from c0 = h eps^2/2 predicts the
    loss-criterion escape of full-batch GD within 10% (h = 64: |x|^2 ~ chi^2_64 spreads
    c0 by ~18%, which moves log(1/c0) by ~5%; lr s = 0.05 adds ~2.5%)."""
    c = Config.from_dict(**GD)
    p = networks.gd_plateau(c)
    s, c0 = 1.0, 64 * 1e-6 / 2
    assert p["c0"] == pytest.approx(c0)
    assert p["plateau_steps"] == pytest.approx(math.log(s / c0) / (2 * s) / 0.05)
    # c at the crossing time is the criterion's c*
    t = p["crossing_time"]
    assert s / (1 + (s / c0 - 1) * math.exp(-2 * s * t)) == pytest.approx(p["c_star"])
    measured = networks.measure(c)
    assert measured["escaped"] == 4
    assert measured["median"] == pytest.approx(p["crossing_steps"], rel=0.10)
    pred = networks.predict(c, run=False)
    assert pred["gd"]["crossing_steps"] == p["crossing_steps"]
    listed = {r["name"]: r for r in pred["theory"]}
    # every SGD escape-time result of the theory is listed (the SGD law among them)
    from saddle.theory import RESULTS

    assert set(listed) == {k for k, r in RESULTS.items()
                           if r.optimizer == "sgd" and r.quantity == "escape_time"
                           and r.applies_to(pred["equivalent"])}
    assert {"sgd_escape_mean", "sgd_diffusive_median"} <= set(listed)
    # The flat-saddle law is about SGD too, but its gamma = 0 assumption fails on a plateau
    # whose escape mode has curvature -s.
    assert listed["sgd_diffusive_median"]["assumptions_hold"] is False
    assert pred["theory"][0]["value"] == pytest.approx(measured["median"], rel=0.10)


TS = dict(landscape="teacher_student", m=2, n=6, width=4, teacher_width=3, teacher_scale=1.0,
          landscape_seed=3, dtype="float64", init="random", init_scale=1e-3, escape="loss",
          loss_drop=0.01, optimizer="muon")


def test_teacher_student_equivalent_has_the_plateau_hessians_lowest_eigenvalue():
    """The full Hessian at W* by jax.hessian (D = 32): its lowest eigenvalue is -gamma of
    the equivalent, with the multiplicity the bridge reports ((h - 1) x 2 here: a teacher of
    M = 3 units has two plateau escape modes); every other eigenvalue is >= 0."""
    c = Config.from_dict(**TS)
    L = make_landscape(c)
    flat, unravel = ravel_pytree(L.saddle_point)
    H = jax.hessian(lambda w: L.value(unravel(w)))(flat)
    eigs = np.linalg.eigvalsh(np.asarray(H, np.float64))
    p = networks.predict(c, run=False)
    eq, curv = p["equivalent"], p["curvature"]
    assert eq.landscape == "spectral" and eq.D == c.D == 32
    np.testing.assert_allclose(eq.gamma, -eigs[0], rtol=1e-8)
    close = np.abs(eigs - eigs[0]) < 1e-6 * abs(eigs[0])
    assert curv["multiplicity"] == int(close.sum()) == (c.width - 1) * 2
    assert curv["negative"] == int(np.sum(eigs < -1e-9 * np.abs(eigs).max()))
    assert eigs[curv["negative"]] > -1e-12  # the rest of the spectrum is stable or flat
    # the escape mode starts where E a^2 over the multiplicity directions puts it
    assert eq.init_escape == pytest.approx(1e-3 * math.sqrt(curv["multiplicity"] - 1))
    assert eq.loss_drop == c.loss_drop and eq.optimizer == "muon" and p["gd"] is None
    with pytest.raises(ValueError, match="^noise: "):
        networks.spectral_equivalent(c.replace(noise="minibatch"))
    assert networks.spectral_equivalent(c.replace(noise="minibatch"),
                                        noise="none").noise == "none"
    with pytest.raises(ValueError, match="^escape: "):
        networks.spectral_equivalent(c.replace(escape="alignment", loss_drop=None))


def test_networks_spec_loads_in_both_modes_and_every_point_has_an_equivalent():
    from saddle.sweep import load_spec

    assert "networks" in reproduce.EXPERIMENTS
    for quick in (False, True):
        spec = load_spec(reproduce.spec_path("networks"), quick=quick)
        assert {p.config.landscape for p in spec.points} == {"linear_network"}
        assert {p.config.escape for p in spec.points} == {"loss"}
        assert {p.config.init for p in spec.points} == {"random"}
        eq = networks.equivalent_points(spec)
        assert len({p.config.config_hash() for p in eq.points}) == len(spec.points)
        assert all(e.config.D == p.config.D for e, p in zip(eq.points, spec.points,
                                                             strict=True))
    quick = load_spec(reproduce.spec_path("networks"), quick=True)
    assert max(p.config.D for p in quick.points) <= 8192


def test_networks_spec_runs_every_optimizer_at_one_update_rms():
    """matched_rms over both leaves: every planned run's nominal update RMS is 2e-4, and its
    spectral equivalent runs at the network's rate."""
    from saddle.sweep import load_spec, plan_runs, update_norms_per_lr

    spec = load_spec(reproduce.spec_path("networks"), quick=True)
    assert {p.lr_protocol for p in spec.points} == {"matched_rms"}
    runs = plan_runs(spec)
    assert {r.config.optimizer for r in runs} == {"adamw", "muon", "mano", "sgd"}
    for r in runs:
        rms = r.config.learning_rate * update_norms_per_lr(r.config)["rms"]
        assert rms == pytest.approx(2e-4, rel=1e-12)
    rates = {(r.config.optimizer, r.config.noise, r.config.width): r.config.learning_rate
             for r in runs}
    for p, e in zip(spec.points, networks.equivalent_points(spec).points, strict=True):
        c = p.config
        assert e.config.learning_rate == rates[(c.optimizer, c.noise, c.width)]


def test_networks_section_renders_from_a_tiny_stored_sweep(tmp_path):
    from saddle.sweep import parse_spec, run_sweep

    spec = parse_spec(dict(name="networks", landscape="linear_network", m=4, n=4,
                           width=[4, 8], init="random", init_scale=1e-3, escape="loss",
                           loss_drop=0.05, noise="none", seeds=2, max_steps=3000,
                           optimizer=["sgd", "adamw"], learning_rate=0.05))
    run_sweep(spec, tmp_path / "results" / "networks")
    experiments._run_equivalents(spec, tmp_path)
    a = reproduce.analyse(tmp_path)
    res = a["networks"]["networks"]
    t = res["table"]
    assert len(t) == 4 and t["eq_median"].notna().all()
    assert t.loc[t["method"] == "sgd", "gd_flow"].notna().all()
    assert len(res["exponents"]) == 2 and "eq_exponent" in res["exponents"].columns
    assert any("ordering of optimizers" in line for line in res["carry_over"])
    figs = reproduce.make_figures(tmp_path, a)
    assert ("networks.png" in [f for f, _ in figs]) and (tmp_path / "networks.png").exists()
    text = reproduce.write_report(tmp_path, a, figs, {"networks": {"wall_s": 1.0}},
                                  quick=True).read_text()
    assert "## Linear network against its spectral equivalent: networks" in text
    assert "### What carries over" in text and "eq_median" in text
    # a results directory without the networks experiment still reports
    b = reproduce.analyse(tmp_path / "elsewhere")
    assert b["networks"] == {}
    assert "Linear network" not in "\n".join(reproduce._report_networks(b))
