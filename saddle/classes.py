"""Exponent classes, method labels and Markdown tables: what the reproduction's report and the
regime map share (one rule for what an exponent's CI says)."""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["FLAT_B", "LINEAR_B", "classify_b", "optimizer_label", "with_label", "md_table",
           "fmt"]

FLAT_B = 0.15  # |b| below this, with the whole CI inside (-FLAT_B, FLAT_B): dimension-free
LINEAR_B = 0.75  # b's CI above this (or containing 1): an O(D) penalty


def classify_b(low, high, dimension_free_possible: bool = True) -> str:
    """The class of an exponent from its CI. When the median at the largest D is beyond the
    budget (a cliff), a class that says escape does not slow with D (dimension-free, faster
    with D) becomes "cliff": the budget hides how slow the largest D is. Classes that say it
    slows (O(D), sub-linear growth) stand: the cliff only adds to that evidence."""
    cls = "undetermined"
    if math.isfinite(low) and math.isfinite(high):
        if -FLAT_B < low and high < FLAT_B:
            cls = "dimension-free"
        elif high < -FLAT_B:
            cls = "faster with D"
        elif low > LINEAR_B or (low <= 1 <= high and low > FLAT_B):
            cls = "O(D)"
        elif low > FLAT_B:
            cls = "grows with D (sub-linear)"
        else:
            cls = "inconclusive"
    if not dimension_free_possible and cls not in ("O(D)", "grows with D (sub-linear)"):
        return "cliff"
    return cls


def optimizer_label(row) -> str:
    """A run's method label (:meth:`OptimizerSpec.method_label`: the optimizer's name, Muon's
    with its orthogonalizer)."""
    from .registry import OPTIMIZERS

    opt = row["optimizer"]
    return OPTIMIZERS[opt].method_label(row) if opt in OPTIMIZERS else str(opt)


def with_label(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``method`` column (:func:`optimizer_label`)."""
    df = df.copy()
    df["method"] = [optimizer_label(r) for r in df.to_dict("records")]
    return df


def fmt(x, digits=2) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def md_table(df: pd.DataFrame, digits=2) -> str:
    """A Markdown table of ``df`` (— for missing and non-finite values)."""
    if df.empty:
        return "_(no data)_\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v, digits) for v in r) + " |")
    return "\n".join(lines) + "\n"
