"""``saddle bench``: the benchmark suite (the same as ``python -m benchmarks``)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure the engine's speed against its references",
                       description="Run the benchmark suite: a table, and JSON to --json.")
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer steps")
    p.add_argument("--sections", default=None,
                   help="which sections to run: any of ABCDG (default: ABCD on a CPU, G on a GPU)")
    p.add_argument("--json", metavar="FILE", default="benchmarks/results.json",
                   help="where to write the JSON")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from benchmarks.sections import parse_sections

    from ..errors import SaddleInputError

    try:
        parse_sections(args.sections)
    except ValueError as e:
        raise SaddleInputError(str(e)) from None
    from benchmarks.suite import main

    argv = ["--json", args.json] + (["--quick"] if args.quick else [])
    if args.sections is not None:
        argv += ["--sections", args.sections]
    return main(argv)
