"""``saddle sweep SPEC.toml --out DIR``: run a grid of configs, resumably."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import (
    ensure_out_dir,
    os_errors_in_one_line,
    print_json,
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
                   help="Dask scheduler address (default: a LocalCluster on this machine)")
    p.add_argument("--workers", default="2", metavar="N",
                   help="LocalCluster worker processes for --executor dask (default 2)")
    p.add_argument("--batch-runs", default=None, metavar="N",
                   help="most runs per batch and per results file (default: by memory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.set_defaults(func=cmd_sweep)


def _positive_int(flag: str, value) -> int | None:
    from ..errors import SaddleInputError

    if value is None:
        return None
    try:
        v = int(value)
    except (TypeError, ValueError):
        v = 0
    if v < 1 or str(value).strip() != str(v):
        raise SaddleInputError(f"{flag}: got {value!r}; allowed: an integer >= 1")
    return v


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
    workers = _positive_int("--workers", args.workers)
    batch_runs = _positive_int("--batch-runs", args.batch_runs)
    spec = load_spec(args.spec)  # validates every point before anything runs
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
        if want_progress(args):
            report = _with_progress(spec, out, args, workers, batch_runs)
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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..sweep import run_sweep

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[escaped]} escaped[/] · {task.fields[censored]} censored"
                   " · [red]{task.fields[diverged]} diverged[/]"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(spec.name, total=None, escaped=0, censored=0, diverged=0)

        def on_start(todo, skipped):
            desc = spec.name + (f" ({skipped} stored)" if skipped else "")
            bar.update(task, total=todo, description=desc)

        def on_progress(k, counts):
            bar.update(task, advance=k, escaped=counts["escaped"], censored=counts["censored"],
                       diverged=counts["diverged"])

        return run_sweep(spec, out, executor=args.executor, scheduler=args.scheduler,
                         workers=workers, batch_runs=batch_runs, on_start=on_start,
                         on_progress=on_progress, log=bar.console.log)
