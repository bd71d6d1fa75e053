"""From stored runs to tables: per-group statistics, tuned-lr selection, dimension exponents.

A *group* is a set of runs that differ only in their seed. By default the grouping columns
are the condition columns (config fields, protocol, multiplier) that vary in the data;
:func:`summarize` takes an explicit ``by`` as well.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .config import FIELDS
from .stats import fit_exponent, km_median

__all__ = ["load_runs", "condition_columns", "varying_columns", "display_columns", "summarize",
           "select_tuned",
           "exponent_table", "times_and_events"]

_NOT_CONDITION = {"seed", "seeds"}


def load_runs(out) -> pd.DataFrame:
    """All runs stored under a sweep directory (see :class:`saddle.sweep.Store`)."""
    from .sweep.store import Store

    return Store(out).runs()


def condition_columns(df: pd.DataFrame) -> list[str]:
    cols = [c for c in FIELDS if c in df.columns and c not in _NOT_CONDITION]
    return cols + [c for c in ("lr_protocol", "lr_multiplier", "aspect") if c in df.columns]


def varying_columns(df: pd.DataFrame, exclude=()) -> list[str]:
    """Condition columns with more than one distinct value (None counts as a value)."""
    out = []
    for c in condition_columns(df):
        if c in exclude:
            continue
        if df[c].astype("string").fillna("<none>").nunique() > 1:
            out.append(c)
    return out


def display_columns(df: pd.DataFrame, by: list[str]) -> list[str]:
    """The grouping columns worth showing: those that vary within one optimizer's runs.

    Optimizer hyperparameters that are only nulled or defaulted by the optimizer choice (b1 for
    AdamW, ns_steps for Muon, ...) vary across the table but carry no information beyond
    ``optimizer``; they stay in the data and the JSON, not in the printed table.
    """
    if "optimizer" not in df.columns:
        return list(by)
    keep = []
    for c in by:
        if c == "optimizer":
            keep.append(c)
            continue
        per_opt = df.groupby("optimizer")[c].agg(lambda s: s.astype("string").fillna("-").nunique())
        if (per_opt > 1).any():
            keep.append(c)
    return keep


def times_and_events(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Escape times with censoring: censored and diverged runs count as censored at ``steps``.

    A diverged run did not escape; it is censored at the step it diverged (it could not have
    escaped later), never counted as an escape.
    """
    e = g["escaped"].to_numpy(bool)
    t = np.where(e, g["escape_time"].fillna(0).to_numpy(float), g["steps"].to_numpy(float))
    return t, e


def _key_frame(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return df[by].astype("string").fillna("<none>")


def _groups(df: pd.DataFrame, by: list[str]) -> list[pd.DataFrame]:
    """The rows of each group of equal ``by`` values (missing values equal), in order of first
    appearance; all rows as one group when ``by`` is empty."""
    if not by:
        return [df]
    keys = _key_frame(df, by)
    key = by if len(by) > 1 else by[0]  # a one-element list warns in pandas >= 3
    return [df.loc[idx] for idx in keys.groupby(key, sort=False).groups.values()]


def summarize(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """One row per group: runs, success rate, KM median with 95% CI, mean escaped, diverged."""
    if df.empty:
        return pd.DataFrame()
    by = varying_columns(df) if by is None else list(by)
    rows = []
    for g in _groups(df, by):
        t, e = times_and_events(g)
        med = km_median(t, e)
        row = {c: g[c].iloc[0] for c in by}
        if "D" in g.columns:
            row["D"] = int(g["D"].iloc[0])
        esc_times = g.loc[g["escaped"], "escape_time"].astype(float)
        row.update(
            runs=len(g),
            escaped=int(e.sum()),
            censored=int((g["status"] == "censored").sum()),
            diverged=int(g["diverged"].sum()),
            signal_lost=int(g["signal_lost"].fillna(False).astype(bool).sum())
            if "signal_lost" in g.columns else 0,
            success_rate=float(e.mean()),
            median=med.estimate,
            median_low=med.low,
            median_high=med.high,
            mean_escaped=float(esc_times.mean()) if len(esc_times) else math.nan,
            max_steps=int(g["max_steps"].max()) if "max_steps" in g.columns else None,
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    sort = [c for c in ("optimizer", "orthogonalizer", "lr_protocol", "noise", "D", "m", "n")
            if c in out.columns]
    return out.sort_values(sort, kind="stable").reset_index(drop=True) if sort else out


def select_tuned(df: pd.DataFrame) -> pd.DataFrame:
    """Keep, for ``tuned`` runs, only the learning rate with the best KM median per condition.

    Best: the smallest Kaplan-Meier median (censoring-aware); ties and unreached medians are
    broken by the higher success rate, then by the smaller mean escape time. Runs of other
    protocols pass through unchanged.
    """
    if df.empty or "lr_protocol" not in df.columns:
        return df
    tuned = df[df["lr_protocol"] == "tuned"]
    if tuned.empty:
        return df
    rest = df[df["lr_protocol"] != "tuned"]
    cond = [c for c in condition_columns(tuned) if c not in ("learning_rate", "lr_multiplier")]
    keys = _key_frame(tuned, cond)
    keep = []
    for _, idx in keys.groupby(cond, sort=False).groups.items():
        g = tuned.loc[idx]
        best, best_score = None, None
        for k, gk in g.groupby("lr_multiplier"):
            t, e = times_and_events(gk)
            med = km_median(t, e).estimate
            score = (med, -e.mean(), float(np.mean(t)), k)
            if best_score is None or score < best_score:
                best, best_score = gk.index, score
        keep.extend(best)
    return pd.concat([rest, tuned.loc[keep]]).sort_values("run_id").reset_index(drop=True)


def exponent_table(
    df: pd.DataFrame, by: list[str] | None = None, n_resamples: int = 999
) -> pd.DataFrame:
    """Fitted dimension exponent b (log median = a + b log D) with a bootstrap CI per series.

    A series is a group of runs that differ in D (and seed) only. Tuned runs are reduced to
    their best learning rate per D first.
    """
    if df.empty:
        return pd.DataFrame()
    df = select_tuned(df)
    skip = {"m", "n", "learning_rate", "lr_multiplier"}
    by = [c for c in varying_columns(df) if c not in skip] if by is None else list(by)
    rows = []
    for g in _groups(df, by):
        samples = {int(D): times_and_events(gd) for D, gd in g.groupby("D")}
        if len(samples) < 2:
            continue
        fit = fit_exponent(samples, n_resamples=n_resamples)
        row = {c: g[c].iloc[0] for c in by}
        row.update(exponent=fit.exponent, low=fit.low, high=fit.high, intercept=fit.intercept,
                   dims=len(fit.dims), d_min=min(samples), d_max=max(samples),
                   dropped=",".join(str(d) for d in fit.dropped),
                   runs=len(g), censored_frac=float(1 - g["escaped"].mean()))
        rows.append(row)
    return pd.DataFrame(rows)
