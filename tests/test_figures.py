"""Every figure from small fabricated results in the stored schema, checked through its
artists: one colour scale per quantity, values in heatmap cells, no series hidden under
another, legend entries = series, censored points drawn as markers, theory lines drawn when
the caption promises them, a store where nothing escaped still draws, and ``save`` leaves no
partial file.
"""

from __future__ import annotations

import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest

from saddle import plots, reproduce
from saddle.config import Config

matplotlib.use("Agg")


def fabricate(conditions: list[dict], seeds: int = 4, budget: int = 400, time=None,
              protocol: str = "fixed") -> pd.DataFrame:
    """Result rows as a sweep stores them (config fields, D, aspect, status, ...).

    ``time(cfg, seed)`` gives the escape time, or None for a censored run.
    """
    rows = []
    for cond in conditions:
        cfg = Config.from_dict(dict(cond, max_steps=budget, seeds=1))
        for seed in range(seeds):
            t = time(cfg, seed) if time else 100 + 10 * seed
            esc = t is not None
            rows.append({**cfg.to_dict(), "seed": seed,
                         "run_id": f"{cfg.config_hash()}-{seed}-{protocol}",
                         "config_hash": cfg.config_hash(), "sweep": "test",
                         "lr_protocol": protocol, "lr_multiplier": 1.0, "D": cfg.D,
                         "aspect": cfg.m / cfg.n,
                         "status": "escaped" if esc else "censored", "escaped": esc,
                         "escape_time": int(t) if esc else None,
                         "steps": int(t) if esc else budget, "diverged": False,
                         "final_loss": None, "final_distance": None, "signal_lost": False,
                         "rounding_lost_frac": 0.0, "wall_s": 0.01, "engine": "numba",
                         "x64": False})
    return pd.DataFrame(rows)


def _dimension_frame():
    conds = [dict(optimizer=o, m=n, n=n, noise="isotropic", sigma=0.01, gamma=0.1)
             for o, n in itertools.product(["adamw", "sgd", "mano"], [16, 32, 64])]

    def time(cfg, seed):
        if cfg.optimizer == "mano":  # censored everywhere: median beyond the budget
            return None
        if cfg.optimizer == "sgd":  # identical to adamw: must not hide under it
            return 50 + seed
        return 50 + seed

    return fabricate(conds, time=time)


def _series_lines(ax, kind="series"):
    return [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith(kind + ":")]


def _assert_no_hidden(lines):
    """No two drawn series with identical data drawn identically: series with the same points
    must differ in marker or line style (a colour alone does not show the one underneath)."""
    seen = {}
    for ln in lines:
        x, y = np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)
        if not x.size:
            continue
        key = (tuple(np.round(x, 9)), tuple(np.round(y, 9)), ln.get_marker(),
               str(ln.get_linestyle()))
        assert key not in seen, f"{ln.get_gid()} hides {seen.get(key)}"
        seen[key] = ln.get_gid()


def _legend_texts(ax):
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg else []


def test_dimension_series_censored_and_legend():
    fig = plots.plot_dimension(_dimension_frame())
    ax = fig.axes[0]
    series = _series_lines(ax)
    assert len(series) == 3
    _assert_no_hidden(series)
    names = [ln.get_gid().split(":", 1)[1] for ln in series]
    legend = [t for t in _legend_texts(ax) if not t.startswith("theory:")]
    assert len(legend) == len(series)
    for n in names:
        assert sum(t.startswith(n) for t in legend) == 1
    # mano's medians are beyond the budget: drawn as markers at the budget, not dropped
    cens = _series_lines(ax, "censored")
    assert [ln.get_gid() for ln in cens] == ["censored:mano"]
    assert np.allclose(cens[0].get_ydata(), 400) and len(cens[0].get_xdata()) == 3
    assert ax.get_yscale() == "log"
    # a fit on censored data is not drawn as a measurement
    assert not [ln for ln in ax.get_lines() if ln.get_gid() == "fit:mano"]
    matplotlib.pyplot.close(fig)


