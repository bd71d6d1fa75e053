"""From stored runs to tables: per-group statistics, tuned-lr selection, dimension exponents.

A *group* is a set of runs that differ only in their seed (and, where the sweep declared
``landscape_draws``, in their landscape draw: draws are pooled and counted). By default the
grouping columns are the condition columns (config fields, protocol, multiplier) that vary in
the data; :func:`summarize` takes an explicit ``by`` as well.

A *series* is a set of groups that differ only in D: one fitted exponent, one line in a
dimension plot. :func:`series_columns` states which columns tell series apart.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .config import FIELDS
from .stats import fit_exponent, km_median

__all__ = ["load_runs", "condition_columns", "varying_columns", "display_columns", "summarize",
           "select_tuned", "series_columns", "series_keys", "pooled_masks",
           "exponent_table", "times_and_events", "DERIVED_LR_PROTOCOLS"]

_NOT_CONDITION = {"seed", "seeds"}
# Protocols that set the learning rate from D (and the optimizer): within one of their series
# the learning rate varies with D by design, so it is not a series key there.
DERIVED_LR_PROTOCOLS = ("matched_rms", "matched_frobenius", "matched_spectral", "stability_edge")
SHAPE_COLUMNS = ("D", "m", "n")
DRAW = "landscape_draw"  # the run's landscape draw (0..k-1) under the spec's landscape_draws
_POOLED = "<pooled>"


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
    """Escape times with censoring: a run that did not escape is censored at its budget.

    A censored run reached its budget (``steps`` = ``max_steps``). A diverged run blew up and
    will never escape: it counts as a failure to escape within the budget, censored at
    ``max_steps``, never at the step it diverged (that would take it out of the risk set as
    if its future were unknown, and let the survivors' escapes set the median), and never
    as an escape.
    """
    e = g["escaped"].to_numpy(bool)
    tau = g["escape_time"].astype("float64").fillna(0).to_numpy()
    budget = (g["max_steps"] if "max_steps" in g.columns else g["steps"]).to_numpy(float)
    diverged = (g["diverged"].fillna(False).to_numpy(bool) if "diverged" in g.columns
                else np.zeros(len(g), bool))
    t = np.where(e, tau, np.where(diverged, budget, g["steps"].to_numpy(float)))
    return t, e


def pooled_masks(df: pd.DataFrame, lr: bool = True) -> dict[str, pd.Series]:
    """Per column, the rows where that column does not tell groups apart (True = pooled).

    ``landscape_seed`` where the run carries a ``landscape_draw`` (the draws are one random
    factor, pooled). With ``lr``: ``learning_rate`` where a protocol sets it (``tuned`` after
    :func:`select_tuned`, and :data:`DERIVED_LR_PROTOCOLS`), and ``lr_multiplier`` always (it is
    a protocol's output, never a swept field).
    """
    masks = {}
    if DRAW in df.columns and "landscape_seed" in df.columns:
        masks["landscape_seed"] = df[DRAW].notna()
    if lr:
        if "lr_protocol" in df.columns and "learning_rate" in df.columns:
            proto = df["lr_protocol"].astype("string")
            set_by = proto.isin(DERIVED_LR_PROTOCOLS + ("tuned",)).fillna(False)
            masks["learning_rate"] = set_by.astype(bool)
        if "lr_multiplier" in df.columns:
            masks["lr_multiplier"] = pd.Series(True, index=df.index)
    return masks


def _key_frame(df: pd.DataFrame, by: list[str], masks=None) -> pd.DataFrame:
    keys = df[by].astype("string").fillna("<none>")
    for c, mask in (masks or {}).items():
        if c in keys.columns:
            keys.loc[mask.to_numpy(bool), c] = _POOLED
    return keys


def series_keys(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """The text of ``cols`` per row as series keys: pooled entries (:func:`pooled_masks`)
    read ``<pooled>``, missing ones ``<none>``."""
    return _key_frame(df, cols, pooled_masks(df))


def series_columns(df: pd.DataFrame, exclude=()) -> list[str]:
    """The columns that tell series apart: every condition column that varies except D, m
    and n. A swept learning rate, noise level or landscape seed keeps its own series.

    Exceptions: (a) ``learning_rate`` is not a key in rows whose protocol derives it from D
    (:data:`DERIVED_LR_PROTOCOLS`: within such a series the rate varies with D by design;
    ``lr_protocol`` itself is a key); (b) the ``tuned`` protocol selects one rate per D
    (:func:`select_tuned`), so its rate is not a key either and :func:`exponent_table`
    reports the chosen one per D (``chosen_lr``); ``lr_multiplier`` is never a key; (c)
    landscape draws declared as a random factor (rows with ``landscape_draw``) are pooled:
    ``landscape_seed`` is not a key there (without ``landscape_draw``, a swept landscape seed
    is a fixed factor with its own series).
    """
    cols = [c for c in condition_columns(df) if c not in SHAPE_COLUMNS and c not in exclude]
    keys = series_keys(df, cols)
    return [c for c in cols if keys[c].nunique() > 1]


def _groups(df: pd.DataFrame, by: list[str], masks=None) -> list[pd.DataFrame]:
    """The rows of each group of equal ``by`` values (missing values equal, pooled entries
    equal), in order of first appearance; all rows as one group when ``by`` is empty."""
    if not by:
        return [df]
    keys = _key_frame(df, by, masks)
    key = by if len(by) > 1 else by[0]  # a one-element list warns in pandas >= 3
    return [df.loc[idx] for idx in keys.groupby(key, sort=False).groups.values()]


def _group_values(g: pd.DataFrame, by: list[str]) -> dict:
    """The group's value of each ``by`` column; None where a pooled column has several."""
    out = {}
    for c in by:
        vals = g[c].unique()
        out[c] = vals[0] if len(vals) == 1 else None
    return out


def _draws(g: pd.DataFrame) -> int:
    """Distinct landscapes among ``g``'s runs: its declared draws when they are distinct
    landscapes (:func:`distinct_draws`), 1 when they are one; else its landscape seeds."""
    if DRAW in g.columns and g[DRAW].notna().any():
        return int(g[DRAW].nunique()) if distinct_draws(g) else 1
    return int(g["landscape_seed"].nunique()) if "landscape_seed" in g.columns else 1


def _seeds(g: pd.DataFrame, draws: int) -> int:
    """Runs per landscape: the distinct (landscape seed, seed) pairs over the draws."""
    cols = [c for c in ("landscape_seed", "seed") if c in g.columns]
    runs = len(g.drop_duplicates(cols)) if cols else len(g)
    return max(1, runs // max(draws, 1))


def summarize(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """One row per group: runs, landscape draws, seeds, success rate, KM median with 95% CI,
    mean escaped, diverged. Landscape draws (``landscape_draw``) are pooled within a group."""
    if df.empty:
        return pd.DataFrame()
    masks = pooled_masks(df, lr=False) if by is None else {}
    if by is None:
        keys = _key_frame(df, condition_columns(df), masks)
        by = [c for c in keys.columns if keys[c].nunique() > 1]
    by = list(by)
    rows = []
    for g in _groups(df, by, masks):
        t, e = times_and_events(g)
        med = km_median(t, e)
        row = _group_values(g, by)
        if "D" in g.columns:
            row["D"] = int(g["D"].iloc[0])
        esc_times = g.loc[g["escaped"], "escape_time"].astype(float)
        draws = _draws(g)
        row.update(
            runs=len(g),
            draws=draws,
            seeds=_seeds(g, draws),
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


def _best_rate(g: pd.DataFrame) -> pd.Index:
    """The rows of ``g``'s learning rate with the best KM median (see :func:`select_tuned`)."""
    rate = [c for c in ("lr_multiplier", "learning_rate") if c in g.columns]
    best, best_score = None, None
    for k, gk in g.groupby(rate, dropna=False):
        t, e = times_and_events(gk)
        med = km_median(t, e).estimate
        key = tuple(float(v) for v in (k if isinstance(k, tuple) else (k,)))
        score = (med, -e.mean(), float(np.mean(t)), key)
        if best_score is None or score < best_score:
            best, best_score = gk.index, score
    return best


def select_tuned(df: pd.DataFrame) -> pd.DataFrame:
    """Keep, for ``tuned`` runs, only the learning rate with the best KM median per condition.

    Best: the smallest Kaplan-Meier median (censoring-aware); ties and unreached medians are
    broken by the higher success rate, then by the smaller mean escape time. Landscape draws
    (``landscape_draw``) are pooled: one rate per condition for all its draws. Runs of other
    protocols pass through unchanged.
    """
    if df.empty or "lr_protocol" not in df.columns:
        return df
    tuned = df[df["lr_protocol"] == "tuned"]
    if tuned.empty:
        return df
    rest = df[df["lr_protocol"] != "tuned"]
    cond = [c for c in condition_columns(tuned) if c not in ("learning_rate", "lr_multiplier")]
    keep = []
    for g in _groups(tuned, cond, pooled_masks(tuned, lr=False)):
        keep.extend(_best_rate(g))
    return pd.concat([rest, tuned.loc[keep]]).sort_values("run_id").reset_index(drop=True)


def distinct_draws(g: pd.DataFrame) -> bool:
    """Whether ``g``'s declared landscape draws are distinct landscapes: the draws carry
    ``landscape_draw`` and the landscape's seed changes it
    (:meth:`~saddle.landscapes.LandscapeSpec.seed_matters`; a coherent spectral saddle with a
    constant bulk has nothing to draw, so its "draws" are one landscape and their runs plain
    seeds)."""
    from .records import config_from_row
    from .registry import LANDSCAPES

    if DRAW not in g.columns or not g[DRAW].notna().any():
        return False
    c = config_from_row(g.iloc[0])
    return bool(LANDSCAPES[c.landscape].seed_matters(c))


def _fit_samples(g: pd.DataFrame, clustered: bool) -> dict[int, tuple]:
    """``{D: (times, escaped[, clusters])}``: clusters (the landscape draw of each run) where
    the draws are distinct landscapes."""
    out = {}
    for D, gd in g.groupby("D"):
        t, e = times_and_events(gd)
        out[int(D)] = (t, e, gd[DRAW].fillna(-1).to_numpy(int)) if clustered else (t, e)
    return out


def _fit_columns(fit, g: pd.DataFrame, samples: dict) -> dict:
    """The exponent table's columns from one fit."""
    censored = sorted(int(d) for d in fit.censored_dims)
    esc = g["escaped"].astype(bool)
    return dict(
        exponent=fit.exponent, low=fit.low, high=fit.high, intercept=fit.intercept,
        se=float(fit.se), outcome=fit.outcome,
        dimension_free_possible=fit.dimension_free_possible,
        dims=len(fit.dims), d_min=min(samples), d_max=max(samples),
        censored_dims=",".join(str(d) for d in censored), n_censored_dims=len(censored),
        runs=int(fit.runs), censored_runs=int(fit.censored_runs),
        censored_frac=float(1 - esc.mean()), fit_method=fit.method,
    )


def _per_d(g: pd.DataFrame, col: str) -> str:
    """``"D:value, ..."`` of a column per D (several values at one D joined by '/')."""
    parts = []
    for D, gd in g.groupby("D"):
        vals = sorted(float(v) for v in gd[col].dropna().unique())
        parts.append(f"{int(D)}:" + "/".join(f"{v:.3g}" for v in vals))
    return ", ".join(parts)


def _design_columns(g: pd.DataFrame) -> dict:
    """Draws, seeds per D, noise streams and, where a protocol set it, the learning rate per
    D (``chosen_lr``; ``chosen_multiplier`` for ``tuned``)."""
    streams = (",".join(sorted(g["noise_streams"].fillna("unrecorded").astype(str).unique()))
               if "noise_streams" in g.columns else "unrecorded")
    proto = set(g["lr_protocol"].dropna()) if "lr_protocol" in g.columns else set()
    set_by = proto & set(DERIVED_LR_PROTOCOLS + ("tuned",))
    draws = _draws(g)
    out = dict(draws=draws, seeds=min(_seeds(gd, draws) for _, gd in g.groupby("D")),
               noise_streams=streams,
               chosen_lr=_per_d(g, "learning_rate") if set_by and "learning_rate" in g.columns
               else None,
               chosen_multiplier=_per_d(g, "lr_multiplier") if "tuned" in proto
               and "lr_multiplier" in g.columns else None)
    return out


def with_constant_columns(table: pd.DataFrame, runs: pd.DataFrame, cols) -> pd.DataFrame:
    """``table`` with each of ``cols`` that it lacks and that is constant over ``runs`` (a
    field that is no series key, but that a rule or label downstream reads)."""
    for c in cols:
        if not table.empty and c not in table.columns and c in runs.columns \
                and runs[c].nunique(dropna=False) == 1:
            table[c] = runs[c].iloc[0]
    return table


def exponent_table(
    df: pd.DataFrame, by: list[str] | None = None, n_resamples: int = 999
) -> pd.DataFrame:
    """Fitted dimension exponent b (log median = a + b log D) with its CI, one row per series.

    A series is a group of runs that differ in D (and seed, and declared landscape draw)
    only; by default its keys are :func:`series_columns` (see there for what is not a key),
    with an explicit ``by`` exactly those columns. Tuned runs are reduced to their best
    learning rate per D first. Declared landscape draws that are distinct landscapes are
    passed to the fit as clusters (:func:`distinct_draws`); draws of a landscape its seed
    does not change are one landscape, and their runs plain seeds.

    Columns: the series keys; exponent, low, high, intercept, se; outcome (fit, cliff or
    insufficient) and dimension_free_possible (where the fit says); dims (D fitted), d_min,
    d_max; censored_dims (comma list of D whose KM median is unreached) and n_censored_dims;
    runs, censored_runs, censored_frac; draws, seeds (distinct seeds per D, the fewest over
    D); noise_streams; chosen_lr / chosen_multiplier (per D, where a protocol set the rate);
    fit_method (how b and its CI were computed; "method" is the reproduction's optimizer
    label).
    """
    if df.empty:
        return pd.DataFrame()
    df = select_tuned(df)
    masks = pooled_masks(df) if by is None else {}
    by = series_columns(df) if by is None else list(by)
    rows = []
    for g in _groups(df, by, masks):
        samples = _fit_samples(g, clustered=distinct_draws(g))
        if len(samples) < 2:
            continue
        fit = fit_exponent(samples, n_resamples=n_resamples)
        row = _group_values(g, by)
        row.update(_fit_columns(fit, g, samples))
        row.update(_design_columns(g))
        rows.append(row)
    return pd.DataFrame(rows)
