"""The regime map: labels, the answers its construction fixes (checked by simulation: the
built-in cases must really be built in), the per-cell verdicts and the headline."""

import math

import numpy as np
import pandas as pd
import pytest

from saddle import Config, regimes
from saddle.analysis import distinct_draws
from saddle.simulate import simulate


def test_labels_name_what_differs_from_the_base():
    base = dict(regimes.BASE)
    assert regimes.regime_label(base) == "base"
    assert regimes.regime_label(dict(base, gamma=0.0, radius=0.3)) == "γ=0, r=0.3"
    assert regimes.regime_label(dict(base, bulk="power_law", bulk_tail=1.5)) == "power_law α=1.5"
    assert regimes.regime_label(dict(base, noise="opnorm", sigma=0.2)) == "opnorm σ=0.2"
    assert regimes.regime_label(dict(base, quartic=0.05)) == "κ=0.05"
    assert (regimes.regime_label(dict(base, noise="lowrank", sigma=0.05, noise_coherence=1.0))
            == "lowrank σ=0.05, aligned c=1")


@pytest.mark.parametrize("row, varies, want", [
    (dict(basis="coherent", quartic=0.0, noise="isotropic"), False, "fails by construction"),
    (dict(basis="coherent", quartic=0.0, noise="student_t"), True, "set by the protocol"),
    (dict(basis="structured", quartic=0.0, noise="isotropic"), False, ""),
    (dict(basis="coherent", quartic=0.05, noise="isotropic"), False, ""),
    (dict(basis="coherent", quartic=0.0, noise="kronecker"), False, ""),
    (dict(basis="coherent", quartic=0.0, noise="opnorm"), False, ""),
    (dict(basis="coherent", quartic=0.0, noise="isotropic", optimizer="muon"), False, ""),
    (dict(basis="coherent", quartic=0.0, noise="isotropic", optimizer="mano"), False, ""),
    (dict(basis="coherent", quartic=0.0, noise="isotropic", optimizer="sgd"), False,
     "fails by construction"),
    (dict(basis="coherent", quartic=0.0, noise="isotropic", escape="loss"), False, ""),
])
def test_c1_construction_rule(row, varies, want):
    assert regimes.construction({"optimizer": "adamw", **row}, varies)["C1"] == want


@pytest.mark.parametrize("opt, noise, want", [
    ("sgd", "isotropic", True), ("muon", "opnorm", True), ("muon", "lowrank", True),
    ("adamw", "isotropic", False), ("mano", "isotropic", False), ("muon", "kronecker", False),
    ("muon", "student_t", False), ("sign_descent", "isotropic", False),
])
def test_basis_symmetry_rule(opt, noise, want):
    assert regimes.basis_irrelevant(dict(optimizer=opt, noise=noise)) is want
    # A random W* breaks nothing in law, but the rule stays on the safe side.
    assert not regimes.basis_irrelevant(dict(optimizer=opt, noise=noise, saddle_point="random"))


def test_fails_by_construction_is_exact_in_simulation():
    """An element-wise optimizer on a coherent, decoupled landscape at a fixed rate: with the
    noise replayed per entry (common streams), the escape time is the same number at every
    shape, so b = 0 exactly. Muon's, which reads the whole matrix, is not."""
    steps = {}
    for m, n in ((8, 8), (16, 16), (32, 12)):
        for opt in ("adamw", "sgd", "muon"):
            c = Config.from_dict(dict(m=m, n=n, optimizer=opt, basis="coherent",
                                      noise="isotropic", sigma=0.01, seeds=3, max_steps=3000,
                                      noise_streams="common", backend="jax", init="random",
                                      init_scale=0.01))
            steps[(m, opt)] = [r.steps for r in simulate(c).runs]
    for opt in ("adamw", "sgd"):
        assert steps[(8, opt)] == steps[(16, opt)] == steps[(32, opt)], opt
        assert all(s < 3000 for s in steps[(8, opt)])
    assert steps[(8, "muon")] != steps[(32, "muon")]


