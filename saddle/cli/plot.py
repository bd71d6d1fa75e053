"""``saddle plot DIR --kind dimension|gap|phase|trajectory``: figures from stored runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import os_errors_in_one_line


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
    p.add_argument("--kind", required=True, help="dimension, gap, phase or trajectory")
    p.add_argument("--x", default=None, metavar="FIELD",
                   help="the swept field for gap/phase (default: the first of sigma, gamma, "
                   "noise_rank, init_escape that varies)")
    p.add_argument("--metric", default="median", help="phase: median (default) or success_rate")
    p.add_argument("--threshold", default=None, metavar="X",
                   help="gap: mark this x value as the threshold (default: from saddle/theory/)")
    p.add_argument("--runs", default="3", metavar="K", help="trajectory: runs per group")
    p.add_argument("--output", default=None, metavar="FILE.png",
                   help="where to write (default: DIR/plots/<kind>.png, plus .svg)")
    p.add_argument("--title", default=None, help="figure title")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from .. import plots
    from ..errors import SaddleInputError
    from .results import _load

    if args.kind not in plots.KINDS:
        raise SaddleInputError(f"--kind: got {args.kind!r}; allowed: {', '.join(plots.KINDS)}")
    threshold = None
    if args.threshold is not None:
        try:
            threshold = float(args.threshold)
        except ValueError:
            raise SaddleInputError(
                f"--threshold: got {args.threshold!r}; allowed: a number") from None
    try:
        per_group = int(args.runs)
        assert per_group >= 1
    except (ValueError, AssertionError):
        raise SaddleInputError(f"--runs: got {args.runs!r}; allowed: an integer >= 1") from None
    target = _target(args)
    df = _load(args.out)
    if args.kind == "dimension":
        if df["D"].nunique() < 2:
            raise SaddleInputError("--kind: dimension needs runs at two or more D; this "
                                   "directory has one")
        fig = plots.plot_dimension(df, args.title)
    elif args.kind == "gap":
        fig = plots.plot_gap(df, args.x, threshold, args.title)
    elif args.kind == "phase":
        fig = plots.plot_phase(df, args.x, args.metric, args.title)
    else:
        from ..sweep.store import Store

        fig = plots.plot_trajectory(df, Store(args.out).traces(), per_group, args.title)
    try:
        with os_errors_in_one_line("--output"):
            written = plots.save(fig, target)
    except ValueError as e:
        # matplotlib refuses a log axis with no positive value: every group's median escape
        # time is beyond the budget (nothing, or too little, escaped).
        if "log-scaled" not in str(e):
            raise
        escaped = int(df["escaped"].sum()) if "escaped" in df.columns else 0
        raise SaddleInputError(
            f"--kind: {args.kind} has no finite median escape time to draw on its log axis "
            f"({escaped} of {len(df)} runs escaped); allowed: a sweep where most runs of a "
            "group escape (raise max_steps), or --kind phase --metric success_rate") from None
    for p in written:
        print(p)
    return 0


def _target(args: argparse.Namespace) -> Path:
    """Where the figure goes, checked before any work: an existing, writable folder."""
    from ..errors import SaddleInputError
    from ._common import ensure_out_dir

    if args.output is None:
        out = Path(args.out)
        if not out.is_dir():
            return out / "plots" / f"{args.kind}.png"  # _load names the problem with DIR
        return ensure_out_dir(out / "plots", field="DIR/plots") / f"{args.kind}.png"
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
