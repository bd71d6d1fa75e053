"""Timing and table helpers shared by the CPU suite (:mod:`benchmarks.suite`) and the GPU
sections (:mod:`benchmarks.gpu`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jax

BANDWIDTH_COLUMNS = ("optimizer", "n", "step ms", "floor ms", "x floor", "copy GB/s")


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, each
    call waited on until its JAX result is ready."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ms(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def num(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def section_table(console, rows: list[dict], section: str, title, columns, cells) -> None:
    """Print the rows of one section as a table: ``title`` may be a function of the first
    row, ``cells(row)`` gives a row's strings in the order of ``columns``."""
    from rich.table import Table

    sel = [r for r in rows if r["section"] == section]
    if not sel:
        return
    t = Table(title=title(sel[0]) if callable(title) else title)
    for col in columns:
        t.add_column(col)
    for r in sel:
        t.add_row(*cells(r))
    console.print(t)


def bandwidth_cells(r: dict) -> list[str]:
    return [r["optimizer"], str(r["n"]), ms(r["step_s"]), ms(r["floor_s"]),
            f"{r['ratio_to_floor']:.2f}", f"{r['copy_gb_per_s']:.1f}"]
