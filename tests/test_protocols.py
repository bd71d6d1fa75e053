"""Learning-rate protocols: the nominal norm table, matched protocols, distinct cells, and
stability edges that are edges."""

from __future__ import annotations

import functools
import math
import subprocess
import sys

import numpy as np
import pytest

from saddle import Config
from saddle.errors import SaddleInputError
from saddle.sweep import Store, parse_spec, plan_runs, run_sweep, update_norms_per_lr
from saddle.sweep import runner as runner_mod
from saddle.sweep.protocols import find_stability_edge

SMALL = dict(seeds=2, basis="coherent", max_steps=60, noise="isotropic", sigma=0.01)
OPTIMIZERS = ("adamw", "muon", "mano", "sgd", "sign_descent", "normalized_gd")
PROBE_SEEDS = list(range(10**6, 10**6 + 4))


def _diverged(c: Config, lr: float, steps: int = 300) -> bool:
    from saddle.engine import DIVERGED, run_batch

    probe = c.replace(max_steps=min(c.max_steps, steps), seeds=1, learning_rate=lr)
    out = run_batch([probe] * len(PROBE_SEEDS), PROBE_SEEDS)
    return bool(np.any(np.asarray(out.status) == DIVERGED))


# --- the norm table ------------------------------------------------------------------------


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("m, n", [(64, 64), (1024, 1024), (64, 32)])
def test_norm_table_relations(opt, m, n):
    c = Config.from_dict(optimizer=opt, m=m, n=n, noise="isotropic", sigma=0.01)
    t = update_norms_per_lr(c)
    assert set(t) == {"rms", "frobenius", "spectral"}
    assert t["frobenius"] == pytest.approx(t["rms"] * math.sqrt(m * n))
    if opt == "muon":  # keller scale sqrt(max(1, m/n)): every singular value equals it
        assert t["spectral"] == pytest.approx(math.sqrt(max(1, m / n)))
    else:  # the incoherent convention
        assert t["spectral"] == pytest.approx(t["rms"] * (math.sqrt(m) + math.sqrt(n)))
    if opt == "normalized_gd":
        assert t["frobenius"] == pytest.approx(1.0)


@pytest.mark.parametrize("opt, kw", [("muon", dict(orthogonalizer="polar")),
                                     ("sign_descent", {}), ("normalized_gd", {})])
def test_norm_table_is_what_the_optimizer_does(opt, kw):
    """Measured on one update of a dense random gradient: Muon polar's spectral norm is
    exact, sign descent's and normalized GD's within 15% of sqrt m + sqrt n (finite size)."""
    import jax
    import jax.numpy as jnp

    from saddle.optimizers import from_config

    m, n = 96, 64
    c = Config.from_dict(optimizer=opt, m=m, n=n, learning_rate=1.0, **kw)
    tx = from_config(c)
    W = jax.random.normal(jax.random.key(0), (m, n), jnp.float64)
    G = jax.random.normal(jax.random.key(1), (m, n), jnp.float64)
    u, _ = tx.update(G, tx.init(W), W)
    u = np.asarray(u)
    t = update_norms_per_lr(c)
    assert np.linalg.norm(u) == pytest.approx(t["frobenius"], rel=1e-6)
    assert np.linalg.norm(u, 2) == pytest.approx(t["spectral"], rel=1e-6 if opt == "muon"
                                                 else 0.15)


# --- matched protocols ------------------------------------------------------------------------


