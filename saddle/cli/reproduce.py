"""``saddle reproduce [--quick] [--out DIR]``: every experiment, the analysis, the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import _common as common


def register(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run every experiment of simulations/ and write report.md, figures and results",
        description="Run (or resume) the experiments that test the paper's claims C1-C4, fit "
        "dimension exponents, check the theory's bounds, compute a verdict per claim, and "
        "write DIR/report.md, DIR/*.png and DIR/results/ (Parquet). Re-running resumes.",
    )
    p.add_argument("--quick", action="store_true",
                   help="fewer seeds and sizes (every experiment still runs; its measured time "
                   "is in docs/guide/reproduce.md)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: results/reproduce-<date>)")
    p.add_argument("--only", default=None, metavar="NAMES",
                   help="comma-separated experiments to run (default: all)")
    p.add_argument("--jobs", default=None, metavar="N",
                   help="processes that share the runs (default: the usable cores, at most 4, "
                   "about 2 GB of free memory each); the stored rows do not depend on it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_reproduce)


def _jobs(value) -> int:
    from ..experiments import default_jobs

    if value is None:
        return default_jobs()
    return common.positive_int("--jobs", value)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from ..errors import SaddleInputError
    from ..reproduce import EXPERIMENTS, default_out

    names = EXPERIMENTS
    if args.only is not None:
        names = tuple(n.strip() for n in args.only.split(",") if n.strip())
        if not names:  # '', ',' or ' , ': nothing named is a mistake, not "all"
            raise SaddleInputError(f"--only: got {args.only!r}; allowed: comma-separated "
                                   f"names from {', '.join(EXPERIMENTS)}")
        for n in names:
            if n not in EXPERIMENTS:
                raise SaddleInputError(f"--only: got {n!r}; allowed: {', '.join(EXPERIMENTS)}")
    # An empty --out is an error (common.ensure_out_dir), not the default directory.
    out = Path(args.out) if args.out is not None else default_out()
    if args.out is None:
        with common.os_errors_in_one_line("--out"):
            out.parent.mkdir(exist_ok=True)
    out = common.ensure_out_dir(args.out if args.out is not None else out)
    common.show_store_warnings()
    from ..reproduce import spec_path
    from ..sweep import load_spec

    for n in names:  # validate every spec before running anything
        load_spec(spec_path(n), quick=args.quick)

    jobs = _jobs(args.jobs)
    from .. import reproduce

    common.start_numerics()
    with common.os_errors_in_one_line(f"--out {str(out)!r}"):
        mode = common.want_progress(args)
        if mode == "bar":
            run_info = _with_progress(out, args.quick, names, jobs)
        elif mode == "lines":
            progress = _plain_progress()
            run_info = reproduce.run_experiments(out, args.quick, names, progress=progress,
                                                 jobs=jobs)
            progress.finish()
        else:
            run_info = reproduce.run_experiments(out, args.quick, names, jobs=jobs)
        a = reproduce.analyse(out)
        figures = reproduce.make_figures(out, a)
        report = reproduce.write_report(out, a, figures, run_info, args.quick)
    if not args.quiet:
        for v in a["verdicts"]:
            print(f"{v.claim}: {v.verdict}", file=sys.stderr)
    print(report)
    return 0


def _plain_progress():
    """Per experiment, (on_start, on_progress) printing plain lines every few seconds."""
    current: list[common.PlainProgress] = []

    def progress(name):
        if current:
            current[0].finish()
            current.clear()
        lines = common.PlainProgress(f"reproduce {name}")
        current.append(lines)

        def on_start(todo, skipped):
            lines.start(todo, skipped)

        return on_start, lines.advance

    progress.finish = lambda: current and current[0].finish()  # the last experiment's line
    return progress


def _with_progress(out, quick, names, jobs):
    from ..reproduce import run_experiments

    with common.progress_bar("counts") as bar:
        def progress(name):
            task = bar.add_task(common.short_name(name), total=None, escaped=0, censored=0,
                                diverged=0)

            def on_start(todo, skipped):
                bar.update(task, total=todo)

            def on_progress(k, counts):
                bar.update(task, advance=k, escaped=counts["escaped"],
                           censored=counts["censored"], diverged=counts["diverged"])

            return on_start, on_progress

        return run_experiments(out, quick, names, progress=progress, log=bar.console.log,
                               jobs=jobs)