def test_dimension_heavily_censored_fit_is_flagged():
    conds = [dict(optimizer="adamw", m=n, n=n) for n in (16, 32, 64)]
    # three of four runs censored at every D: the KM median sits at the budget's edge
    df = fabricate(conds, time=lambda cfg, seed: 380 + cfg.n // 16 if seed == 0 else None)
    df.loc[df["seed"] == 1, ["status", "escaped", "escape_time", "steps"]] = (
        "escaped", True, 390, 390)
    fig = plots.plot_dimension(df)
    ax = fig.axes[0]
    assert not [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("fit:")]
    matplotlib.pyplot.close(fig)


def test_nothing_escaped_still_draws_and_saves(tmp_path):
    conds = [dict(optimizer="adamw", m=n, n=n) for n in (16, 32)]
    df = fabricate(conds, time=lambda cfg, seed: None)
    fig = plots.plot_dimension(df)
    assert _series_lines(fig.axes[0], "censored")
    out = plots.save(fig, tmp_path / "dim.png")
    assert all(p.exists() and p.stat().st_size > 0 for p in out)
    gap = fabricate([dict(optimizer="muon", m=16, n=16, noise="isotropic", sigma=s)
                     for s in (0.01, 0.1)], time=lambda cfg, seed: None)
    plots.save(plots.plot_gap(gap, "sigma"), tmp_path / "gap.png")
    plots.save(plots.plot_phase(gap, "sigma"), tmp_path / "phase.png")


def test_save_leaves_no_partial_file(tmp_path):
    fig = matplotlib.pyplot.figure()
    ax = fig.add_subplot()
    ax.plot([1, 2], [1, 2])
    plots.save(fig, tmp_path / "f.png")
    before = (tmp_path / "f.svg").read_bytes()

    fig = matplotlib.pyplot.figure()
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, r"$\notacommand{x}$")  # mathtext fails while drawing
    with pytest.raises(ValueError):
        plots.save(fig, tmp_path / "f.png")
    assert (tmp_path / "f.svg").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "f.svg"]


def _gap_frame():
    conds = [dict(optimizer=o, m=n, n=n, noise="isotropic", sigma=s, gamma=0.1)
             for o, n, s in itertools.product(["adamw", "muon"], [32, 128], [0.01, 0.1, 1.0])]

    def time(cfg, seed):
        if cfg.optimizer == "adamw":  # equal at both D: the two series coincide
            return 60 + seed if cfg.sigma < 1 else None
        return 40 + seed + cfg.m // 32

    return fabricate(conds, time=time)


def test_gap_threshold_offsets_and_lower_bounds():
    fig = plots.plot_gap(_gap_frame(), "sigma")
    ax, ax2 = fig.axes[:2]
    series = _series_lines(ax)
    assert len(series) == 4
    _assert_no_hidden(series)
    success = [ln for ln in ax2.get_lines() if (ln.get_gid() or "").startswith("success:")]
    assert len(success) == 4
    _assert_no_hidden(success)
    # AdamW's success rates are equal at both D: both visible (offset and styled apart)
    a = [ln for ln in success if "adamw" in ln.get_gid()]
    assert not np.allclose(a[0].get_xdata(), a[1].get_xdata())
    # the promised theory threshold: one dotted line per D at sigma_c = gamma / D^(1/4)
    thr = {c.get_gid(): c.get_segments()[0][0, 0] for c in ax.collections
           if (c.get_gid() or "").startswith("threshold:")}
    assert sum(t.startswith("theory: BBP threshold") for t in _legend_texts(ax)) == 2
    assert thr == pytest.approx({"threshold:1024": 0.1 / 1024 ** 0.25,
                                 "threshold:16384": 0.1 / 16384 ** 0.25})
    # AdamW at sigma = 1 never escapes: lower bounds at the budget
    cens = _series_lines(ax, "censored")
    assert len(cens) == 2 and all(np.allclose(c.get_ydata(), 400) for c in cens)
    legend = [t for t in _legend_texts(ax) if not t.startswith("theory:")]
    assert len(legend) == len(series)
    matplotlib.pyplot.close(fig)


def test_gap_no_threshold_for_lowrank_noise():
    df = _gap_frame().assign(noise="lowrank")
    assert plots.gap_thresholds_on_axis(df, "sigma") == {}


def test_phase_shares_one_colour_scale_and_writes_values():
    df = _gap_frame()
    for metric in ("median", "success_rate"):
        fig = plots.plot_phase(df, "sigma", metric)
        ims = [im for ax in fig.axes for im in ax.get_images()]
        assert len(ims) == 2
        assert len({(im.norm.vmin, im.norm.vmax) for im in ims}) == 1
        # one colour bar for the figure, not one per panel
        assert len(fig.axes) == 3
        for ax in fig.axes:
            if not ax.get_images():
                continue
            cells = [t for t in ax.texts if t.get_gid() == "cell"]
            assert len(cells) == 6  # 2 D x 3 sigma, including "> budget" cells
        matplotlib.pyplot.close(fig)
    fig = plots.plot_phase(df, "sigma", "median")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "> 400" in texts
    matplotlib.pyplot.close(fig)