def test_matched_protocols_set_the_named_norm_and_rows_say_which(tmp_path):
    spec = parse_spec(dict(SMALL, m=16, n=16, optimizer=["adamw", "muon"],
                           lr_protocol=["fixed", "matched_frobenius", "matched_spectral", "tuned"],
                           lr_grid=[0.5, 2], target_frobenius=0.05, target_spectral=0.1))
    assert (spec.target_rms, spec.target_frobenius, spec.target_spectral) == (2e-4, 0.05, 0.1)
    by = {(r.config.optimizer, r.lr_protocol): r.config.learning_rate for r in plan_runs(spec)}
    assert by[("adamw", "matched_frobenius")] == pytest.approx(0.05 / (0.2 * 16))
    assert by[("adamw", "matched_spectral")] == pytest.approx(0.1 / (0.2 * 8))
    assert by[("muon", "matched_frobenius")] == pytest.approx(0.05 / 4)
    assert by[("muon", "matched_spectral")] == pytest.approx(0.1)
    run_sweep(spec, tmp_path)
    df = Store(tmp_path).runs()
    for col in runner_mod.PROTOCOL_COLUMNS:
        assert col in df.columns, col
    norms = df.groupby("lr_protocol")["lr_norm"].unique().to_dict()
    assert {k: list(v) for k, v in norms.items()} == {
        "fixed": ["none"], "matched_frobenius": ["frobenius"], "matched_spectral": ["spectral"],
        "tuned": ["none"]}
    tuned = df[df["lr_protocol"] == "tuned"]
    assert (tuned["lr_grid"] == "0.5,2").all()
    assert np.allclose(tuned["learning_rate"], tuned["lr_base"] * tuned["lr_multiplier"])
    assert df["edge_lr"].isna().all() and not df["edge_capped"].any()


def test_targets_are_validated():
    with pytest.raises(SaddleInputError, match=r"^spec: target_spectral: got -1; allowed"):
        parse_spec(dict(SMALL, m=8, n=8, target_spectral=-1))


# --- no two protocols produce identical cells -----------------------------------------------


def test_identical_cells_are_refused_in_one_line():
    # AdamW at its default lr 1e-3 has nominal RMS 0.2 x 1e-3 = the default target_rms.
    spec = parse_spec(dict(SMALL, m=8, n=8, optimizer="adamw",
                           lr_protocol=["fixed", "matched_rms"]))
    with pytest.raises(SaddleInputError) as e:
        plan_runs(spec)
    msg = str(e.value)
    assert msg.startswith("spec: lr_protocol: fixed and matched_rms give adamw the same runs")
    assert "\n" not in msg
    # Muon's default lr 0.02 is the default spectral target on a square matrix.
    spec = parse_spec(dict(SMALL, m=8, n=8, optimizer="muon",
                           lr_protocol=["fixed", "matched_spectral"]))
    with pytest.raises(SaddleInputError, match="fixed and matched_spectral give muon"):
        plan_runs(spec)
    # Excluding one of the two leaves a spec that plans.
    spec = parse_spec(dict(SMALL, m=8, n=8, optimizer=["adamw", "muon"],
                           lr_protocol=["fixed", "matched_rms"],
                           exclude=[dict(optimizer="adamw", lr_protocol="matched_rms")]))
    assert len(plan_runs(spec)) == 3 * 2


