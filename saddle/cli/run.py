"""``saddle run``: one configuration, one or many seeds."""

from __future__ import annotations

import argparse
import sys

from ._common import (
    PlainProgress,
    add_config_arguments,
    config_from_args,
    optimizer_defaults_epilog,
    positive_int,
    print_json,
    progress_bar,
    start_numerics,
    want_progress,
)


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run one configuration for one or many seeds",
        description="Run one configuration for its seeds and report escape times. Every "
        "config field has a flag; --config FILE.toml supplies defaults for them. A run that "
        "cannot fit in this machine's memory is refused before anything is allocated; many "
        "seeds run in batches of at most 4096, with progress on stderr (a bar on a terminal, "
        "a line every few seconds otherwise; --quiet for none).",
        epilog=optimizer_defaults_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--batch-size", default=None, metavar="N",
                   help=f"seeds per compiled batch (default: up to {RUN_BATCH}, fewer if "
                   "memory is short; results do not depend on it)")
    p.set_defaults(func=cmd_run)


# Seeds per engine call by default: bounds the host-side tables of a call, so that a run of
# a million seeds streams in batches and reports progress instead of planning for minutes.
RUN_BATCH = 4096


def cmd_run(args: argparse.Namespace) -> int:
    from ..memory import check_memory, runs_that_fit

    # Validate everything before importing the numerical stack: bad input fails fast.
    config = config_from_args(args)
    batch_size = positive_int("--batch-size", args.batch_size)
    check_memory(config)  # one run must fit in memory; refused in one line otherwise
    if batch_size is None:
        batch_size = max(1, min(config.seeds, RUN_BATCH, runs_that_fit(config)))
    start_numerics()
    from ..simulate import simulate

    mode = want_progress(args)
    if mode == "bar":
        with progress_bar() as bar:
            task = bar.add_task("runs", total=config.seeds)
            result = simulate(config, batch_size=batch_size,
                              progress=lambda done, total: bar.update(task, completed=done))
    elif mode == "lines":
        lines = PlainProgress("run")
        lines.start(config.seeds)
        result = simulate(config, batch_size=batch_size,
                          progress=lambda done, total: lines.update(done))
        lines.finish()
    else:
        result = simulate(config, batch_size=batch_size)
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
        f"[bold]{c.optimizer}[/bold] on a {c.components()[0].describe(c)}, "
        f"{c.noise} noise" + (f" sigma = {c.sigma}" if c.sigma is not None else "") + ", "
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
        print(f"saddle: warning: {lost} of {len(result.runs)} runs lost the escape signal to "
              f"{result.config.dtype} rounding (the update's escape component did not survive "
              "W + U in most steps); their escape times are not the dynamics' - rerun with "
              "--dtype float64", file=sys.stderr)
