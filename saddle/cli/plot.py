"""``saddle plot DIR [--kind dimension|gap|phase|trajectory]``: figures from stored runs.

Without ``--kind``, every figure the directory supports is drawn: dimension when runs exist
at two or more D, gap and phase when a signal/noise field varies (or ``--x`` names one),
trajectory when traces are stored.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ._common import os_errors_in_one_line, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="plot a sweep directory (PNG and SVG)",
        description="dimension: escape time against D, log-log, fitted exponent b with its "
        "bootstrap CI; gap: escape time and success rate against a signal/noise field, with "
        "the theory threshold; phase: heatmap over (D, field); trajectory: escape coordinate "
        "and orthogonal drift against t (needs trace_stride in the spec).",
    )
    p.add_argument("out", metavar="DIR", help="a sweep directory")
    p.add_argument("--kind", default=None,
                   help="dimension, gap, phase or trajectory (default: every kind the "
                   "directory supports)")
    p.add_argument("--x", default=None, metavar="FIELD",
                   help="the swept field for gap/phase (default: the first of sigma, gamma, "
                   "noise_rank, init_escape that varies)")
    p.add_argument("--metric", default="median", help="phase: median (default) or success_rate")
    p.add_argument("--threshold", default=None, metavar="X",
                   help="gap: mark this x value as the threshold (default: from saddle/theory/)")
    p.add_argument("--runs", default="3", metavar="K", help="trajectory: runs per group")
    p.add_argument("--output", default=None, metavar="FILE.png",
                   help="where to write, with --kind (default: DIR/plots/<kind>.png, plus "
                   ".svg)")
    p.add_argument("--title", default=None, help="figure title")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from .. import plots
    from ..errors import SaddleInputError
    from .results import _load

    if args.kind is not None and args.kind not in plots.KINDS:
        raise SaddleInputError(f"--kind: got {args.kind!r}; allowed: {', '.join(plots.KINDS)}")
    if args.kind is None and args.output is not None:
        raise SaddleInputError(f"--output: names one figure; allowed: with --kind "
                               f"({', '.join(plots.KINDS)})")
    threshold = None
    if args.threshold is not None:
        try:
            threshold = float(args.threshold)
        except ValueError:
            raise SaddleInputError(
                f"--threshold: got {args.threshold!r}; allowed: a number") from None
        if not math.isfinite(threshold):
            raise SaddleInputError(
                f"--threshold: got {args.threshold!r}; allowed: a finite number")
    per_group = positive_int("--runs", args.runs)
    if args.kind is not None:
        target = _target(args, args.kind)
        df = _load(args.out)
        for p in _draw(args, args.kind, df, threshold, per_group, target):
            print(p)
        return 0
    df = _load(args.out)
    kinds = _supported(args, df)
    if not kinds:
        raise SaddleInputError(
            f"--kind: {args.out!r} supports no figure by default (one D, no varying "
            f"{', '.join(plots.GAP_FIELDS)}, no traces); allowed: --kind "
            f"{'|'.join(plots.KINDS)} with --x FIELD for gap and phase")
    drawn = 0
    for kind in kinds:
        try:
            written = _draw(args, kind, df, threshold, per_group, _target(args, kind))
        except SaddleInputError as e:  # this kind cannot be drawn here; the others can
            print(f"saddle: warning: --kind {kind} skipped: {' '.join(str(e).split())}",
                  file=sys.stderr)
            continue
        drawn += 1
        for p in written:
            print(p)
    if not drawn:
        raise SaddleInputError(f"--kind: none of {', '.join(kinds)} could be drawn from "
                               f"{args.out!r} (see the warnings above)")
    return 0


def _supported(args: argparse.Namespace, df) -> list[str]:
    """The kinds this directory's runs can show (see the module docstring)."""
    from .. import plots
    from ..sweep.store import Store

    kinds = []
    if df["D"].nunique() >= 2:
        kinds.append("dimension")
    if args.x is not None or any(c in df.columns and df[c].nunique() > 1
                                 for c in plots.GAP_FIELDS):
        kinds += ["gap", "phase"]
    if Store(args.out).trace_files():
        kinds.append("trajectory")
    return kinds


def _draw(args, kind, df, threshold, per_group, target) -> list[Path]:
    """Draw one kind and save it; returns the files written."""
    from .. import plots
    from ..errors import SaddleInputError

    if kind == "dimension":
        if df["D"].nunique() < 2:
            raise SaddleInputError("--kind: dimension needs runs at two or more D; this "
                                   "directory has one")
        fig = plots.plot_dimension(df, args.title)
    elif kind == "gap":
        fig = plots.plot_gap(df, args.x, threshold, args.title)
    elif kind == "phase":
        fig = plots.plot_phase(df, args.x, args.metric, args.title)
    else:
        from ..sweep.store import Store

        fig = plots.plot_trajectory(df, Store(args.out).traces(), per_group, args.title)
    try:
        with os_errors_in_one_line("--output"):
            return plots.save(fig, target)
    finally:
        plots._plt().close(fig)


def _target(args: argparse.Namespace, kind: str) -> Path:
    """Where the figure goes, checked before any work: an existing, writable folder."""
    from ..errors import SaddleInputError
    from ._common import ensure_out_dir

    if args.output is None:
        out = Path(args.out)
        if not out.is_dir():
            return out / "plots" / f"{kind}.png"  # _load names the problem with DIR
        return ensure_out_dir(out / "plots", field="DIR/plots") / f"{kind}.png"
    if not args.output.strip():
        raise SaddleInputError("--output: got ''; allowed: a .png or .svg path")
    target = Path(args.output)
    if target.suffix.lower() not in (".png", ".svg") or target.is_dir():
        raise SaddleInputError(f"--output: got {args.output!r}; allowed: a .png or .svg path")
    parent = target.parent
    if not parent.is_dir():
        raise SaddleInputError(f"--output: got {args.output!r}; its folder {str(parent)!r} "
                               "does not exist")
    ensure_out_dir(parent, field="--output", create=False)
    return target