def test_identical_cells_exit_2_from_the_cli(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('optimizer = "adamw"\nm = 8\nn = 8\nseeds = 2\nmax_steps = 20\n'
                    'lr_protocol = ["fixed", "matched_rms"]\n')
    p = subprocess.run([sys.executable, "-m", "saddle", "sweep", str(spec), "--out",
                        str(tmp_path / "out"), "--quiet"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "lr_protocol" in lines[0] and "adamw" in lines[0]


# --- stability edges that are edges -------------------------------------------------------


def test_an_edge_beyond_the_grid_is_bracketed():
    # Plain SGD on a bulk of curvature 1 diverges once lr > 2; the grid stops at 0.2. radius
    # 1e6: no escape ends a probe early (an escape counts as stable; with the default radius
    # runs above the edge escape before they blow up, and the probes are not monotone).
    c = Config.from_dict(optimizer="sgd", m=8, n=8, bulk_scale=1.0, learning_rate=0.1,
                         basis="coherent", max_steps=400, noise="isotropic", sigma=0.01,
                         radius=1e6)
    edge = find_stability_edge(c, (1.0, 2.0))
    assert not edge["capped"] and edge["edge_lr"] > 0.2
    assert edge["edge_hi"] / edge["edge_lr"] <= edge["resolution"] == 1.1
    assert 1.9 <= edge["edge_lr"] <= 2.2
    assert not _diverged(c, edge["edge_lr"])
    assert _diverged(c, edge["edge_hi"]) and _diverged(c, edge["edge_lr"] * 1.1)


def test_no_divergence_up_to_the_ceiling_is_capped():
    c = Config.from_dict(optimizer="sgd", m=8, n=8, bulk_scale=1.0, learning_rate=1e-3,
                         basis="coherent", max_steps=100, noise="isotropic", sigma=0.01)
    edge = find_stability_edge(c, (1.0,), ceiling=16.0)
    assert edge["capped"] and edge["edge_hi"] is None
    assert edge["edge_lr"] == pytest.approx(16e-3) and "ceiling" in edge["reason"]
    assert edge["probes"] == 3  # x1, x4, x16


def test_default_search_grows_to_the_ceiling(monkeypatch):
    """Nothing ever diverges: the multiplier grows x4 from the top of the grid to 1e6."""
    import saddle.engine as engine

    calls = []

    def never(configs, seeds, **kw):
        calls.append(configs[0].learning_rate)
        return type("Out", (), dict(status=np.full(len(configs), engine.ESCAPED)))()

    monkeypatch.setattr(engine, "run_batch", never)
    c = Config.from_dict(optimizer="adamw", m=8, n=8)
    edge = find_stability_edge(c, (0.5, 1.0, 2.0))
    assert edge["capped"] and edge["multiplier"] == 1e6 and edge["ceiling"] == 1e6
    assert max(calls) == pytest.approx(1e-3 * 1e6)
    assert len(calls) == 1 + 1 + math.ceil(math.log(1e6 / 2, 4))


def test_edge_rows_carry_the_edge_and_whether_it_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_mod, "find_stability_edge",
                        functools.partial(find_stability_edge, ceiling=64.0))
    spec = parse_spec(dict(SMALL, optimizer="sgd", m=8, n=8, bulk_scale=1.0, radius=1e6,
                           learning_rate=[1e-3, 0.1], lr_protocol="stability_edge",
                           edge_grid=[1, 2]))
    run_sweep(spec, tmp_path)
    df = Store(tmp_path).runs()
    capped = df[df["lr_base"] == 1e-3]
    edge = df[df["lr_base"] == 0.1]
    assert len(capped) == len(edge) == 2
    assert capped["edge_capped"].all() and np.allclose(capped["edge_lr"], 64e-3)
    assert not edge["edge_capped"].any() and (edge["edge_lr"] == edge["learning_rate"]).all()
    assert (edge["edge_lr"] > 0.2).all()
    assert (df["lr_norm"] == "none").all()


def test_one_edge_search_serves_every_landscape_draw(tmp_path, monkeypatch):
    """The protocol sets the rate per condition and D: the edge is searched on the first
    draw and every draw of the point runs at it."""
    probes = []

    def spy(config, grid, **kw):
        probes.append(config.landscape_seed)
        return find_stability_edge(config, grid, ceiling=64.0, **kw)

    monkeypatch.setattr(runner_mod, "find_stability_edge", spy)
    spec = parse_spec(dict(SMALL, optimizer="sgd", m=8, n=8, bulk_scale=1.0, radius=1e6,
                           learning_rate=0.1, lr_protocol="stability_edge", edge_grid=[1, 2],
                           landscape_seed=5, landscape_draws=3))
    run_sweep(spec, tmp_path)
    df = Store(tmp_path).runs()
    assert probes == [5]
    assert sorted(df["landscape_seed"].unique()) == [5, 6, 7]
    assert df["learning_rate"].nunique() == 1 and not df["edge_capped"].any()
