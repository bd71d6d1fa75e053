"""``saddle run``: one configuration, one or many seeds."""

from __future__ import annotations

import argparse
import sys

from ._common import (
    add_config_arguments,
    config_from_args,
    print_json,
    start_numerics,
    want_progress,
)


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run one configuration for one or many seeds",
        description="Run one configuration for its seeds and report escape times. Every "
        "config field has a flag; --config FILE.toml supplies defaults for them.",
    )
    add_config_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--batch-size", type=int, default=None, help="seeds per compiled batch")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from ..errors import SaddleInputError

    # Validate everything before importing the numerical stack: bad input fails fast.
    config = config_from_args(args)
    if args.batch_size is not None and args.batch_size < 1:
        raise SaddleInputError(f"--batch-size: got {args.batch_size}; allowed: an integer >= 1")
    start_numerics()
    from ..simulate import simulate

    if want_progress(args):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("runs", total=config.seeds)
            result = simulate(
                config,
                batch_size=args.batch_size,
                progress=lambda done, total: bar.update(task, completed=done),
            )
    else:
        result = simulate(config, batch_size=args.batch_size)
    if args.json:
        print_json(result.to_json_dict())
        _warn_signal_lost(result)
    else:
        _print_table(result)
    return 0


def _print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    c = result.config
    console = Console(soft_wrap=True)
    console.print(
        f"[bold]{c.optimizer}[/bold] on a {c.m}x{c.n} spectral saddle "
        f"(D = {c.D}, r = {c.escape_rank}, gamma = {c.gamma}, {c.basis} basis, "
        f"{c.noise} noise" + (f" sigma = {c.sigma}" if c.sigma is not None else "") + "), "
        f"lr = {c.learning_rate}, criterion {c.escape}, budget {c.max_steps} steps; "
        f"config {c.config_hash()}"
    )
    if len(result.runs) <= 32:
        t = Table("seed", "status", "escape time", "steps", "final loss", "wall s")
        for r in result.runs:
            t.add_row(
                str(r.seed),
                r.status,
                "-" if r.escape_time is None else str(r.escape_time),
                str(r.steps),
                "-" if r.final_loss is None else f"{r.final_loss:.4g}",
                f"{r.wall_s:.3f}",
            )
        console.print(t)
    s = result.summary()
    med = s["median_escape_time"]
    lo, hi = s["median_escape_time_ci"]
    fmt = lambda x: "n/a" if x is None else f"{x:g}"
    console.print(
        f"escaped {s['escaped']}/{s['runs']} (success rate {s['success_rate']:.2f}), "
        f"censored {s['censored']}, diverged {s['diverged']}; "
        f"Kaplan-Meier median escape time {fmt(med)} steps (95% CI {fmt(lo)}..{fmt(hi)}); "
        f"compile {result.compile_s:.2f} s"
    )
    _warn_signal_lost(result)


def _warn_signal_lost(result) -> None:
    """One stderr line when float32 rounding swallowed the escape signal in some runs."""
    lost = sum(r.signal_lost for r in result.runs)
    if lost:
        print(f"warning: {lost} of {len(result.runs)} runs lost the escape signal to "
              f"{result.config.dtype} rounding (the update's escape component did not survive "
              "W + U in most steps); their escape times are not the dynamics' - rerun with "
              "--dtype float64", file=sys.stderr)
