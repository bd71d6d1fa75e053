"""Figures from a sweep's stored runs (matplotlib, Agg backend): PNG and SVG.

Every figure marks what is measured (points with 95% CIs, fitted lines) and what is theory
(dotted lines and shaded thresholds from :mod:`theory`, labelled as such).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import (
    display_columns,
    exponent_table,
    select_tuned,
    series_columns,
    series_keys,
    summarize,
)
from .predictions import predicted_series
from .records import config_from_row

__all__ = ["KINDS", "plot_dimension", "plot_gap", "plot_phase", "plot_trajectory", "save",
           "series_style", "gap_thresholds_on_axis"]

KINDS = ("dimension", "gap", "phase", "trajectory")
GAP_FIELDS = ("sigma", "gamma", "noise_rank", "init_escape")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> list[Path]:
    """Write ``fig`` as PNG and SVG next to ``path``.

    Each file is written to a temporary name in the same folder and renamed into place, so a
    failure while drawing leaves no partial file behind (and keeps an older figure intact).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    try:
        for suffix in (".png", ".svg"):
            p = path.with_suffix(suffix)
            tmp = p.with_name(f".{p.stem}.tmp{suffix}")
            try:
                fig.savefig(tmp, dpi=130, bbox_inches="tight")
                os.replace(tmp, p)
            finally:
                tmp.unlink(missing_ok=True)
            out.append(p)
    finally:
        _plt().close(fig)
    return out


# Series styles: colour, marker and line style cycle with periods 10, 9 and 4, so no two of
# the first 36 series share marker and line style, and none of the first 90 colour and marker
# (a line drawn over an equal one stays visible by its markers and dashes).
MARKERS = ("o", "s", "D", "v", "P", "X", "<", ">", "h")
# ("--" is the fitted line's style and ":" theory's, so series lines use neither.)
LINESTYLES = ("-", "-.", (0, (12, 3)), (0, (12, 2, 2, 2)))


def series_style(i: int) -> dict:
    return dict(color=f"C{i % 10}", marker=MARKERS[i % len(MARKERS)],
                ls=LINESTYLES[i % len(LINESTYLES)])


def _offsets(k: int, spread: float = 0.04, span: float = 0.16) -> np.ndarray:
    """Multiplicative x offsets (log axes) that spread k series' points side by side, so equal
    values do not hide one another: ``spread`` decades apart, all within ``span`` decades."""
    step = min(spread, span / max(k - 1, 1))
    return 10 ** (step * (np.arange(k) - (k - 1) / 2))


def _lower_bounds(ax, x, budget, style: dict, name: str):
    """Points whose KM median is beyond the budget, drawn as lower bounds: a hollow marker at
    the budget with an arrow pointing up. Not in the legend (the series' own entry names the
    colour and marker); the data line's gid is ``censored:<name>``."""
    x = np.asarray(x, float)
    budget = np.asarray(budget, float)
    if not x.size:
        return None
    c = ax.errorbar(x, budget, yerr=[np.zeros_like(budget), 0.6 * budget], lolims=True,
                    fmt=style["marker"], ms=6, mfc="none", color=style["color"], capsize=3,
                    ls="none", label="_nolegend_")
    c.lines[0].set_gid(f"censored:{name}")
    return c


def _log_if_positive(ax, axis: str = "y"):
    """Log scale on ``axis`` only when it has finite positive data (a store where nothing
    escaped has none: matplotlib would refuse to log-scale it)."""
    vals = []
    for line in ax.get_lines():
        d = line.get_ydata() if axis == "y" else line.get_xdata()
        vals.append(np.asarray(d, float).ravel())
    for coll in ax.collections:
        offs = np.asarray(coll.get_offsets(), float)
        if offs.size:
            vals.append(offs[:, 1 if axis == "y" else 0])
    v = np.concatenate(vals) if vals else np.array([])
    if np.any(np.isfinite(v) & (v > 0)):
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
        return True
    return False


def _series_columns(df: pd.DataFrame, skip=()) -> list[str]:
    """The columns that make series (:func:`saddle.analysis.series_columns`: every swept
    field but D, m and n; a protocol-set learning rate and declared landscape draws pooled)."""
    return series_columns(df, exclude=skip)


def _series_groups(df: pd.DataFrame, series_cols: list[str]) -> list[tuple]:
    """(key, rows) per series, in sorted key order: the rows grouped by the series keys of
    ``series_cols`` (:func:`saddle.analysis.series_keys`); one group of all rows when there
    are none."""
    if not series_cols:
        return [((), df)]
    keys = series_keys(df, series_cols)
    return list(df.groupby([keys[c] for c in series_cols], sort=True))


