"""Claim C4: how noise coherent with the escape direction changes leakage and escape time.

*Leakage* is a trace column (:data:`saddle.engine.TRACE_FIELDS`) averaged over one run's
pre-escape rows: by default ``update_leakage`` = ||dW_perp||_F / ||dW||_F, the fraction of
the step outside the escape subspace; ``update_orthogonal`` and ``momentum_alignment`` (the
momentum's top singular pair against (p_0, q_0)) work alike. *Pre-escape* rows are those
whose iterate is still within ``window`` times the escape radius (all rows before the stop
under the loss criterion): the bulk's stationary phase, not the final run-out.

A *treatment* column (``noise_coherence`` by default, or ``basis``, ``noise``) takes a
*baseline* level (c = 0: the bulk's stationary spread under the plain noise law) and other
levels. Within each group of runs that agree on every other varying condition column
(optimizer, shape, ...), each level is compared with the baseline:

- ``ratio``: mean per-run leakage at the level over the baseline's, with a two-sample
  percentile-bootstrap CI (runs resampled within each arm, :func:`scipy.stats.bootstrap`);
- ``p_value``: the two-sided Mann-Whitney U test of the per-run leakages;
- ``tau_ratio``: the Kaplan-Meier median escape time at the level over the baseline's, with
  a bootstrap CI alike (censored runs kept, :func:`saddle.stats.km_quantile_batch`), and
  ``tau_p_value``, the log-rank test (:func:`scipy.stats.logrank`).

By symmetry an equivariant optimizer (SGD, polar Muon) with rotation-invariant noise must
show no effect of ``basis``; noise aligned with E_0 must show one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.stats

from .analysis import times_and_events, varying_columns
from .stats import km_quantile_batch

__all__ = ["LEAKAGE_METRICS", "run_leakage", "leakage_effects"]

LEAKAGE_METRICS = ("update_leakage", "update_orthogonal", "momentum_alignment")
# What a None in a treatment column means (a field normalized away at its neutral value).
_NONE_MEANS = {"noise_coherence": 0.0}
# Columns that never define a group here: the treatment's own bookkeeping and the seeds.
_NOT_GROUPS = ("seed", "seeds", "landscape_seed", "landscape_draw")


def run_leakage(runs: pd.DataFrame, traces: pd.DataFrame, metric: str = "update_leakage",
                window: float = 0.5) -> pd.Series:
    """Each run's mean ``metric`` over its pre-escape trace rows (NaN without such rows),
    indexed by ``run_id``. Traces written before ``metric`` existed give NaN."""
    if metric not in LEAKAGE_METRICS:
        raise ValueError(f"metric: got {metric!r}; allowed: {', '.join(LEAKAGE_METRICS)}")
    out = pd.Series(math.nan, index=pd.Index(runs["run_id"], name="run_id"), name=metric)
    if traces.empty or metric not in traces.columns:
        return out
    radius = runs.set_index("run_id")["radius"] if "radius" in runs.columns else None
    tr = traces[traces["run_id"].isin(out.index)]
    if radius is not None:
        limit = tr["run_id"].map(radius).astype(float) * window
        # No radius (loss criterion): every row before the stop counts.
        tr = tr[limit.isna() | (tr["escape_distance"] < limit)]
    means = tr.groupby("run_id")[metric].mean()  # NaN rows (no step) are skipped
    out.loc[means.index] = means.to_numpy(float)
    return out


def _ratio_ci(x: np.ndarray, y: np.ndarray, stat, confidence: float, n_resamples: int,
              seed: int) -> tuple[float, float]:
    """Percentile-bootstrap CI of stat(x) / stat(y), the two arms resampled independently."""
    if len(x) < 2 or len(y) < 2:
        return math.nan, math.nan

    def ratio(a, b, axis=-1):
        return stat(np.moveaxis(a, axis, -1)) / stat(np.moveaxis(b, axis, -1))

    with np.errstate(invalid="ignore", divide="ignore"):
        res = scipy.stats.bootstrap((x, y), ratio, vectorized=True, paired=False,
                                    n_resamples=n_resamples, confidence_level=confidence,
                                    method="percentile", rng=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    return float(lo), float(hi)


def _mean(a: np.ndarray) -> np.ndarray:
    return a.mean(axis=-1)


def _km_median_encoded(a: np.ndarray) -> np.ndarray:
    """KM medians of escape times encoded as +t (escaped) or -t (censored at t)."""
    return km_quantile_batch(np.abs(a), a > 0)


def _tau_compare(g: pd.DataFrame, base: pd.DataFrame, confidence, n_resamples, seed) -> dict:
    t1, e1 = times_and_events(g)
    t0, e0 = times_and_events(base)
    m1 = float(km_quantile_batch(t1, e1))
    m0 = float(km_quantile_batch(t0, e0))
    lo, hi = _ratio_ci(np.where(e1, t1, -t1), np.where(e0, t0, -t0), _km_median_encoded,
                       confidence, n_resamples, seed)
    p = math.nan
    if e1.any() or e0.any():
        p = float(scipy.stats.logrank(
            scipy.stats.CensoredData(uncensored=t1[e1], right=t1[~e1]),
            scipy.stats.CensoredData(uncensored=t0[e0], right=t0[~e0])).pvalue)
    return dict(tau_median=m1, tau_base_median=m0,
                tau_ratio=m1 / m0 if m0 > 0 else math.nan, tau_ratio_low=lo,
                tau_ratio_high=hi, tau_p_value=p)


def leakage_effects(runs: pd.DataFrame, traces: pd.DataFrame,
                    treatment: str = "noise_coherence", baseline=None,
                    metric: str = "update_leakage", by: list[str] | None = None,
                    window: float = 0.5, confidence: float = 0.95, n_resamples: int = 999,
                    seed: int = 0) -> pd.DataFrame:
    """One row per (group, level != baseline): the level's effect on ``metric`` and on the
    escape time, against the baseline level of ``treatment`` (default: its smallest level).

    ``runs``: one row per run (:meth:`saddle.sweep.Store.runs`); ``traces``: the long trace
    rows (:meth:`saddle.sweep.Store.traces`). ``by``: the grouping columns (default: the
    condition columns that vary, less the treatment and the seeds).
    """
    if treatment not in runs.columns:
        raise ValueError(f"treatment: got {treatment!r}; allowed: a column of the runs")
    runs = runs.copy()
    level = runs[treatment]
    if treatment in _NONE_MEANS:
        level = level.astype(object).where(level.notna(), _NONE_MEANS[treatment])
    runs["_level"] = level
    levels = sorted(runs["_level"].unique().tolist(), key=str)
    if baseline is None:
        baseline = min(levels) if all(isinstance(v, (int, float)) for v in levels) else levels[0]
    if baseline not in levels:
        raise ValueError(f"baseline: got {baseline!r}; allowed: one of {levels}")
    if by is None:
        by = [c for c in varying_columns(runs, exclude=(treatment, *_NOT_GROUPS))]
    runs["_leak"] = run_leakage(runs, traces, metric, window).to_numpy()

    rows = []
    groups = runs.groupby(by, dropna=False, sort=True) if by else [((), runs)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        base = g[g["_level"] == baseline]
        for lv in [v for v in levels if v != baseline]:
            arm = g[g["_level"] == lv]
            if arm.empty or base.empty:
                continue
            x = arm["_leak"].dropna().to_numpy(float)
            y = base["_leak"].dropna().to_numpy(float)
            mx = float(x.mean()) if len(x) else math.nan
            my = float(y.mean()) if len(y) else math.nan
            lo, hi = _ratio_ci(x, y, _mean, confidence, n_resamples, seed)
            p = (float(scipy.stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
                 if len(x) and len(y) else math.nan)
            row = dict(zip(by, key, strict=True))
            row.update(treatment=treatment, level=lv, baseline=baseline, metric=metric,
                       runs=len(x), base_runs=len(y), mean=mx, base_mean=my,
                       difference=mx - my, ratio=mx / my if my else math.nan,
                       ratio_low=lo, ratio_high=hi, p_value=p)
            row.update(_tau_compare(arm, base, confidence, n_resamples, seed))
            rows.append(row)
    return pd.DataFrame(rows)


def plot_effects(effects: pd.DataFrame, path) -> None:
    """Leakage ratio and escape-time ratio (treatment / baseline) with their CIs, one row per
    (method, D, noise, basis, treatment level); hollow markers for the symmetry controls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = effects.reset_index(drop=True)
    labels = [f"{r.method} D={int(r.D)} {r.noise} "
              + (f"{r.basis} c={r.level:g}" if r.treatment == "noise_coherence"
                 else f"{r.level}/{r.baseline}") for r in e.itertuples()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.32 * len(e) + 1.6), sharey=True)
    y = np.arange(len(e))
    ctrl = e["basis_symmetry"].to_numpy(bool) if "basis_symmetry" in e.columns else \
        np.zeros(len(e), bool)
    for ax, (col, lo, hi, name) in zip(axes, [
            ("ratio", "ratio_low", "ratio_high", "leakage ratio"),
            ("tau_ratio", "tau_ratio_low", "tau_ratio_high", "escape-time ratio (KM median)")],
            strict=True):
        mid = e[col].to_numpy(float)
        err = np.vstack([mid - e[lo].to_numpy(float), e[hi].to_numpy(float) - mid])
        err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
        for mask, face in ((~ctrl, "C0"), (ctrl, "none")):
            ax.errorbar(mid[mask], y[mask], xerr=err[:, mask], fmt="o", mfc=face, mec="C0",
                        ecolor="C0", capsize=2, ms=4, ls="none")
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
        vals = np.concatenate([mid, e[lo].to_numpy(float), e[hi].to_numpy(float)])
        vals = vals[np.isfinite(vals)]
        if col == "tau_ratio" and vals.size and vals.min() > 0:
            # ratios: a log axis with plain labels at powers of two
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        elif vals.size:  # leakage ratios live in [0, ~1]: linear, so 0 (no leakage) shows
            ax.set_xlim(0, max(1.1, float(vals.max()) * 1.05))
        ax.set_xlabel(f"{name}, treatment / baseline")
        ax.grid(True, axis="x", which="both", alpha=0.3)
    axes[0].set_yticks(y, labels, fontsize=6)
    axes[0].invert_yaxis()
    fig.suptitle("C4: leakage and escape time against the baseline (95% CIs; hollow: "
                 "symmetry controls)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