def test_symmetric_draws_are_one_landscape_in_law():
    """The fit clusters landscape draws only where a draw can change the law of a run."""
    def rows(**kw):
        c = {**dict(m=16, n=16, basis="structured", noise="isotropic", landscape_seed=0,
                    landscape_draw=0), **kw}
        return pd.DataFrame([c])
    assert not distinct_draws(rows(optimizer="sgd"))
    assert not distinct_draws(rows(optimizer="muon"))
    assert distinct_draws(rows(optimizer="adamw"))
    assert distinct_draws(rows(optimizer="muon", noise="kronecker"))


def _exps_and_runs():
    """A two-cell map: base/coherent (AdamW fixed by construction) and base/structured."""
    exps, runs = [], []
    cells = [("coherent", "adamw", 0.0, -0.05, 0.05), ("coherent", "muon-ns", 0.0, -0.1, 0.1),
             ("structured", "adamw", 0.9, 0.8, 1.1), ("structured", "muon-ns", 0.02, -0.1, 0.1)]
    for basis, method, b, lo, hi in cells:
        opt = method.split("-")[0]
        exps.append(dict(method=method, optimizer=opt, basis=basis, lr_protocol="matched_rms",
                         noise="isotropic", sigma=0.01, gamma=0.1, quartic=0.0,
                         bulk="constant", bulk_scale=1.0, radius=1.0, exponent=b, low=lo,
                         high=hi, outcome="fit", dimension_free_possible=True))
        for D in (256, 1024):
            runs.append(dict(method=method, optimizer=opt, basis=basis,
                             lr_protocol="matched_rms", noise="isotropic", sigma=0.01,
                             gamma=0.1, quartic=0.0, bulk="constant", bulk_scale=1.0,
                             radius=1.0, D=D, learning_rate=1e-3))
    return pd.DataFrame(exps), pd.DataFrame(runs)


def test_table_verdicts_and_headline_leave_out_built_in_cells():
    exps, runs = _exps_and_runs()
    table = regimes.regime_table(runs, exps)
    assert list(table["c1_construction"]) == ["fails by construction", "", "", ""]
    assert list(table["class"]) == ["dimension-free", "dimension-free", "O(D)",
                                    "dimension-free"]
    assert (table["protocol_b"] == 0).all()
    v = regimes.regime_verdicts(table, "adamw", "muon-ns")
    assert list(v["C1"]) == ["fails (dimension-free)", "holds"]
    assert list(v["C2"]) == ["holds", "holds"]
    verdict, lines = regimes.headline(v, "C1")
    assert verdict == "holds in all 1 decided cells"
    assert lines == ["holds: base / structured / matched_rms"]
    assert not v["reverses"].any()
    # sub-linear growth is "partly", and the headline counts it apart
    t2 = table.copy()
    t2.loc[2, ["exponent", "low", "high"]] = [0.4, 0.3, 0.5]
    t2.loc[2, "class"] = "grows with D (sub-linear)"
    v2 = regimes.regime_verdicts(t2, "adamw", "muon-ns")
    assert list(v2["C1"]) == ["fails (dimension-free)", "partly (sub-linear)"]
    assert (regimes.headline(v2, "C1")[0]
            == "holds in 0, partly in 1 and fails in 0 of 1 decided cells")


def test_reversal_and_protocol_exponent():
    exps, runs = _exps_and_runs()
    exps.loc[exps["method"] == "adamw", ["exponent", "low", "high"]] = [-0.4, -0.5, -0.3]
    exps.loc[exps["method"] == "muon-ns", ["exponent", "low", "high"]] = [0.4, 0.3, 0.5]
    runs.loc[runs["D"] == 1024, "learning_rate"] = 0.5e-3  # lr ~ D^(-1/2)
    table = regimes.regime_table(runs, exps)
    assert np.allclose(table["protocol_b"], 0.5)
    # the coherent AdamW cell's rate moves with D: its answer is set by the protocol
    assert table["c1_construction"].iloc[0] == "set by the protocol"
    v = regimes.regime_verdicts(table, "adamw", "muon-ns")
    assert v["reverses"].all()


