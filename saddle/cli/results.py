"""``saddle results DIR``: per-group statistics of a sweep's stored runs."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "results",
        help="summarize a sweep directory: success rate, KM median with CI, divergences",
        description="One row per group of runs that differ only in their seed: success rate, "
        "Kaplan-Meier median escape time with its 95% CI (censored and diverged runs are "
        "censored), mean escape time of the escaped runs, diverged count; and, when D varies, "
        "the fitted dimension exponent per series.",
    )
    p.add_argument("out", metavar="DIR", help="a sweep directory (saddle sweep --out DIR)")
    p.add_argument("--by", default=None, metavar="FIELDS",
                   help="comma-separated grouping fields (default: the fields that vary)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_results)


def _load(out: str):
    from ..errors import SaddleInputError
    from ..sweep.store import Store

    root = Path(out)
    if not root.is_dir():
        raise SaddleInputError(f"DIR: {out!r} is not a directory; allowed: a sweep directory")
    if not (root / "runs").is_dir():
        raise SaddleInputError(f"DIR: {out!r} has no runs/ folder; allowed: a directory "
                               "written by 'saddle sweep --out'")
    from ._common import show_store_warnings

    show_store_warnings()  # unreadable parts are moved aside with a one-line warning
    df = Store(root).runs()
    if df.empty:
        raise SaddleInputError(f"DIR: {out!r} holds no finished runs yet")
    return df


def parse_by(text: str | None, df) -> list[str] | None:
    from ..analysis import condition_columns
    from ..errors import SaddleInputError, suggest

    if text is None:
        return None
    cols = [c.strip() for c in text.split(",") if c.strip()]
    allowed = condition_columns(df)
    for c in cols:
        if c not in allowed:
            s = suggest(c, allowed)
            hint = f" (did you mean {s!r}?)" if s else ""
            raise SaddleInputError(f"--by: got {c!r}; allowed: config fields, lr_protocol, "
                                   f"lr_multiplier{hint}")
    return cols


def cmd_results(args: argparse.Namespace) -> int:
    from ..analysis import exponent_table, summarize
    from ._common import print_json

    df = _load(args.out)
    by = parse_by(args.by, df)
    table = summarize(df, by)
    exps = exponent_table(df) if df["D"].nunique() > 1 else None
    if args.json:
        clean = lambda recs: [{k: _py(v) for k, v in r.items()} for r in recs]
        print_json(dict(groups=clean(table.to_dict("records")),
                        exponents=clean(exps.to_dict("records")) if exps is not None else []))
        return 0
    _print(table, exps, args.out, len(df), df)
    return 0


def _py(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    try:
        import pandas as pd

        if v is pd.NA:
            return None
    except ImportError:
        pass
    return v


def _fmt(x, digits=0) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


_GROUP_STATS = ("runs", "draws", "seeds", "escaped", "censored", "diverged", "success_rate",
                "median", "median_low", "median_high", "mean_escaped", "max_steps", "D",
                "signal_lost")
_FIT_STATS = ("exponent", "low", "high", "intercept", "se", "outcome", "dimension_free_possible",
              "dims", "d_min", "d_max", "censored_dims", "n_censored_dims", "runs",
              "censored_runs", "censored_frac", "draws", "seeds", "noise_streams", "chosen_lr",
              "chosen_multiplier", "fit_method")


def _print(table, exps, out, n, df) -> None:
    import sys

    from rich.console import Console

    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    console.print(_group_table(table, out, n, df))
    if exps is not None and len(exps):
        console.print(_exponent_table(exps, df))
        methods = exps["fit_method"].dropna().unique()
        if len(methods) == 1:
            console.print(f"fit: {methods[0]}")


def _group_table(table, out, n, df):
    from rich.table import Table

    from ..analysis import display_columns

    t = Table(title=f"{out}: {n} runs (KM median: censored and diverged runs are censored)")
    keys = display_columns(df, [c for c in table.columns if c not in _GROUP_STATS])
    lost = "signal_lost" in table.columns and bool(table["signal_lost"].sum())
    drawn = "draws" in table.columns and bool((table["draws"] > 1).any())
    for c in keys + ["runs"] + (["draws × seeds"] if drawn else []) + [
            "success", "KM median [95% CI]", "mean escaped", "diverged"] + (
            ["lost to rounding"] if lost else []):
        t.add_column(c)
    for r in table.to_dict("records"):
        ci = f"{_fmt(r['median'])} [{_fmt(r['median_low'])}, {_fmt(r['median_high'])}]"
        t.add_row(*[_fmt(r[c], 4) if isinstance(r[c], float) else str(r[c]) for c in keys],
                  str(r["runs"]), *([f"{r['draws']} × {r['seeds']}"] if drawn else []),
                  f"{r['success_rate']:.2f}", ci, _fmt(r["mean_escaped"], 1),
                  str(r["diverged"]), *([str(r["signal_lost"])] if lost else []))
    return t


def _optional(exps, col: str) -> bool:
    """Whether a column of the exponent table says anything worth a printed column."""
    if col not in exps.columns:
        return False
    vals = exps[col].dropna()
    if col == "noise_streams":
        return bool((vals != "independent").any())
    if col == "draws":
        return bool((vals > 1).any())
    one = len(exps["fit_method"].dropna().unique()) <= 1
    return len(vals) > 0 and not (one and col == "fit_method")


def _exponent_table(exps, df):
    from rich.table import Table

    from ..analysis import display_columns

    e = Table(title="Dimension exponent b: log median = a + b log D (95% CI)")
    keys = display_columns(df, [c for c in exps.columns if c not in _FIT_STATS])
    extra = [c for c in ("draws", "noise_streams", "chosen_lr", "chosen_multiplier",
                         "dimension_free_possible", "fit_method") if _optional(exps, c)]
    for c in keys + ["b [95% CI]", "outcome", "D range", "dims", "censored D (median > budget)",
                     "runs (censored)", "seeds per D"] + extra:
        e.add_column(c.replace("_", " "))
    for r in exps.to_dict("records"):
        e.add_row(*[str(r[c]) for c in keys],
                  f"{_fmt(r['exponent'], 2)} [{_fmt(r['low'], 2)}, {_fmt(r['high'], 2)}]",
                  str(r["outcome"]), f"{r['d_min']}–{r['d_max']}", str(r["dims"]),
                  r["censored_dims"] or "none", f"{r['runs']} ({r['censored_runs']})",
                  _fmt(r["seeds"]), *[_fmt(r[c]) for c in extra])
    return e
