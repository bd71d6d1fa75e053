"""The ``alignment`` escape criterion: the landscapes' alignment against direct NumPy
computations, its escape step against the logistic law of gradient descent and against the
loss criterion, runs through the CLI, and the refusals (other landscapes, numba)."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saddle import Config, ConfigError, cli
from saddle.config import numba_unsupported
from saddle.engine.structure import resolve_backend
from saddle.landscapes import make_landscape
from saddle.landscapes.linear_network import teacher_arrays
from saddle.landscapes.teacher_student import plateau_arrays
from saddle.simulate import simulate

NET = dict(landscape="linear_network", m=5, n=4, width=6, teacher_rank=2, teacher_scale=1.5,
           landscape_seed=3, dtype="float64", escape="alignment")
TS = dict(landscape="teacher_student", m=1, n=8, width=4, teacher_width=2, teacher_scale=3.0,
          landscape_seed=3, dtype="float64", escape="alignment")


def _random(L, key=0, scale=0.7):
    w = L.saddle_point
    k1, k2 = jax.random.split(jax.random.key(key))
    return {"W1": w["W1"] + scale * jax.random.normal(k1, w["W1"].shape, jnp.float64),
            "W2": w["W2"] + scale * jax.random.normal(k2, w["W2"].shape, jnp.float64)}


# --- config ----------------------------------------------------------------------------------
def test_field_applies_only_to_its_criterion_and_is_checked():
    c = Config.from_dict(**NET)
    assert c.alignment == 0.5 and c.loss_drop is None and c.radius is None
    assert Config.from_dict(**{**NET, "escape": "loss"}).alignment is None
    assert Config.from_dict(**NET, alignment=1.0).alignment == 1.0
    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(ConfigError, match="^alignment: "):
            Config.from_dict(**NET, alignment=bad)


def test_other_landscapes_and_numba_are_refused():
    with pytest.raises(ConfigError) as e:
        Config.from_dict(landscape="spectral", escape="alignment")
    assert e.value.field == "escape"
    assert "linear_network" in str(e.value) and "teacher_student" in str(e.value)
    with pytest.raises(ConfigError, match="^backend: .*alignment"):
        Config.from_dict(**NET, optimizer="adamw", backend="numba")
    # auto never picks the numba kernels for it: they check projection and loss only
    c = Config.from_dict(**NET, optimizer="adamw")
    assert "alignment" in numba_unsupported(c.to_dict())
    assert resolve_backend(c) == "jax"


def test_cli_refuses_the_spectral_landscape_in_one_line(capsys):
    assert cli.main(["run", "--landscape", "spectral", "--escape", "alignment"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "escape" in err and "linear_network" in err


# --- the values ------------------------------------------------------------------------------
@pytest.mark.parametrize("samples", [0, 9])
def test_network_alignment_is_u1_p_v1_over_s1(samples):
    c = Config.from_dict(**NET, samples=samples)
    L = make_landscape(c)
    W = _random(L)
    P = np.asarray(W["W2"]) @ np.asarray(W["W1"])
    t = teacher_arrays(c)
    S = c.teacher_scale * t["S_unit"]
    u, v = np.asarray(L.U[:, 0]), np.asarray(L.V[:, 0])
    if samples == 0:  # the teacher's own first pair, s_1 = teacher_scale
        np.testing.assert_allclose(np.abs(u @ t["U"][:, 0]), 1.0, rtol=1e-12)
        np.testing.assert_allclose(u @ S @ v, c.teacher_scale, rtol=1e-12)
    expected = (u @ P @ v) / (u @ S @ v)
    np.testing.assert_allclose(float(L.alignment(W)), expected, rtol=1e-12)
    assert float(L.alignment(L.saddle_point)) == 0.0
    # a student whose end-to-end map is the teacher's first mode has alignment 1
    e = np.zeros(c.width)
    e[0] = 1.0
    W1 = np.outer(e, v) * math.sqrt(u @ S @ v)
    W2 = np.outer(u, e) * math.sqrt(u @ S @ v)
    np.testing.assert_allclose(float(L.alignment({"W1": W1, "W2": W2})), 1.0, rtol=1e-12)


def test_teacher_student_alignment_is_the_rescaled_best_unit_overlap():
    c = Config.from_dict(**TS)
    L = make_landscape(c)
    a = plateau_arrays(c)
    B1 = a["B1"]
    T00 = B1[0] @ B1[0] / c.n
    assert T00 == pytest.approx(1.0, rel=1e-12)
    W = _random(L, scale=0.3)
    W1 = np.asarray(W["W1"])
    Q = W1 @ W1.T / c.n
    R = W1 @ B1.T / c.n
    rho = R[:, 0] / np.sqrt(np.diag(Q) * T00)
    rho_star = 1 / math.sqrt(c.teacher_width)  # population plateau: w = r sum_p B1[p]
    expected = (rho.max() - rho_star) / (1 - rho_star)
    np.testing.assert_allclose(float(L.alignment(W)), expected, rtol=1e-10)
    assert abs(float(L.alignment(L.saddle_point))) < 1e-12
    # a unit equal to teacher unit 0 (any positive scale) is perfect specialization
    W1 = np.asarray(L.W1s).copy()
    W1[2] = 0.3 * B1[0]
    np.testing.assert_allclose(float(L.alignment({"W1": W1, "W2": L.W2s})), 1.0, rtol=1e-12)


# --- escape ------------------------------------------------------------------------------------
def test_gd_escapes_at_the_logistic_midpoint_with_the_loss_criterion():
    """From the balanced start x E_0, gradient descent follows c(t) = s / (1 + (s/c0 - 1)
    exp(-2 s eta k)) (tests/test_linear_network) and the alignment is c / s: it reaches 1/2
    at the logistic midpoint k = ln(s/c0 - 1) / (2 s eta), where the loss c^2/2 - s c is
    -3 s^2 / 8. The alignment criterion at 0.5 and the loss criterion at 3 s^2 / 8 stop at
    the same step, the midpoint to the law's first-order accuracy in eta."""
    s, eta, x = 2.0, 1e-3, 2e-3
    base = dict(NET, teacher_scale=s, optimizer="sgd", learning_rate=eta, noise="none",
                init="saddle", init_escape=x, max_steps=8000)
    by_alignment = simulate(Config.from_dict(**base, alignment=0.5)).runs[0]
    by_loss = simulate(Config.from_dict(**{**base, "escape": "loss"},
                                        loss_drop=3 * s * s / 8)).runs[0]
    c0 = x * x / 2
    midpoint = math.log(s / c0 - 1) / (2 * s * eta)
    assert by_alignment.escaped and by_loss.escaped
    assert abs(by_alignment.escape_time - midpoint) < 5e-3 * midpoint
    assert abs(by_alignment.escape_time - by_loss.escape_time) <= 1
    # the iterate it stopped at has alignment >= 1/2 and its predecessor < 1/2
    tr = simulate(Config.from_dict(**base, alignment=0.5), trace_stride=1).traces[0]
    a = np.asarray(tr["escape_coordinates"][:, 0]) ** 2 / 2 / s  # c / s along E_0
    assert a[-1] >= 0.5 > a[-2]