def test_figure_is_written(tmp_path):
    """Three bases, three methods (Mano's censored cells among them), two protocols."""
    exps, runs = _three_basis_map()
    table = regimes.regime_table(runs, exps)
    table.loc[0, "exponent"] = math.nan
    cols = regimes.plot_regime_map(table, tmp_path / "map.png")
    assert cols == [(m, b) for m in ("adamw", "mano", "muon-ns")
                    for b in ("coherent", "partial", "structured")]
    assert (tmp_path / "map.png").stat().st_size > 5000


def test_reproduction_verdicts_leave_out_built_in_series():
    """The dimension experiment's coherent, decoupled series answer C1 by construction: with
    no regime map, the C1 verdict says so instead of counting them; with a map, the map's
    headline is the verdict and those series are listed as labelled evidence."""
    from saddle.reproduce import verdicts

    exps = pd.DataFrame([
        dict(method="adamw", lr_protocol="matched_rms", noise="isotropic", aspect=1.0,
             basis="coherent", quartic=0.0, exponent=0.0, low=-0.05, high=0.05,
             chosen_lr="1024:0.001, 4096:0.001"),
        dict(method="adamw", lr_protocol="matched_spectral", noise="isotropic", aspect=1.0,
             basis="coherent", quartic=0.0, exponent=0.25, low=0.2, high=0.3,
             chosen_lr="1024:0.002, 4096:0.001"),
    ])
    empty = pd.DataFrame()
    c1 = verdicts(exps, empty, empty, empty)[0]
    assert c1.verdict.startswith("not tested")
    assert "fails by construction" in c1.evidence[0]
    assert "set by the protocol" in c1.evidence[1]
    e2, r2 = _exps_and_runs()
    rv = regimes.regime_verdicts(regimes.regime_table(r2, e2), "adamw", "muon-ns")
    c1 = verdicts(exps, empty, empty, empty, rv)[0]
    assert c1.verdict == "holds in all 1 decided cells"
    assert any("fails by construction" in e for e in c1.evidence)


def _leak_row(method, ratio, lo, hi, p, symmetric=False, noise="kronecker"):
    return dict(method=method, D=1024, noise=noise, basis=None, treatment="basis",
                level="structured", baseline="coherent", runs=16, base_mean=0.9,
                mean=0.9 * ratio, ratio=ratio, ratio_low=lo, ratio_high=hi, p_value=p,
                tau_median=50.0, tau_base_median=100.0, tau_ratio=0.5, tau_ratio_low=0.4,
                tau_ratio_high=0.6, tau_p_value=0.001, basis_symmetry=symmetric)


def test_c4_needs_a_material_leakage_change_and_reports_the_controls():
    from saddle.reproduce import _verdict_c4

    ctrl = _leak_row("muon-ns", 1.0, 0.99, 1.01, 0.6, symmetric=True, noise="lowrank")
    tiny = pd.DataFrame([_leak_row("muon-ns", 0.998, 0.997, 0.999, 1e-4), ctrl])
    v = _verdict_c4(pd.DataFrame(), tiny).verdict
    assert v.startswith("fails for Muon: the basis changes its leakage by less than 5%")
    assert "ratio 0.50 [0.40, 0.60]" in v and "0 of 1 reject" in v
    big = pd.DataFrame([_leak_row("muon-ns", 0.6, 0.5, 0.7, 1e-4), ctrl])
    assert _verdict_c4(pd.DataFrame(), big).verdict.startswith("holds for Muon")
    more = pd.DataFrame([_leak_row("muon-ns", 1.5, 1.3, 1.7, 1e-4)])
    assert _verdict_c4(pd.DataFrame(), more).verdict.startswith("reverses for Muon")


def test_paragraphs_name_basis_effects_symmetry_and_reversals():
    exps, runs = _exps_and_runs()
    exps.loc[exps["method"] == "adamw", ["exponent", "low", "high"]] = [[0.0, -0.1, 0.1],
                                                                      [-0.5, -0.6, -0.4]]
    table = regimes.regime_table(runs, exps)
    (text,) = regimes.regime_paragraphs(table, ("adamw", "muon-ns"))
    assert text.startswith("**base.**")
    assert "the structured basis moves b from 0.00 (coherent) to -0.50 (CIs disjoint)" in text
    assert "CIs overlap, as the symmetry requires" in text  # Muon's two bases
    assert "Reversal on structured/matched_rms" in text


