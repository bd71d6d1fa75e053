"""``saddle sweep SPEC.toml --out DIR``: run a grid of configs, resumably."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._common import (
    PlainProgress,
    ensure_out_dir,
    os_errors_in_one_line,
    positive_int,
    print_json,
    progress_bar,
    short_name,
    show_store_warnings,
    start_numerics,
    want_progress,
)


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of configs into a resumable Parquet store",
        description="Run every (config, seed) of SPEC.toml that DIR does not hold yet. A list "
        "value in the spec is an axis; see the docs (user guide, sweeps) for zip, exclude, "
        "variants and lr_protocol. Killing a sweep loses at most the batches in flight; "
        "re-running it resumes.",
    )
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec")
    p.add_argument("--out", required=True, metavar="DIR", help="results directory (created)")
    p.add_argument("--executor", default="local", help="local (default) or dask")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="Dask scheduler address, tcp://HOST:PORT (default: a LocalCluster on "
                   "this machine); it must answer within a few seconds")
    p.add_argument("--workers", default="2", metavar="N",
                   help="LocalCluster worker processes for --executor dask (default 2; at "
                   "most 4 per CPU core)")
    p.add_argument("--batch-runs", default=None, metavar="N",
                   help="most runs per batch and per results file (default: by memory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..errors import SaddleInputError
    from ..sweep import load_spec

    if args.executor not in ("local", "dask"):
        raise SaddleInputError(f"--executor: got {args.executor!r}; allowed: local, dask")
    if args.scheduler is not None and args.executor != "dask":
        raise SaddleInputError("--scheduler: given with --executor local; allowed: only with "
                               "--executor dask")
    if args.executor == "dask":
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise SaddleInputError("--executor: dask needs Dask distributed; allowed: local, or "
                                   "install it with pip install -e '.[dask]'") from None
    workers = positive_int("--workers", args.workers)
    most = 4 * (os.cpu_count() or 1)
    if workers > most:  # each is a process with its own JAX: a million would end the machine
        raise SaddleInputError(f"--workers: got {workers}; allowed: an integer in [1, {most}] "
                               "(4 per CPU core)")
    batch_runs = positive_int("--batch-runs", args.batch_runs)
    spec = load_spec(args.spec)  # validates every point before anything runs
    if args.scheduler is not None:
        from ..sweep.runner import check_scheduler

        # The address's form, then a connection try of a few seconds, before DIR is made.
        check_scheduler(args.scheduler)
    out = ensure_out_dir(args.out)
    show_store_warnings()

    from ..sweep import run_sweep
    from ..sweep.store import Store

    store = Store(out).create()
    try:
        spec_text = Path(args.spec).read_bytes()
    except OSError as e:
        raise SaddleInputError(f"SPEC.toml: cannot read {args.spec!r}: {e.strerror}") from None
    # Atomic: a sweep started on a full disk leaves no empty spec.toml behind.
    store.write_spec(spec_text)

    start_numerics()
    with os_errors_in_one_line(f"--out {str(out)!r}"):
        mode = want_progress(args)
        if mode == "bar":
            report = _with_progress(spec, out, args, workers, batch_runs)
        elif mode == "lines":
            lines = PlainProgress(spec.name)
            report = run_sweep(spec, out, executor=args.executor, scheduler=args.scheduler,
                               workers=workers, batch_runs=batch_runs, on_start=lines.start,
                               on_progress=lines.advance)
            lines.finish()
        else:
            report = run_sweep(spec, out, executor=args.executor, scheduler=args.scheduler,
                               workers=workers, batch_runs=batch_runs)
    if args.json:
        print_json(dict(out=str(out), **report.as_dict()))
    elif not args.quiet:
        print(f"{spec.name}: {report.ran} runs done ({report.escaped} escaped, "
              f"{report.censored} censored, {report.diverged} diverged), {report.skipped} "
              f"already stored; results in {out}", file=sys.stderr)
    return 0


def _with_progress(spec, out, args, workers, batch_runs):
    from ..sweep import run_sweep

    with progress_bar("counts") as bar:
        task = bar.add_task(short_name(spec.name), total=None, escaped=0, censored=0,
                            diverged=0)

        def on_start(todo, skipped):
            desc = short_name(spec.name) + (f" (+{skipped})" if skipped else "")
            bar.update(task, total=todo, description=desc)

        def on_progress(k, counts):
            bar.update(task, advance=k, escaped=counts["escaped"], censored=counts["censored"],
                       diverged=counts["diverged"])

        return run_sweep(spec, out, executor=args.executor, scheduler=args.scheduler,
                         workers=workers, batch_runs=batch_runs, on_start=on_start,
                         on_progress=on_progress, log=bar.console.log)
