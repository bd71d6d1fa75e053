"""Run a batch on the numba kernels (element-wise optimizers, coherent spectral saddle).

The kernels take one table of per-run scalars in their own column order
(:data:`saddle.kernels.elementwise.SCALARS`); this adapter fills it from the configs and
the component specs, and turns the kernels' outputs into a :class:`BatchOutput`.
"""

from __future__ import annotations

import time

import numpy as np

from .output import BatchOutput, lost_fraction
from .structure import Structure, numba_seed, scalars_of
from .trace import TRACE_FIELDS, rows_to_trace

__all__ = ["run_numba"]

_NUMBA_CHUNK = 8  # runs per kernel call: progress granularity; results do not depend on it


def _table(structure: Structure, configs, kernel_columns) -> np.ndarray:
    _, noise, _ = structure.components
    rows = []
    for c in configs:
        sc = scalars_of(c)
        sc["noise_scale"] = noise.numba_scale(c)
        rows.append([sc.get(k, 0.0) for k in kernel_columns])
    return np.asarray(rows, np.float64)


def run_numba(
    structure: Structure, configs, seeds, shared, on_block, trace_stride=None, trace_sink=None
) -> BatchOutput:
    from ..kernels import elementwise as ew

    npdt = np.float64 if structure.dtype == "float64" else np.float32
    _, noise, optimizer = structure.components
    static = dict(structure.optimizer_static)
    rows = noise.numba_row_scales(shared["noise"])
    row_mult = np.ones(structure.m, npdt) if rows is None else np.asarray(rows, npdt)
    table = _table(structure, configs, ew.SCALARS)
    seed_arr = np.asarray([numba_seed(c, s) for c, s in zip(configs, seeds, strict=True)],
                          np.uint64)
    budgets = np.asarray([c.max_steps for c in configs], np.int64)
    args = (
        optimizer.numba_code,
        static.get("variant") == "v2",
        bool(static.get("nesterov")),
        0 if structure.escape == "projection" else 1,
        np.asarray(shared["landscape"]["bulk"], npdt),
        np.asarray(shared["landscape"]["w_star"], npdt),
        row_mult,
        structure.escape_rank,
    )
    noise_on = noise.draws
    B = len(configs)
    stride = int(trace_stride or 0)
    width = structure.escape_rank + len(TRACE_FIELDS)
    points = int(budgets.max()) // stride + 1 if stride else 1
    compile_s = 0.0
    if not ew.compiled(npdt):
        t0 = time.perf_counter()
        ew.run_block(*args, table[:1], seed_arr[:1], np.zeros(1, np.int64), noise_on, 0,
                     np.zeros((1, 1, width)), np.zeros((1, 1), np.int64))
        compile_s = time.perf_counter() - t0
    outs = []
    traces = [] if stride and trace_sink is None else None
    t0 = time.perf_counter()
    for start in range(0, B, _NUMBA_CHUNK):
        sl = slice(start, start + _NUMBA_CHUNK)
        k = len(table[sl])
        tr = np.full((k, points, width), np.nan)
        tm = np.full((k, points), -1, np.int64)
        outs.append(ew.run_block(*args, table[sl], seed_arr[sl], budgets[sl], noise_on, stride,
                                 tr, tm))
        if stride:
            for q in range(k):
                ok = tm[q] >= 0
                run_rows = rows_to_trace(tm[q][ok], tr[q][ok], structure.escape_rank)
                if trace_sink is not None:
                    trace_sink(start + q, run_rows)
                else:
                    traces.append(run_rows)
        if on_block is not None:
            on_block(min(start + _NUMBA_CHUNK, B))
    wall = time.perf_counter() - t0
    status, stop, loss, dist, counted, lost = (
        np.concatenate([o[i] for o in outs]) for i in range(6))
    return BatchOutput(
        status.astype(np.int32), stop.astype(np.int32), loss, dist, wall, compile_s, traces,
        lost_fraction(counted, lost), "numba",
    )