# --- three bases (coherent, partial, structured) and Mano ---------------------------------
@pytest.mark.parametrize("opt, noise, c1, basis", [
    # element-wise: the partial basis spreads the escape entry, nothing is built in
    ("adamw", "isotropic", "", ""), ("adamw", "kronecker", "", ""),
    ("sgd", "isotropic", "", "basis irrelevant by symmetry"),
    # equivariant under rotation-invariant noise: partial is the coherent basis rotated
    ("muon", "isotropic", "", "basis irrelevant by symmetry"),
    ("muon", "opnorm", "", "basis irrelevant by symmetry"),
    ("muon", "kronecker", "", ""), ("sgd", "kronecker", "", ""),
    # Mano is neither element-wise nor equivariant
    ("mano", "isotropic", "", ""), ("mano", "kronecker", "", ""),
])
def test_partial_basis_construction_labels(opt, noise, c1, basis):
    row = dict(optimizer=opt, noise=noise, basis="partial", quartic=0.0)
    for varies in (False, True):
        assert regimes.construction(row, varies) == {"C1": c1, "basis": basis}
    # the same cell on the coherent basis: element-wise optimizers there are built in
    coh = regimes.construction(dict(row, basis="coherent"), False)["C1"]
    elementwise = opt in ("adamw", "sgd") and noise == "isotropic"
    assert coh == ("fails by construction" if elementwise else "")


def test_partial_basis_keeps_a_fixed_share_of_the_escape_vector_on_its_axis():
    """mixing = 0.5 (the map's value): p = P e_0 keeps p_0^2 near the semicircle limit
    (J1(pi/2) / (pi/4))^2 = 0.52 at every n, so the partial basis is neither coherent (1) nor
    spread (1/n); mean over 24 draws, tolerance 4 standard errors plus the O(1/n) bias."""
    from scipy.special import j1

    from saddle.landscapes.spectra import partial_rotation

    limit = (j1(np.pi / 2) / (np.pi / 4)) ** 2
    for n in (16, 64):
        p0 = np.array([partial_rotation(np.random.default_rng(s), n, 0.5)[0, 0] ** 2
                       for s in range(24)])
        se = p0.std(ddof=1) / np.sqrt(p0.size)
        assert abs(p0.mean() - limit) < 4 * se + 1.0 / n, (n, p0.mean())
        assert 4.0 / n < p0.mean() < 0.8  # neither spread (1/n) nor coherent (1)


