"""Figures from a sweep's stored runs (matplotlib, Agg backend): PNG and SVG.

Every figure marks what is measured (points with 95% CIs, fitted lines) and what is theory
(dotted lines and shaded thresholds from :mod:`theory`, labelled as such).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import display_columns, exponent_table, select_tuned, summarize, varying_columns
from .records import config_from_row

__all__ = ["KINDS", "plot_dimension", "plot_gap", "plot_phase", "plot_trajectory", "save"]

KINDS = ("dimension", "gap", "phase", "trajectory")
GAP_FIELDS = ("sigma", "gamma", "noise_rank", "init_escape")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> list[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix in (".png", ".svg"):
        p = path.with_suffix(suffix)
        fig.savefig(p, dpi=130, bbox_inches="tight")
        out.append(p)
    _plt().close(fig)
    return out


def _series_columns(df: pd.DataFrame, skip=()) -> list[str]:
    skip = set(skip) | {"m", "n", "learning_rate", "lr_multiplier"}
    return [c for c in varying_columns(df) if c not in skip]


def _series_groups(df: pd.DataFrame, series_cols: list[str]) -> list[tuple]:
    """(key, rows) per series, in sorted key order: the rows grouped by the text of
    ``series_cols`` (missing values as "-"); one group of all rows when there are none."""
    if not series_cols:
        return [((), df)]
    return list(df.groupby([df[c].astype("string").fillna("-") for c in series_cols], sort=True))


def _label(row: dict, cols: list[str]) -> str:
    parts = []
    for c in cols:
        v = row[c]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        parts.append(str(v) if c in ("optimizer", "orthogonalizer", "noise", "lr_protocol",
                                     "basis") else f"{c}={v}")
    return " ".join(parts) or "all runs"


def _errorbars(ax, x, med, lo, hi, **kw):
    med = np.asarray(med, float)
    lo = np.where(np.isfinite(lo), lo, med)
    hi = np.where(np.isfinite(hi), hi, np.nan)
    yerr = np.vstack([med - lo, np.where(np.isfinite(hi), hi - med, 0)])
    return ax.errorbar(x, med, yerr=yerr, capsize=3, marker="o", ms=4, **kw)


def _theory_escape_values(config_row: pd.Series, dims, shapes) -> dict[str, list]:
    """Escape-time bounds from .saddle/theory/ along a dimension series (empty if none apply)."""
    try:
        from . import theory
    except ImportError:
        return {}
    results = getattr(theory, "RESULTS", None)
    if not results:
        return {}
    out: dict[str, list] = {}
    for name, res in results.items():
        if getattr(res, "quantity", None) != "escape_time":
            continue
        vals = []
        for (m, n) in shapes:
            try:
                cfg = config_from_row(config_row, m=int(m), n=int(n))
            except Exception:
                vals = []
                break
            if not res.applies_to(cfg) or not res.assumptions_hold(cfg):
                vals = []
                break
            vals.append(res.evaluate(cfg))
        if vals and all(v is not None for v in vals):
            out[f"{name} ({res.kind})"] = vals
    return out


def plot_dimension(df: pd.DataFrame, title: str | None = None):
    """Escape time against D (log-log): KM medians with 95% CIs, fitted b with bootstrap CI."""
    plt = _plt()
    df = select_tuned(df)
    series_cols = _series_columns(df)
    label_cols = display_columns(df, series_cols)
    fig, ax = plt.subplots(figsize=(7, 4.6))
    groups = _series_groups(df, series_cols)
    for i, (_, g) in enumerate(groups):
        color = f"C{i % 10}"
        s = summarize(g, by=["D"])
        s = s.sort_values("D")
        first = g.iloc[0]
        label = _label(first.to_dict(), label_cols)
        fits = exponent_table(g, by=[]) if g["D"].nunique() > 1 else []
        fit = fits.iloc[0] if len(fits) else None
        if fit is not None and math.isfinite(fit["exponent"]):
            label += f"  b={fit['exponent']:.2f} [{fit['low']:.2f}, {fit['high']:.2f}]"
        reached = np.isfinite(s["median"].to_numpy(float))
        if reached.any():
            _errorbars(ax, s["D"][reached], s["median"][reached], s["median_low"][reached],
                       s["median_high"][reached], color=color, label=label, lw=1.2)
        cens = s[~reached]
        if len(cens):
            ax.scatter(cens["D"], cens["max_steps"], marker="^", color=color, alpha=0.6,
                       label=f"{_label(first.to_dict(), label_cols)}: median > budget")
        if fit is not None and math.isfinite(fit["exponent"]):
            d = np.array([fit["d_min"], fit["d_max"]], float)
            ax.plot(d, np.exp(fit["intercept"]) * d ** fit["exponent"], ls="--", color=color,
                    lw=0.8, alpha=0.8)
        shapes = g.groupby("D")[["m", "n"]].first().sort_index()
        for j, (name, vals) in enumerate(_theory_escape_values(first, shapes.index,
                                                               shapes.to_numpy()).items()):
            ax.plot(shapes.index, vals, ls=":", color=color, lw=1.2,
                    label=f"theory: {name}" if j < 3 else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("D = m·n")
    ax.set_ylabel("escape time (steps): KM median, 95% CI")
    ax.set_title(title or "Escape time against dimension (measured; dashed: fit, dotted: theory)",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    # Outside the axes: with a dozen series an inside legend hides the curves it labels.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def gap_field(df: pd.DataFrame, requested: str | None = None) -> str:
    from .errors import SaddleInputError

    if requested is not None:
        if requested not in df.columns:
            raise SaddleInputError(f"--x: got {requested!r}; allowed: a config field of the "
                                   "stored runs, e.g. " + ", ".join(GAP_FIELDS))
        return requested
    for c in GAP_FIELDS:
        if c in df.columns and df[c].nunique() > 1:
            return c
    raise SaddleInputError("--x: none of " + ", ".join(GAP_FIELDS) + " varies in these runs; "
                           "allowed: pass --x FIELD naming the swept signal/noise field")


def _threshold(df: pd.DataFrame, x: str) -> float | None:
    """The spiked-matrix threshold on the x axis, from .saddle/theory/, when it applies."""
    try:
        from . import theory
    except ImportError:
        return None
    results = getattr(theory, "RESULTS", None) or {}
    try:
        cfg = config_from_row(df.iloc[0])
    except Exception:
        return None
    for res in results.values():
        if getattr(res, "quantity", None) == "signal_threshold" and x in getattr(res, "extra", {}):
            fn = res.extra[x]
            try:
                return float(fn(cfg))
            except Exception:
                return None
    return None


def plot_gap(df: pd.DataFrame, x: str | None = None, threshold: float | None = None,
             title: str | None = None):
    """KM median escape time and success rate against a signal/noise field."""
    plt = _plt()
    x = gap_field(df, x)
    df = select_tuned(df)
    series_cols = _series_columns(df, skip=(x,))
    if "D" in df.columns and df["D"].nunique() > 1 and "D" not in series_cols:
        series_cols.append("D")  # m and n are skipped as series; one line per D, not pooled
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                  gridspec_kw=dict(height_ratios=[2, 1]))
    groups = _series_groups(df, series_cols)
    if "D" in series_cols:  # numeric order of D within each optimizer, not string order
        groups.sort(key=lambda kg: [int(kg[1]["D"].iloc[0]) if c == "D" else str(k)
                                    for c, k in zip(series_cols, kg[0], strict=True)])
    for i, (_, g) in enumerate(groups):
        color = f"C{i % 10}"
        s = summarize(g, by=[x]).sort_values(x)
        label = _label(g.iloc[0].to_dict(), display_columns(df, series_cols))
        ok = np.isfinite(s["median"].to_numpy(float))
        _errorbars(ax, s[x][ok], s["median"][ok], s["median_low"][ok], s["median_high"][ok],
                   color=color, label=label, lw=1.2)
        ax2.plot(s[x], s["success_rate"], marker="o", ms=3, color=color)
    thr = threshold if threshold is not None else _threshold(df, x)
    if thr is not None and math.isfinite(thr):
        for a in (ax, ax2):
            a.axvline(thr, color="k", ls=":", lw=1)
        ax.text(thr, ax.get_ylim()[1] if ax.has_data() else 1, " theory: threshold",
                fontsize=7, va="top")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.grid(True, which="both", alpha=0.3)
    ax.set_yscale("log")
    ax.set_ylabel("escape time: KM median, 95% CI")
    ax2.set_ylabel("success rate")
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_xlabel(x)
    ax.set_title(title or f"Escape time against {x} (measured; dotted: theory threshold)",
                 fontsize=10)
    if ax.has_data():
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def plot_phase(df: pd.DataFrame, x: str | None = None, metric: str = "median",
               title: str | None = None):
    """Heatmap over (D, x) of the KM median escape time or the success rate, per series."""
    plt = _plt()
    from .errors import SaddleInputError

    if metric not in ("median", "success_rate"):
        raise SaddleInputError(f"--metric: got {metric!r}; allowed: median, success_rate")
    x = gap_field(df, x)
    df = select_tuned(df)
    series_cols = _series_columns(df, skip=(x,))
    groups = _series_groups(df, series_cols)
    k = len(groups)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k + 1, 3.6), squeeze=False)
    for ax, (_, g) in zip(axes[0], groups, strict=True):
        s = summarize(g, by=["D", x])
        Ds = sorted(s["D"].unique())
        xs = sorted(s[x].unique())
        Z = np.full((len(Ds), len(xs)), np.nan)
        for r in s.to_dict("records"):
            Z[Ds.index(r["D"]), xs.index(r[x])] = r[metric]
        if metric == "median":
            Z = np.log10(np.where(np.isfinite(Z), Z, np.nan))
            cmap, vmin, vmax, lab = "viridis", None, None, "log10 KM median (white: > budget)"
        else:
            cmap, vmin, vmax, lab = "magma", 0, 1, "success rate"
        im = ax.imshow(Z, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_xticks(range(len(xs)), [f"{v:.3g}" for v in xs], rotation=45, fontsize=7)
        ax.set_yticks(range(len(Ds)), [str(d) for d in Ds], fontsize=7)
        ax.set_xlabel(x)
        ax.set_ylabel("D")
        ax.set_title(_label(g.iloc[0].to_dict(), display_columns(df, series_cols)), fontsize=9)
        fig.colorbar(im, ax=ax, label=lab, shrink=0.85)
    fig.suptitle(title or f"Phase diagram over (D, {x}) (measured)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_trajectory(runs: pd.DataFrame, traces: pd.DataFrame, per_group: int = 3,
                    title: str | None = None):
    """Escape coordinate |a_t| and orthogonal drift against t, for the first runs per group."""
    plt = _plt()
    from .errors import SaddleInputError

    if traces.empty:
        raise SaddleInputError("DIR: no traces stored; allowed: a sweep run with "
                               "trace_stride = K in its spec")
    runs = runs[runs["run_id"].isin(set(traces["run_id"]))]
    series_cols = _series_columns(runs) or ["optimizer"]
    if runs["D"].nunique() > 1:
        series_cols = series_cols + ["D"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    groups = _series_groups(runs, series_cols)
    by_run = dict(list(traces.groupby("run_id")))
    for i, (_, g) in enumerate(groups):
        color = f"C{i % 10}"
        label = _label(g.iloc[0].to_dict(), display_columns(runs, series_cols))
        for j, rid in enumerate(g.sort_values("seed")["run_id"].head(per_group)):
            tr = by_run[rid].sort_values("t")
            a = np.abs(tr["escape_coordinate_0"].to_numpy())
            ax.plot(tr["t"], a, color=color, lw=1, alpha=0.8, label=label if j == 0 else None)
            ax2.plot(tr["t"], tr["orthogonal_drift"], color=color, lw=1, alpha=0.8,
                     label=label if j == 0 else None)
    ax.set_xlabel("step t")
    ax.set_ylabel("|a_t| (escape coordinate)")
    ax.set_yscale("log")
    ax2.set_xlabel("step t")
    ax2.set_ylabel("orthogonal drift ||Π⊥(W_t − W*)||_F")
    for a in (ax, ax2):
        a.grid(True, alpha=0.3)
        a.legend(fontsize=7)
    fig.suptitle(title or "Trajectories (measured)", fontsize=10)
    fig.tight_layout()
    return fig
