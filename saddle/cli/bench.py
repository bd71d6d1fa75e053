"""``saddle bench``: the benchmark suite (the same as ``python -m benchmarks``)."""

from __future__ import annotations

import argparse

# What each section measures (benchmarks/suite.py has the details). There is no E or F.
SECTIONS_HELP = """sections:
  A  element-wise optimizers, 64 seeds at n = 64 for 2000 steps: runs/s of the engine,
     JAX and numba against the per-seed NumPy loop and the noise-generation floor
  B  the Muon step at n in {64, 256, 1024} against optax.contrib.muon and the matmul floor
  C  AdamW and Mano steps at n = 1024 against the memory-bandwidth floor
  D  engine steps/s for one run of every optimizer at n in {64, 256, 1024}, and compile
     time per configuration structure
  G  GPU only: the Muon step at n up to 4096 against optax and torch, element-wise updates
     against the copy bandwidth, engine steps/s
  N  network landscapes: engine steps/s against a plain optax loop of the same model (and
     one with the escape test and early exit), AdamW and SGD, batched over seeds, at width
     128 and 1024 (the linear network, m = n = 16)
default: ABCDN on a CPU, G on a GPU; --quick uses smaller sizes and fewer steps"""


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure the engine's speed against its references",
                       description="Run the benchmark suite: a table, and JSON to --json.",
                       epilog=SECTIONS_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer steps")
    p.add_argument("--sections", default=None,
                   help="which sections to run: any letters of ABCDGN, e.g. AB (default: ABCDN on "
                   "a CPU, G on a GPU; see below)")
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
