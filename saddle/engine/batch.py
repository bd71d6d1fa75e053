"""Run one batch: pad it into fixed-size blocks, compile once per structure, stream traces.

Bit-for-bit reproducibility: XLA on the CPU chooses GEMM tilings and reduction
vectorizations from the whole array shape, batch dimension included, so the same run can
round differently in a batch of 1 and a batch of 5. The engine therefore compiles one
*block* of K runs, K = :func:`~saddle.engine.structure.block_size` (a function of the
structure alone), pads every batch to whole blocks and runs block after block. A run's
result depends only on its config and seed, never on the batch it shares or its position.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..config import Config
from ..numerics import dtype_of, x64_enabled
from .loop import programs
from .output import RUNNING, BatchOutput, lost_fraction
from .problem import shared_arrays
from .structure import (
    Structure,
    block_size,
    scalars_of,
    shared_arrays_key,
    stream_words,
    structure_of,
)
from .trace import concat_traces, rows_to_trace

__all__ = ["run_batch", "compile_count"]

_TRACE_POINTS = 128  # trace rows per run held on the device per chunk


def run_batch(
    configs: list[Config],
    seeds: list[int],
    *,
    shared: dict | None = None,
    on_block=None,
    trace_stride: int | None = None,
    trace_sink=None,
) -> BatchOutput:
    """Run one batch: run b uses ``configs[b]`` and ``seeds[b]``.

    All configs must share one :class:`Structure` and the same shared arrays (landscape
    draw, noise row scales); they may differ in every per-run scalar and in ``max_steps``.
    ``on_block(runs_done)`` is called after each block finishes (for progress bars).

    With ``trace_stride = k``, the diagnostics of every k-th iterate (``t``,
    ``escape_coordinates`` and :data:`~saddle.engine.TRACE_FIELDS`) are streamed: the
    device holds one chunk of ``k * 128`` steps, and ``trace_sink(b, rows)`` receives each
    chunk's rows of run b as they come. Without a sink the rows are collected into
    ``BatchOutput.traces``. Tracing never changes a run's result.
    """
    if len(configs) != len(seeds) or not configs:
        raise ValueError("run_batch: configs and seeds must be non-empty and equally long")
    structure = structure_of(configs[0])
    key0 = shared_arrays_key(configs[0])
    for c in configs[1:]:
        if structure_of(c) != structure or shared_arrays_key(c) != key0:
            raise ValueError("run_batch: configs differ in more than per-run scalars")
    if shared is None:
        shared = shared_arrays(configs[0])
    if trace_stride is not None and trace_stride < 1:
        raise ValueError(f"trace_stride: got {trace_stride}; allowed: an integer >= 1")
    if structure.backend == "numba":
        from .numba_adapter import run_numba

        return run_numba(structure, configs, seeds, shared, on_block, trace_stride, trace_sink)
    return _run_jax(structure, configs, seeds, shared, on_block, int(trace_stride or 0),
                    trace_sink)


def _blocks(structure: Structure, configs, seeds):
    """The batch padded to whole blocks (padding repeats the last run; its results are
    dropped), and a function giving block j's (scalars, seeds, budgets) as device arrays."""
    dtype = dtype_of(structure.dtype)
    K = block_size(structure)
    B = len(configs)
    idx = list(range(B)) + [B - 1] * (-(-B // K) * K - B)
    table = [scalars_of(configs[i]) for i in idx]
    scalars = {k: np.array([row[k] for row in table]) for k in structure.traced_fields()}
    # One row per run: (seed, stream id low word, high word).
    words = [stream_words(c) for c in configs]
    seed_arr = np.asarray([(seeds[i], *words[i]) for i in idx], dtype=np.uint32)
    budgets = np.array([configs[i].max_steps for i in idx], dtype=np.int32)

    def block(j):
        sl = slice(j * K, (j + 1) * K)
        return (
            {k: jnp.asarray(v[sl], dtype) for k, v in scalars.items()},
            jnp.asarray(seed_arr[sl]),
            jnp.asarray(budgets[sl]),
        )

    return K, len(idx) // K, block


def _run_jax(structure, configs, seeds, shared, on_block, stride, trace_sink) -> BatchOutput:
    K, blocks, block = _blocks(structure, configs, seeds)
    B = len(configs)
    points = _TRACE_POINTS if stride else 0
    chunk = stride * points if stride else None
    collected: dict[int, list] = {}
    sink = trace_sink
    if stride and sink is None:
        sink = lambda b, rows: collected.setdefault(b, []).append(rows)
    t0 = time.perf_counter()
    init_fn, advance_fn = _compiled(structure, stride, points, shared, *block(0))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outs = []
    for j in range(blocks):
        args = block(j)
        carry = init_fn(shared, *args)
        budget = int(np.max(np.asarray(args[2])))
        while True:
            until = budget + 1 if chunk is None else int(carry.i) + chunk
            carry, buf, tmark = advance_fn(shared, *args, carry, jnp.asarray(until, jnp.int32))
            if stride:
                _emit(sink, np.asarray(buf), np.asarray(tmark), j * K, B, structure.escape_rank)
            if not bool(jnp.any(carry.status == RUNNING)):
                break
        outs.append(jax.block_until_ready(
            (carry.status, carry.stop, carry.loss, carry.dist, carry.counted, carry.lost)))
        if on_block is not None:
            on_block(min((j + 1) * K, B))
    wall = time.perf_counter() - t0
    status, stop, loss, dist, counted, lost = (
        np.concatenate([np.asarray(o[i]) for o in outs])[:B] for i in range(6)
    )
    traces = None
    if stride and trace_sink is None:
        traces = [concat_traces(collected.get(b, []), structure.escape_rank) for b in range(B)]
    return BatchOutput(status, stop, loss, dist, wall, compile_s, traces,
                       lost_fraction(counted, lost), "jax")


def _emit(sink, buf, tmark, first: int, B: int, r: int) -> None:
    """Hand each run's recorded trace rows of one chunk to the sink."""
    for k in range(buf.shape[0]):
        b = first + k
        if b >= B:
            break
        ok = tmark[k] >= 0
        if ok.any():
            sink(b, rows_to_trace(tmark[k][ok], buf[k][ok], r))


_COMPILED: dict[Any, Any] = {}


def _signature(tree) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((x.shape, str(x.dtype)) for x in leaves)


def _compiled(structure: Structure, stride: int, points: int, shared, *block_args):
    """The compiled (init, advance) pair for a structure, trace layout and argument shapes,
    built once and cached. Values never enter the key: new seeds, scalars, budgets or chunk
    ends reuse the executables."""
    # x64 is part of the key: it sets the precision of the float32 polar factor's Gram matrix.
    key = (structure, stride, points, _signature((shared, block_args)), x64_enabled())
    hit = _COMPILED.get(key)
    if hit is None:
        init, advance = programs(structure, stride, points)
        init_c = jax.jit(init).lower(shared, *block_args).compile()
        carry = jax.eval_shape(init, shared, *block_args)
        until = jax.ShapeDtypeStruct((), jnp.int32)
        # Donating the carry lets XLA update the iterate in place; the CPU backend cannot.
        donate = (4,) if jax.default_backend() != "cpu" else ()
        adv_c = jax.jit(advance, donate_argnums=donate).lower(
            shared, *block_args, carry, until
        ).compile()
        hit = _COMPILED[key] = (init_c, adv_c)
    return hit


def compile_count() -> int:
    """How many programs the engine has compiled in this process (for tests and benchmarks)."""
    return len(_COMPILED)