def _series_row(g: pd.DataFrame, cols: list[str]) -> dict:
    """The series' first row, with each of ``cols`` None where the series pools several
    values (a protocol-set learning rate): the label names only what is fixed."""
    row = g.iloc[0].to_dict()
    for c in cols:
        vals = g[c].unique()
        row[c] = vals[0] if len(vals) == 1 else None
    return row


def _label(row: dict, cols: list[str]) -> str:
    """A series label. The optimizer is named as the report names methods (muon-ns,
    muon-polar; see :func:`_method`), so the orthogonalizer is not printed separately."""
    parts = []
    for c in cols:
        v = row[c]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if c == "orthogonalizer" and "optimizer" in cols:
            continue  # printed as part of the method name
        if c in ("optimizer", "orthogonalizer"):
            v = _method(row)
        parts.append(str(v) if c in ("optimizer", "orthogonalizer", "noise", "lr_protocol",
                                     "basis") else f"{c}={v}")
    return " ".join(parts) or "all runs"


def _errorbars(ax, x, med, lo, hi, **kw):
    med = np.asarray(med, float)
    lo = np.where(np.isfinite(lo), lo, med)
    hi = np.where(np.isfinite(hi), hi, np.nan)
    yerr = np.vstack([med - lo, np.where(np.isfinite(hi), hi - med, 0)])
    kw.setdefault("marker", "o")
    return ax.errorbar(x, med, yerr=yerr, capsize=3, ms=4, **kw)


def _theory_escape_values(config_row: pd.Series, dims, shapes,
                          skip: str = "") -> dict[str, list]:
    """Escape-time bounds from saddle/theory/ along a dimension series (empty if none apply),
    except ``skip`` (the estimate the series' predicted exponent line already draws)."""
    try:
        from . import theory
    except ImportError:
        return {}
    results = getattr(theory, "RESULTS", None)
    if not results:
        return {}
    out: dict[str, list] = {}
    for name, res in results.items():
        if getattr(res, "quantity", None) != "escape_time" or name == skip:
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


def _prediction_text(pred) -> str:
    """A series' legend note for the theory's estimate along it."""
    if math.isfinite(pred.slope):
        return f"b_th={pred.slope:.2f} ({pred.result})"
    return f"b_th: no escape predicted at D={pred.dims[-1]} ({pred.result})"


def _prediction_line(ax, pred, color, name: str) -> None:
    """The estimate's values along the series (dotted; the predicted exponent line on the
    log-log axes), at the shapes where it is finite."""
    d = np.asarray(pred.dims, float)
    v = np.asarray(pred.values, float)
    ok = np.isfinite(v)
    if ok.sum() >= 2:
        ax.plot(d[ok], v[ok], ls=":", color=color, lw=1.4, label="_nolegend_",
                gid=f"prediction:{pred.result}:{name}")


# A fitted exponent is drawn as a measurement only when the fit rests on enough data: at least
# FIT_MIN_DIMS dimensions, less than FIT_MAX_CENSORED of the series' runs censored, and every
# D's KM median inside the budget and below NEAR_BUDGET of it (a median at the budget's edge
# is where the censoring cliff starts, not a measured time). Otherwise the legend says why and
# no fitted line is drawn.
FIT_MIN_DIMS = 3
FIT_MAX_CENSORED = 0.5
NEAR_BUDGET = 0.9


def fit_caveat(fit, medians_reached: bool, near_budget: bool = False) -> str | None:
    """Why a fitted exponent is not a measurement ("censored", "2 D only"), or None.

    The fit's own ``outcome`` comes first: ``cliff`` (the medians run into the budget) and
    ``insufficient`` are never drawn as a fitted line."""
    outcome = fit.get("outcome", "fit") if hasattr(fit, "get") else "fit"
    if outcome == "cliff":
        return "censoring cliff (fit outcome)"
    if outcome not in (None, "fit"):
        return f"fit outcome {outcome}"
    if not medians_reached:
        return "median beyond budget at some D"
    if float(fit["censored_frac"]) >= FIT_MAX_CENSORED:
        return f"{float(fit['censored_frac']):.0%} of runs censored"
    if near_budget:
        return "median at the budget: censoring cliff"
    if int(fit["dims"]) < FIT_MIN_DIMS:
        return f"{int(fit['dims'])} D only"
    return None


