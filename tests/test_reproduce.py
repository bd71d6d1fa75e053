"""The reproduction pipeline: verdict rules, trajectory fits, bound checks, the CLI end to end."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from saddle import reproduce
from saddle.reproduce import _classify_b, ballistic_fit, verdicts


def test_ballistic_fit_tells_linear_from_exponential():
    t = np.arange(0, 200.0)
    lin = 0.01 + 0.005 * t
    exp = 0.01 * np.exp(0.023 * t)
    assert ballistic_fit(t, lin, 1.0)["ballistic"]
    assert ballistic_fit(t, lin, 1.0)["slope"] == pytest.approx(0.005)
    assert not ballistic_fit(t, exp, 1.0)["ballistic"]
    noisy = lin + np.random.default_rng(0).normal(0, 0.05, t.size)
    assert not ballistic_fit(t, noisy, 1.0)["ballistic"]


@pytest.mark.parametrize("low, high, want", [
    (-0.05, 0.08, "dimension-free"),
    (0.8, 1.2, "O(D)"),
    (0.5, 1.1, "O(D)"),
    (0.3, 0.6, "grows with D (sub-linear)"),
    (-0.3, 0.4, "inconclusive"),
    (-0.9, -0.4, "faster with D"),
    (float("nan"), 1.0, "undetermined"),
])
def test_exponent_classes(low, high, want):
    assert _classify_b(low, high) == want


def test_verdicts_follow_the_exponents():
    exps = pd.DataFrame([
        dict(method="adamw", lr_protocol="fixed", noise="isotropic", aspect=1.0,
             exponent=0.98, low=0.85, high=1.1),
        dict(method="adamw", lr_protocol="tuned", noise="isotropic", aspect=1.0,
             exponent=0.02, low=-0.05, high=0.07),
        dict(method="muon-polar", lr_protocol="fixed", noise="isotropic", aspect=1.0,
             exponent=0.01, low=-0.03, high=0.05),
        dict(method="muon-ns", lr_protocol="fixed", noise="isotropic", aspect=1.0,
             exponent=0.01, low=-0.1, high=0.1),
    ])
    v = {x.claim: x for x in verdicts(exps, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())}
    assert v["C1"].verdict == "holds only under fixed/isotropic"
    assert v["C2"].verdict == "holds"
    assert v["C3"].verdict.startswith("undetermined")
    exps.loc[3, ["low", "high"]] = (0.3, 0.5)
    v = {x.claim: x for x in verdicts(exps, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())}
    assert v["C2"].verdict == "holds only under muon-polar fixed/isotropic"


def test_a_cliff_is_never_dimension_free_and_capped_edges_never_count():
    base = dict(method="muon-ns", noise="isotropic", aspect=1.0, exponent=0.01, low=-0.05,
                high=0.07)
    exps = pd.DataFrame([
        dict(base, lr_protocol="matched_rms"),
        # the same CI, but the median at the largest D is beyond the budget
        dict(base, lr_protocol="matched_spectral", outcome="cliff",
             dimension_free_possible=False, censored_dims="65536"),
        # a CI that would fail the claim, but from a capped edge search: not counted
        dict(base, lr_protocol="stability_edge", low=0.4, high=0.9, edge_capped=True),
    ])
    assert _classify_b(-0.05, 0.07, False) == "cliff"
    # a cliff only adds to evidence of growth: an O(D) CI stays O(D)
    assert _classify_b(0.9, 1.4, False) == "O(D)"
    v = {x.claim: x for x in verdicts(exps, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())}
    assert v["C2"].verdict == ("holds only under matched_rms/isotropic; budget hit at the "
                               "largest D (cliff) under matched_spectral/isotropic")
    assert any("capped" in e for e in v["C2"].evidence)
    exps = exps.iloc[[2]]
    v = {x.claim: x for x in verdicts(exps, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())}
    assert v["C2"].verdict == "undetermined (no data)"


def test_every_experiment_spec_loads_in_both_modes():
    from saddle.sweep import load_spec

    for name in reproduce.EXPERIMENTS:
        full, quick = (load_spec(reproduce.spec_path(name), quick=q) for q in (False, True))
        assert full.points and quick.points
        assert len(quick.points) * quick.seeds <= len(full.points) * full.seeds


@pytest.mark.slow
def test_reproduce_cli_writes_report_figures_and_results(tmp_path):
    """The README's command on one experiment (the bounds, the cheapest with a figure), with
    two processes sharing the runs."""
    out = tmp_path / "rep"
    r = subprocess.run([sys.executable, "-m", "saddle", "reproduce", "--quick", "--only",
                        "bounds", "--out", str(out), "--quiet", "--jobs", "2"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    report = (out / "report.md").read_text()
    assert "## Bound checks (measured against theory)" in report
    assert (out / "bounds.png").exists()
    assert list((out / "results" / "bounds" / "runs").glob("part-*.parquet"))
    # The bound checks are computed from the stored runs: upper bounds are never violated.
    a = reproduce.analyse(out)
    bc = a["bound_checks"]
    upper = bc[bc["kind"] == "upper"]
    assert len(upper) and int(upper["runs"].sum()) > 0
    assert (upper["violations"] == 0).all(), upper
    # A result whose trajectory hypothesis is certified by its config-level assumptions is
    # judged on every run; the stiff-bulk bound, whose hypothesis only a trace can show, is
    # not judged where the runs were not traced.
    by = upper.set_index("bound")
    assert by.loc["muon_ballistic", "runs"] > 0 and by.loc["muon_ballistic", "outside"] == 0
    if "muon_stiff_bulk_escape" in by.index:
        assert by.loc["muon_stiff_bulk_escape", "runs"] == 0


def test_reproduce_rejects_unknown_experiment(tmp_path):
    r = subprocess.run([sys.executable, "-m", "saddle", "reproduce", "--only", "dimensions",
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "--only" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_report_states_settings_shapes_caveats_and_integer_counts(tmp_path):
    """The report from fabricated results: settings and every shape, definitions (protocols,
    verdict classes), flagged exponents, the censoring note, integer violation counts."""
    from test_figures import fabricate

    from saddle.analysis import exponent_table, select_tuned
    from saddle.reproduce import _with_label, write_report

    conds = [dict(optimizer=o, m=m, n=n, noise="isotropic", sigma=0.01, gamma=0.1)
             for o in ("adamw", "mano") for m, n in ((16, 16), (32, 32), (32, 16))]
    dim = fabricate(conds, time=lambda cfg, seed: None if cfg.optimizer == "mano"
                    else 50 + seed + cfg.D // 64)
    frames = {name: pd.DataFrame() for name in reproduce.EXPERIMENTS}
    frames["dimension"] = dim
    exps = exponent_table(_with_label(select_tuned(dim)),
                          by=["method", "lr_protocol", "noise", "aspect"])
    checks = pd.DataFrame([
        dict(bound="muon_ballistic", kind="upper", optimizer="muon", runs=12, violations=0,
             undetermined=0, median_ratio=0.5, min_ratio=0.1, max_ratio=0.9,
             experiments="bounds"),
        dict(bound="sgd_law", kind="estimate", optimizer="sgd", runs=4, violations=None,
             undetermined=0, median_ratio=1.0, min_ratio=0.9, max_ratio=1.1,
             experiments="bounds"),
    ])
    empty = pd.DataFrame()
    a = dict(frames=frames, traces={k: empty for k in frames}, exponents=exps,
             ns_exponents=empty, trajectories=empty, drift=empty, gaps=empty,
             bound_checks=checks, verdicts=verdicts(exps, empty, empty, empty))
    text = write_report(tmp_path, a, [], {"dimension": {"wall_s": 1.0}}, quick=True).read_text()
    assert "32×16" in text  # the single-D shape is reported
    assert "### Shapes run at a single D" in text
    for word in ("`matched_rms`", "`stability_edge`", "*faster with D*", "*dimension-free*",
                 "### Settings", "budget"):
        assert word in text, word
    assert "only 2 D" in text  # every square series here has two D: flagged
    assert "mano: 100% of its" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| muon_ballistic"))
    assert "| 0 |" in row and "0.00 |" not in row.split("|")[5]


def test_bound_summary_counts_runs_violations_and_tightness():
    """Tightness is bound/measured for an upper bound, measured/bound for a lower one; the
    summary pools the bounds, leaves the estimates out and counts the violations."""
    checks = pd.DataFrame([
        dict(bound="u", kind="upper", runs=10, violations=0, median_ratio=0.8),
        dict(bound="l", kind="lower", runs=6, violations=1, median_ratio=1.25),
        dict(bound="e", kind="estimate", runs=50, violations=None, median_ratio=3.0),
    ])
    checks.attrs.update(pooled_tightness=1.25, pooled_checks=16)
    text = reproduce.bound_summary(checks)
    assert text.startswith("Bounds: 16 run-checks over 2 bounds, 1 violations")
    assert "1.25–1.25 per bound" in text and "1.25 over the 16 escaped runs" in text
    assert reproduce._tightness("upper", [0.5, 0.5, 1.0]) == 2.0
    assert reproduce._tightness("lower", [2.0]) == 2.0
    assert math.isnan(reproduce._tightness("estimate", [2.0]))
