"""``saddle bounds``: every theory result that applies to a config, with its value."""

from __future__ import annotations

import argparse

from ._common import add_config_arguments, config_from_args, print_json, start_numerics


def register(sub) -> None:
    p = sub.add_parser(
        "bounds",
        help="print the theory's bounds and estimates for a configuration",
        description="Print every theory result that applies to a configuration: its formula, "
        "whether its assumptions hold for this config, and its value (escape times in "
        "steps). Every config field has a flag; --config FILE.toml supplies defaults.",
    )
    add_config_arguments(p)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--all", action="store_true",
                   help="also list results about other optimizers (never applicable)")
    p.set_defaults(func=cmd_bounds)


def bounds_for(config, include_all: bool = False) -> list[dict]:
    """The JSON objects of ``saddle bounds --json`` for a config."""
    from .. import theory

    results = list(theory.RESULTS.values()) if include_all else theory.applicable(config)
    out = []
    for r in results:
        d = r.as_dict(config)
        if not r.applies_to(config):
            d["assumptions_hold"] = False
            d["value"] = None
        out.append(d)
    return out


def cmd_bounds(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    start_numerics()
    rows = bounds_for(config, include_all=args.all)
    if args.json:
        print_json(rows)
        return 0
    from rich.console import Console
    from rich.markup import escape

    console = Console(soft_wrap=True)
    c = config
    console.print(
        f"[bold]{c.optimizer}[/bold] on a {c.m}x{c.n} spectral saddle, {c.noise} noise, "
        f"lr = {c.learning_rate}; config {c.config_hash()}"
    )
    for d in rows:
        v = d["value"]
        value = "-" if v is None else f"{v:.6g}"
        if d["assumptions_hold"]:
            status = "[green]assumptions hold[/green]"
        else:
            failed = [a["name"] for a in d["assumptions"] if not a["holds"]]
            status = "[red]assumptions fail: " + escape(", ".join(failed)) + "[/red]"
        console.print(
            f"\n[bold]{escape(d['name'])}[/bold] ({d['kind']} on {d['quantity']}): "
            f"value {value}; {status}\n  {escape(d['title'])}\n  $$ {escape(d['latex'])} $$"
        )
    return 0