def _traces(runs: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for r in runs.to_dict("records"):
        end = r["steps"]
        t = np.arange(0, end + 1, 10)
        frames.append(pd.DataFrame({"run_id": r["run_id"], "t": t,
                                    "escape_coordinate_0": 1e-3 * np.exp(t / max(end, 1) * 7)
                                    * (1 + r["D"] / 1e4),
                                    "orthogonal_drift": 0.01 + t * 1e-4}))
    return pd.concat(frames, ignore_index=True)


def test_trajectory_small_multiples_and_legend():
    conds = [dict(optimizer=o, m=n, n=n) for o, n in itertools.product(["adamw", "muon"],
                                                                         [16, 32])]
    runs = fabricate(conds, time=lambda cfg, seed: (None if cfg.optimizer == "adamw"
                                                    and seed == 0 else 30 + seed))
    fig = plots.plot_trajectory(runs, _traces(runs), per_group=2)
    tops = [ax for ax in fig.axes if ax.get_title()]
    assert {ax.get_title() for ax in tops} == {"adamw", "muon-ns"}
    for ax in tops:
        lines = _series_lines(ax, "run")
        assert len(lines) == 4  # two runs per D, two D
        _assert_no_hidden(lines)
        assert len(_legend_texts(ax)) == len(lines)
        assert ax.get_xscale() == "log"
    # AdamW's censored runs end in a marker; muon's time axis is not stretched to the budget
    adamw = next(ax for ax in tops if ax.get_title() == "adamw")
    muon = next(ax for ax in tops if ax.get_title() == "muon-ns")
    assert _series_lines(adamw, "censored")
    assert muon.get_xlim()[1] < 200
    matplotlib.pyplot.close(fig)


def test_report_figures_from_fabricated_results(tmp_path):
    """The report's own figures (coherence, bounds) from a fabricated analysis."""
    conds = [dict(optimizer=o, m=16, n=16, basis=b)
             for o, b in itertools.product(["sgd", "sign_descent", "muon"],
                                           ["coherent", "incoherent"])]
    runs = fabricate(conds, seeds=6)
    traces = _traces(runs)
    frames = {name: pd.DataFrame() for name in reproduce.EXPERIMENTS}
    frames["coherence"] = runs
    drift = reproduce.drift_table(runs, traces)
    f = reproduce._drift_figure(tmp_path, drift, runs, traces)
    assert (tmp_path / f[0]).exists()


def test_method_names_in_labels():
    """Muon series are named muon-ns / muon-polar, as in the report, also when the optimizer
    column does not vary."""
    conds = [dict(optimizer="muon", orthogonalizer=o, m=n, n=n)
             for o, n in itertools.product(["newton_schulz", "polar"], [16, 32, 64])]
    fig = plots.plot_dimension(fabricate(conds))
    names = sorted(ln.get_gid() for ln in _series_lines(fig.axes[0]))
    assert names == ["series:muon-ns", "series:muon-polar"]
    matplotlib.pyplot.close(fig)


def test_bounds_figure_one_panel_per_result(tmp_path, monkeypatch):
    """Two theory results that apply to the same runs get a panel each (in one panel the
    second would hide the first); censored runs appear as markers."""

    class Fake:
        quantity, optimizer = "escape_time", None

        def __init__(self, kind, value):
            self.kind, self.value = kind, value

        def applies_to(self, cfg):
            return True

        def assumptions_hold(self, cfg):
            return True

        def evaluate(self, cfg):
            return self.value

    monkeypatch.setattr(reproduce, "_theory_results",
                        lambda: {"a_bound": Fake("upper", 200.0), "b_bound": Fake("upper", 200.0)})
    runs = fabricate([dict(optimizer="sgd", m=16, n=16)], seeds=6,
                     time=lambda cfg, seed: None if seed == 0 else 100 + seed)
    frames = {name: pd.DataFrame() for name in reproduce.EXPERIMENTS}
    frames["bounds"] = runs
    captured = {}
    monkeypatch.setattr(plots, "save", lambda fig, path: captured.setdefault("fig", fig))
    name, _ = reproduce._bounds_figure(tmp_path, dict(frames=frames))
    assert name == "bounds.png"
    axes = [ax for ax in captured["fig"].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["a_bound (upper)", "b_bound (upper)"]
    for ax in axes:
        esc, cens = ax.collections[:2]
        # five escaped runs at distinct times; the censored run at the budget
        assert len(esc.get_offsets()) == 5
        assert np.allclose(cens.get_offsets(), [[200.0, 400.0]])