def plot_dimension(df: pd.DataFrame, title: str | None = None):
    """Escape time against D (log-log): KM medians with 95% CIs, fitted b with bootstrap CI.

    Each series has its own colour, marker and small x offset, so coinciding series stay
    visible. A D whose KM median is beyond the budget is drawn as a lower bound (hollow
    marker at the budget, arrow up). A fitted b is drawn (dashed) only when the fit rests on
    measured medians (see :func:`fit_caveat`); otherwise the legend gives b with the caveat.
    """
    plt = _plt()
    df = select_tuned(df)
    series_cols = _series_columns(df)
    label_cols = display_columns(df, series_cols)
    fig, ax = plt.subplots(figsize=(7, 4.6))
    groups = _series_groups(df, series_cols)
    offs = _offsets(len(groups))
    any_cens = any_pred = False
    theory_names: list[str] = []
    for i, (_, g) in enumerate(groups):
        st = series_style(i)
        s = summarize(g, by=["D"]).sort_values("D")
        first = g.iloc[0]
        name = _label(_series_row(g, label_cols), label_cols)
        label = name
        fits = exponent_table(g, by=[]) if g["D"].nunique() > 1 else []
        fit = fits.iloc[0] if len(fits) else None
        reached = np.isfinite(s["median"].to_numpy(float))
        caveat = None
        if fit is not None and math.isfinite(fit["exponent"]):
            near = bool((s["median"] >= NEAR_BUDGET * s["max_steps"]).any())
            caveat = fit_caveat(fit, bool(reached.all()), near)
            label += f"  b={fit['exponent']:.2f} [{fit['low']:.2f}, {fit['high']:.2f}]"
            if caveat:
                label += f" ({caveat}: not a measurement)"
        pred = predicted_series(g)
        if pred is not None:
            any_pred = True
            label += "  " + _prediction_text(pred)
        x = s["D"].to_numpy(float) * offs[i]
        line = _errorbars(ax, x[reached], s["median"][reached], s["median_low"][reached],
                          s["median_high"][reached], color=st["color"], marker=st["marker"],
                          ls=st["ls"], label=label, lw=1.2)
        line.lines[0].set_gid(f"series:{name}")
        if (~reached).any():
            any_cens = True
            _lower_bounds(ax, x[~reached], s["max_steps"][~reached], st, name)
        if fit is not None and math.isfinite(fit["exponent"]) and caveat is None:
            d = np.array([fit["d_min"], fit["d_max"]], float)
            ax.plot(d, np.exp(fit["intercept"]) * d ** fit["exponent"], ls="--",
                    color=st["color"], lw=0.8, alpha=0.8, label="_nolegend_", gid=f"fit:{name}")
        if pred is not None:
            _prediction_line(ax, pred, st["color"], name)
        shapes = g.groupby("D")[["m", "n"]].first().sort_index()
        for tname, vals in _theory_escape_values(first, shapes.index, shapes.to_numpy(),
                                                 skip=pred.result if pred else "").items():
            theory_names.append(tname)
            ax.plot(shapes.index, vals, ls=":", color=st["color"], lw=1.2, label="_nolegend_",
                    gid=f"theory:{tname}:{name}")
    # One legend entry per theory result (each drawn in the colour of the series it is for).
    for tname in dict.fromkeys(theory_names):
        ax.plot([], [], ls=":", color="k", lw=1.2, label=f"theory: {tname}, in its series' colour")
    ax.set_xscale("log")
    _log_if_positive(ax)
    ax.set_xlabel("D = m·n (series offset slightly in D so that none hides another)")
    ax.set_ylabel("escape time (steps): KM median, 95% CI")
    parts = ["measured", "dashed: fit"]
    if theory_names or any_pred:
        parts.append("dotted: theory (b_th: its exponent)")
    if any_cens:
        parts.append("hollow ↑: median beyond the budget (lower bound)")
    ax.set_title(title or "Escape time against dimension", fontsize=10)
    ax.text(0.0, 1.01, "; ".join(parts), transform=ax.transAxes, fontsize=7, va="bottom")
    ax.set_title(ax.get_title(), fontsize=10, pad=14)
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