def test_random_start_alignment_and_loss_criteria_agree():
    """From a small random start (every hidden unit) full-batch GD leaves the plateau along
    the first mode; the loss is c^2/2 - s c plus O(init_scale^2): both criteria at c = s/2
    stop within a step of each other."""
    s = 1.0
    base = dict(NET, teacher_scale=s, optimizer="sgd", learning_rate=0.05, noise="none",
                init="random", init_scale=1e-3, max_steps=4000, seeds=3)
    a = simulate(Config.from_dict(**base, alignment=0.5))
    b = simulate(Config.from_dict(**{**base, "escape": "loss"}, loss_drop=3 * s * s / 8))
    ta = [r.escape_time for r in a.runs]
    tb = [r.escape_time for r in b.runs]
    assert all(r.escaped for r in a.runs) and all(r.escaped for r in b.runs)
    assert max(abs(p - q) for p, q in zip(ta, tb, strict=True)) <= 1, (ta, tb)


@pytest.mark.parametrize("optimizer", ["muon", "sgd"])
def test_cli_network_run_escapes_by_alignment(optimizer, capsys):
    argv = ["run", "--landscape", "linear_network", "--m", "16", "--n", "16", "--width", "64",
            "--teacher-rank", "1", "--noise", "minibatch", "--minibatch-size", "16",
            "--optimizer", optimizer, "--escape", "alignment", "--seeds", "2", "--json",
            "--quiet"]
    assert cli.main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["config"]["escape"] == "alignment" and d["config"]["alignment"] == 0.5
    assert all(r["escaped"] for r in d["runs"]), d["runs"]
    # escaped at alignment 1/2 means the loss is near c^2/2 - s c = -3/8 (s = 1)
    assert all(-0.6 < r["final_loss"] < -0.2 for r in d["runs"]), d["runs"]


def test_teacher_student_escapes_by_alignment():
    """From W* + 1e-3 Z, Muon specializes a unit to teacher unit 0 (alignment 1/2) and the
    loss has then fallen well below the plateau."""
    c = Config.from_dict(**TS, optimizer="muon", init="random", init_scale=1e-3, seeds=2,
                         max_steps=600)
    res = simulate(c)
    assert all(r.escaped for r in res.runs), [r.status for r in res.runs]
    assert all(r.final_loss < 0 for r in res.runs)


def test_bridge_maps_alignment_to_the_equivalent_loss_threshold():
    """Alignment A is c = A s on the network's escape line, the same point as the loss
    criterion at Delta = s c - c^2/2: both map to one spectral equivalent and one GD
    crossing."""
    from saddle.networks import gd_plateau, spectral_equivalent

    s, A = 1.5, 0.3
    base = dict(NET, teacher_rank=1, optimizer="sgd", learning_rate=0.05, init_scale=1e-3,
                teacher_scale=s)
    by_a = Config.from_dict(**base, alignment=A)
    c = A * s
    by_loss = Config.from_dict(**{**base, "escape": "loss"}, loss_drop=s * c - c * c / 2)
    assert spectral_equivalent(by_a).loss_drop == pytest.approx(
        spectral_equivalent(by_loss).loss_drop, rel=1e-12)
    assert gd_plateau(by_a)["crossing_steps"] == pytest.approx(
        gd_plateau(by_loss)["crossing_steps"], rel=1e-9)