def _three_basis_map() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic map of the base regime: AdamW, Muon and Mano on three bases under two
    protocols. Mano is censored at every D on the coherent basis and under matched_rms."""
    cells = {("adamw", "coherent"): (0.0, -0.05, 0.05), ("adamw", "partial"): (0.9, 0.8, 1.1),
             ("adamw", "structured"): (1.0, 0.9, 1.1), ("mano", "partial"): (-0.5, -0.6, -0.4),
             ("mano", "structured"): (-0.5, -0.6, -0.4), ("mano", "coherent"): None}
    base = dict(noise="isotropic", sigma=0.01, gamma=0.1, quartic=0.0, bulk="constant",
                bulk_scale=1.0, radius=1.0)
    exps, runs = [], []
    for proto in ("matched_rms", "matched_spectral"):
        for method in ("adamw", "muon-ns", "mano"):
            for basis in ("coherent", "partial", "structured"):
                fit = cells.get((method, basis), (0.01, -0.1, 0.1))
                if method == "mano" and proto == "matched_rms":
                    fit = None
                b, lo, hi = fit or (math.nan,) * 3
                exps.append(dict(base, method=method, optimizer=method.split("-")[0],
                                 basis=basis, lr_protocol=proto, exponent=b, low=lo, high=hi,
                                 outcome="insufficient" if fit is None else "fit",
                                 censored_frac=1.0 if fit is None else 0.0,
                                 dimension_free_possible=fit is not None))
                runs += [dict(base, method=method, optimizer=method.split("-")[0],
                              basis=basis, lr_protocol=proto, D=D, learning_rate=1e-3)
                         for D in (256, 1024)]
    return pd.DataFrame(exps), pd.DataFrame(runs)


def test_three_bases_verdicts_headline_and_report():
    exps, runs = _three_basis_map()
    table = regimes.regime_table(runs, exps)
    v = regimes.regime_verdicts(table, "adamw", "muon-ns")
    assert list(v["basis"]) == ["coherent", "partial", "structured"] * 2
    # the partial cells carry verdicts; only the coherent AdamW cells are built in
    assert list(v["C1_construction"] == "") == [False, True, True] * 2
    verdict, lines = regimes.headline(v, "C1")
    assert verdict == "holds in all 4 decided cells"
    assert "holds: base / partial / matched_spectral" in lines
    assert regimes.headline(v, "C2")[0] == "holds in all 6 decided cells"
    # Muon's symmetric cells: all three bases share a point; AdamW's partial basis moves b
    mech = "\n".join(regimes.mechanisms(table))
    assert "cannot matter, the exponents' CIs on all their bases share a point in 2." in mech
    assert "Basis effect, adamw" in mech and "partial vs coherent: CIs disjoint in 2 of 2" in mech
    text = "\n".join(regimes.report_lines(dict(table=table, verdicts=v,
                                               methods=("adamw", "muon-ns"))))
    assert "partial" in text and "the partial basis moves b from 0.00 (coherent) to 0.90" in text


def test_all_censored_mano_cells_are_censored_never_fitted():
    exps, runs = _three_basis_map()
    table = regimes.regime_table(runs, exps)
    mano = table[table["method"] == "mano"].set_index(["lr_protocol", "basis"])["class"]
    assert (mano["matched_rms"] == "censored").all()
    assert mano[("matched_spectral", "coherent")] == "censored"
    assert mano[("matched_spectral", "partial")] == "faster with D"  # fitted where it escapes
    assert "Censored (no run escaped at any D" in "\n".join(regimes.mechanisms(table))
    (text,) = regimes.regime_paragraphs(table, ("adamw", "muon-ns"))
    assert "mano: matched_rms: coherent censored (no escape at any D)" in text


def test_a_real_censored_mano_series_gets_no_exponent(tmp_path):
    """Mano from W* = 0 on the coherent basis: its update is tangent to every slice of W, so
    the escape entry is capped by its row's and column's norms, which grow only at second
    order in the rate: 60 steps cannot escape. The map must say censored, not fit a b."""
    from saddle.sweep import Store, parse_spec, run_sweep

    spec = dict(name="regimes", seeds=1, landscape_draws=2, optimizer="mano",
                basis="coherent", m=[8, 12], n=[8, 12], zip=[["m", "n"]],
                lr_protocol="matched_spectral", max_steps=60, gamma=0.1, sigma=0.01)
    run_sweep(parse_spec(spec), tmp_path)
    res = regimes.analyse(Store(tmp_path).runs(), "adamw", "muon-ns", n_resamples=49)
    (row,) = res["table"].to_dict("records")
    assert row["method"] == "mano" and row["class"] == "censored"
    assert math.isnan(row["exponent"]) and math.isnan(row["low"])


def test_map_cell_prints_the_theory_beside_the_measurement():
    """A cell's text carries the predicted exponent, "∞" where no escape is predicted,
    ">budget" where the predicted median is past the budget, and "bound" where only a bound
    covers the cell."""
    from saddle.regimes import _theory_text

    base = dict(max_steps=3000.0, theory_applicable="x")
    assert _theory_text(dict(base, theory_b=0.25, theory_tau_max_d=400.0)) == "\nth 0.25"
    assert _theory_text(dict(base, theory_b=float("nan"), theory_tau_max_d=float("inf"))) \
        == "\nth ∞"
    assert _theory_text(dict(base, theory_b=0.5, theory_tau_max_d=9e4)) == "\nth 0.50 >budget"
    assert _theory_text(dict(base, theory_b=float("nan"), theory_tau_max_d=float("nan"))) \
        == "\nth: bound"
    assert _theory_text(dict(max_steps=3000.0, theory_applicable="",
                             theory_tau_max_d=float("nan"))) == ""