def gap_thresholds_on_axis(df: pd.DataFrame, x: str) -> dict[int, tuple[float, str]]:
    """The spiked-matrix (BBP) threshold of ``theory.BBP_THRESHOLD`` on the noise axis, per D.

    The theory's threshold is on the signal: the top singular vector of one gradient carries
    the escape direction iff theta > tau (mn)^{1/4}, tau the noise's per-entry std. For the
    iid noise models tau is proportional to sigma, so the threshold on the sigma axis is
    sigma_c = sigma theta / theta_c(sigma). The signal is theta = gamma |a_0| when the runs
    start off the saddle (init_escape > 0); at the saddle (a_0 = 0) it is the largest
    escape-direction gradient before escape, gamma * radius, so above sigma_c no gradient of
    the escape phase carries the direction. Returns {D: (sigma_c, what theta is)}; empty when
    ``x`` is not sigma or the theory does not apply (lowrank and kronecker noise)."""
    if x != "sigma" or df.empty:
        return {}
    try:
        from .theory import BBP_THRESHOLD
    except ImportError:
        return {}
    out = {}
    for D, g in df.groupby("D"):
        try:
            cfg = config_from_row(g.iloc[0])
        except Exception:  # a row of an older schema
            continue
        if not BBP_THRESHOLD.assumptions_hold(cfg) or not cfg.sigma:
            continue
        theta_c = BBP_THRESHOLD.evaluate(cfg)
        a0 = abs(cfg.init_escape or 0.0)
        signal, what = ((cfg.gamma * a0, "θ = γ|a₀|") if a0 > 0
                        else (cfg.gamma * cfg.radius, "θ = γ·radius"))
        if theta_c and signal > 0:
            out[int(D)] = (float(cfg.sigma * signal / theta_c), what)
    return out


def plot_gap(df: pd.DataFrame, x: str | None = None, threshold: float | None = None,
             title: str | None = None):
    """KM median escape time and success rate against a signal/noise field.

    Series (one per optimizer and D) have their own colour, marker, line style and a small x
    offset, so equal values stay visible in both panels. A noise level whose KM median is
    beyond the budget is drawn as a lower bound at the budget. Dotted vertical lines: the
    theory's BBP threshold per D (:func:`gap_thresholds_on_axis`), or ``threshold`` if given.
    """
    plt = _plt()
    x = gap_field(df, x)
    df = select_tuned(df)
    series_cols = _series_columns(df, skip=(x,))
    if "D" in df.columns and df["D"].nunique() > 1 and "D" not in series_cols:
        series_cols.append("D")  # m and n are skipped as series; one line per D, not pooled
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 6.4), sharex=True,
                                  gridspec_kw=dict(height_ratios=[2, 1]))
    groups = _series_groups(df, series_cols)
    if "D" in series_cols:  # numeric order of D within each optimizer, not string order
        groups.sort(key=lambda kg: [int(kg[1]["D"].iloc[0]) if c == "D" else str(k)
                                    for c, k in zip(series_cols, kg[0], strict=True)])
    offs = _offsets(len(groups), 0.03)
    any_cens = False
    for i, (_, g) in enumerate(groups):
        st = series_style(i)
        s = summarize(g, by=[x]).sort_values(x)
        label = _label(_series_row(g, series_cols), display_columns(df, series_cols))
        ok = np.isfinite(s["median"].to_numpy(float))
        xs = s[x].to_numpy(float) * offs[i]
        c = _errorbars(ax, xs[ok], s["median"][ok], s["median_low"][ok], s["median_high"][ok],
                       color=st["color"], marker=st["marker"], ls=st["ls"], label=label, lw=1.2)
        c.lines[0].set_gid(f"series:{label}")
        if (~ok).any():
            any_cens = True
            _lower_bounds(ax, xs[~ok], s["max_steps"][~ok], st, label)
        ax2.plot(xs, s["success_rate"], marker=st["marker"], ms=4, color=st["color"],
                 ls=st["ls"], lw=1.1, mfc="none", gid=f"success:{label}")
    if threshold is not None:
        thresholds = {0: (float(threshold), "given")} if math.isfinite(threshold) else {}
    else:
        thresholds = gap_thresholds_on_axis(df, x)
    # Theory lines are vertical line collections, not Line2D: the axes' lines stay the
    # measured series. Their legend entries are proxies added to the legend only.
    from matplotlib.lines import Line2D

    dashes = [(0, (1, 1.5)), (0, (1, 3)), (0, (2, 2, 1, 2)), (0, (1, 1, 3, 1))]
    proxies = []
    # One line per distinct threshold: D-free thresholds (opnorm noise) share one line.
    merged: dict[float, tuple[list[int], str]] = {}
    for D, (thr, what) in sorted(thresholds.items()):
        key = float(f"{thr:.12g}")
        merged.setdefault(key, ([], what))[0].append(D)
    for j, (thr, (Ds, what)) in enumerate(sorted(merged.items())):
        ds = ", ".join(str(d) for d in Ds if d)
        lab = f"theory: BBP threshold, D={ds} ({what})" if ds else "theory: threshold"
        ls = dashes[j % len(dashes)]
        for a in (ax, ax2):
            for D in Ds:
                a.vlines(thr, 0, 1, transform=a.get_xaxis_transform(), colors="k",
                         linestyles=[ls], lw=1, label="_nolegend_", gid=f"threshold:{D}")
        proxies.append(Line2D([], [], color="k", ls=ls, lw=1, label=lab))
        if ds:
            ax2.text(thr, 0.5 + 0.2 * (j % 2), f" D={ds}", fontsize=6, rotation=90,
                     va="center", ha="right")
    ax.set_xscale("log")
    for a in (ax, ax2):
        a.grid(True, which="both", alpha=0.3)
    _log_if_positive(ax)
    ax.set_ylabel("escape time: KM median, 95% CI")
    ax2.set_ylabel("success rate")
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_xlabel(f"{x} (series offset slightly so that none hides another)")
    parts = ["measured"]
    if thresholds:
        parts.append("dotted: theory threshold")
    if any_cens:
        parts.append("hollow ↑: median beyond the budget (lower bound)")
    ax.set_title(title or f"Escape time against {x}", fontsize=10, pad=14)
    ax.text(0.0, 1.01, "; ".join(parts), transform=ax.transAxes, fontsize=7, va="bottom")
    handles = ax.get_legend_handles_labels()[0] + proxies
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0)
    return fig


def plot_phase(df: pd.DataFrame, x: str | None = None, metric: str = "median",
               title: str | None = None):
    """Heatmap over (D, x) of the KM median escape time or the success rate, per series.

    All panels share one colour scale (the same quantity), shown by one colour bar, and each
    cell has its value written in it; a cell whose median is beyond the budget reads
    "> budget" and is left blank.
    """
    plt = _plt()
    from matplotlib.colors import LogNorm, Normalize

    from .errors import SaddleInputError

    if metric not in ("median", "success_rate"):
        raise SaddleInputError(f"--metric: got {metric!r}; allowed: median, success_rate")
    x = gap_field(df, x)
    df = select_tuned(df)
    series_cols = _series_columns(df, skip=(x,))
    groups = _series_groups(df, series_cols)
    panels = []
    for _, g in groups:
        s = summarize(g, by=["D", x])
        Ds = sorted(s["D"].unique())
        xs = sorted(s[x].unique())
        Z = np.full((len(Ds), len(xs)), np.nan)
        budget = np.full_like(Z, np.nan)
        for r in s.to_dict("records"):
            Z[Ds.index(r["D"]), xs.index(r[x])] = r[metric]
            budget[Ds.index(r["D"]), xs.index(r[x])] = r["max_steps"] or np.nan
        panels.append((g, Ds, xs, Z, budget))
    finite = np.concatenate([p[3][np.isfinite(p[3])] for p in panels] or [np.array([])])
    if metric == "median":
        cmap, lab = "viridis", "KM median escape time (steps, log colour scale)"
        pos = finite[finite > 0]
        norm = LogNorm(pos.min(), pos.max()) if pos.size and pos.min() < pos.max() else (
            Normalize(*(pos.min() * 0.9, pos.max() * 1.1) if pos.size else (0, 1)))
    else:
        cmap, lab, norm = "magma", "success rate", Normalize(0, 1)
    k = len(panels)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k + 1.2, 3.8), squeeze=False)
    im = None
    for ax, (g, Ds, xs, Z, budget) in zip(axes[0], panels, strict=True):
        im = ax.imshow(np.ma.masked_invalid(Z), origin="lower", aspect="auto", cmap=cmap,
                       norm=norm)
        for r in range(Z.shape[0]):
            for c in range(Z.shape[1]):
                v = Z[r, c]
                if math.isfinite(v):
                    text = f"{v:.0f}" if metric == "median" else f"{v:.2f}"
                    rgba = im.cmap(im.norm(v))
                    light = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] > 0.5
                    color = "black" if light else "white"
                elif metric == "median" and math.isfinite(budget[r, c]):
                    text, color = f"> {budget[r, c]:.0f}", "black"
                else:
                    continue
                ax.text(c, r, text, ha="center", va="center", fontsize=6.5, color=color,
                        gid="cell")
        ax.set_xticks(range(len(xs)), [f"{v:.3g}" for v in xs], rotation=45, fontsize=7)
        ax.set_yticks(range(len(Ds)), [str(d) for d in Ds], fontsize=7)
        ax.set_xlabel(x)
        ax.set_ylabel("D")
        ax.set_title(_label(_series_row(g, series_cols), display_columns(df, series_cols)),
                     fontsize=9)
    fig.suptitle(title or f"Phase diagram over (D, {x}) (measured)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    cax = fig.add_axes((0.915, 0.18, 0.015, 0.65))
    fig.colorbar(im, cax=cax, label=lab + ("; blank: > budget" if metric == "median" else ""))
    return fig


def _method(row: dict) -> str:
    """One name per optimizer variant: muon-ns / muon-polar for Muon, else the optimizer."""
    if row.get("optimizer") == "muon":
        return "muon-ns" if row.get("orthogonalizer") == "newton_schulz" else "muon-polar"
    return str(row.get("optimizer"))


def plot_trajectory(runs: pd.DataFrame, traces: pd.DataFrame, per_group: int = 3,
                    title: str | None = None):
    """Escape coordinate |a_t| and orthogonal drift against t: small multiples, one column
    per optimizer (each with its own log time axis, so a long censored run does not squeeze
    another optimizer's escapes), the first ``per_group`` runs (by seed) per D in each.

    Colour: D; line style and width: the run (seed; the first wide and light, so an equal
    later run drawn over it stays visible); a censored run ends in a hollow marker at its last
    step. Every drawn run has its own legend entry.
    """
    plt = _plt()
    from .errors import SaddleInputError

    if traces.empty:
        raise SaddleInputError("DIR: no traces stored; allowed: a sweep run with "
                               "trace_stride = K in its spec")
    runs = runs[runs["run_id"].isin(set(traces["run_id"]))].copy()
    runs["method"] = [_method(r) for r in runs.to_dict("records")]
    methods = sorted(runs["method"].unique())
    Ds = sorted(runs["D"].unique())
    k = max(len(methods), 1)
    fig, axes = plt.subplots(2, k, figsize=(3.3 * k + 1.5, 6.2), squeeze=False)
    by_run = dict(list(traces.groupby("run_id")))
    run_styles = ("-", "--", ":", "-.")
    for col, method in enumerate(methods):
        ax, ax2 = axes[0, col], axes[1, col]
        g_m = runs[runs["method"] == method]
        for D, g in g_m.groupby("D"):
            color = f"C{Ds.index(D) % 10}"
            for j, r in enumerate(g.sort_values("seed").head(per_group).to_dict("records")):
                tr = by_run[r["run_id"]].sort_values("t")
                t = tr["t"].to_numpy(float) + 1.0  # log time axis: t + 1
                a = np.abs(tr["escape_coordinate_0"].to_numpy(float))
                state = "escaped" if r["escaped"] else "censored"
                lab = f"D={D} seed {r['seed']} ({state})"
                # The first run wide and light, later ones narrow on top: runs with the same
                # path (e.g. a deterministic drift) stay visible as a dashed line on a band.
                kw = dict(color=color, lw=2.6 if j == 0 else 1.0, alpha=0.5 if j == 0 else 1.0,
                          ls=run_styles[j % len(run_styles)])
                ax.plot(t, a, label=lab, gid=f"run:{method}:{lab}", **kw)
                ax2.plot(t, tr["orthogonal_drift"], label="_nolegend_", **kw)
                if not r["escaped"]:
                    for a_, y in ((ax, a), (ax2, tr["orthogonal_drift"].to_numpy(float))):
                        a_.plot(t[-1:], y[-1:], marker="o", mfc="none", color=color, ls="none",
                                label="_nolegend_", gid=f"censored:{method}:{lab}")
        ax.set_title(method, fontsize=9)
        for a_ in (ax, ax2):
            a_.set_xscale("log")
            a_.grid(True, which="both", alpha=0.3)
        _log_if_positive(ax)
        ax2.set_xlabel("step t + 1 (log)")
        if col == 0:
            ax.set_ylabel("|a_t| (escape coordinate)")
            ax2.set_ylabel("orthogonal drift ||Π⊥(W_t − W*)||_F")
        ax.legend(fontsize=6, loc="best")
    fig.suptitle((title or "Trajectories (measured)") + f": {per_group} runs per optimizer and D;"
                 " colour: D, line style: run, hollow circle: censored run's last step",
                 fontsize=9)
    fig.tight_layout()
    return fig
