"""Memory: an estimate of what a config needs, made before anything is allocated.

The CLI refuses a run that cannot fit in this machine's memory in one line naming the
fields, and sweeps size their batches with :func:`runs_that_fit`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import Config
from .errors import SaddleInputError

__all__ = ["memory_estimate", "available_memory", "check_memory", "runs_that_fit"]

_ITEMSIZE = {"float32": 4, "float64": 8}


def _dense_basis(config: Config) -> bool:
    """Whether the config's landscape holds dense m x m and n x n bases."""
    return config.components()[0].dense_basis(config)


_ITEMSIZE = {"float32": 4, "float64": 8}


def memory_estimate(config: Config, trace_stride: int | None = None) -> tuple[int, int]:
    """(shared bytes, bytes per run): an upper estimate of the engine's memory for a config.

    Shared, once per batch (the landscape draw, built on the host in float64 and copied to
    the run dtype): the unit bulk, its quantiles, their permutation and W* (about 4 float64
    arrays of D entries plus 2 in the run dtype) and, where the landscape has dense bases,
    P and Q with the temporaries of their QR draw (3 float64 copies of m^2 + n^2, plus one
    in the run dtype). Per run: about 12 m x n arrays in the run dtype (W, W - W*, its
    eigenbasis coordinates, the gradient in both bases, the noise draw, the update, three
    of optimizer state and two temporaries) and 3 min(m, n)^2 for an orthogonalizer, plus
    the recorded trace rows with ``trace_stride``.
    """
    m, n = config.m, config.n
    isz = _ITEMSIZE[config.dtype]
    mn = max(m * n, config.D)  # a network landscape has more parameters than m x n
    shared = mn * (4 * 8 + 2 * isz)
    if _dense_basis(config):
        shared += (m * m + n * n) * (3 * 8 + isz)
    per_run = isz * (12 * mn + 3 * min(m, n) ** 2)
    if trace_stride:
        rows = -(-config.max_steps // trace_stride)
        per_run += rows * 8 * (config.escape_rank + 8)
    return shared, per_run


def available_memory() -> int | None:
    """This machine's memory in bytes: physical memory, or a smaller cgroup limit (a
    container's); None where neither can be read."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        total = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:
            total = int(text) if total is None else min(total, int(text))
    return total if total and total > 0 else None


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def check_memory(config: Config, trace_stride: int | None = None) -> None:
    """Refuse, in one line naming the fields, a config whose single run cannot fit in this
    machine's memory (:func:`memory_estimate` against :func:`available_memory`)."""
    avail = available_memory()
    if avail is None:
        return
    shared, per_run = memory_estimate(config, trace_stride)
    need = shared + per_run
    if need <= avail:
        return
    dense = _dense_basis(config)
    names = "m, n" + (", basis" if dense else "") + ", dtype"
    what = f"m = {config.m}, n = {config.n}" + (f", basis {config.basis}" if dense else "")
    fix = "a smaller m*n" + (" or basis = 'coherent' or 'structured' (no dense P, Q)"
                             if dense else "")
    if trace_stride and per_run > avail // 2:
        names += ", trace_stride"
        fix += ", or a larger trace_stride"
    raise SaddleInputError(
        f"{names}: {what}, {config.dtype} needs about {_gib(need)} for one run "
        f"({_gib(shared)} shared, {_gib(per_run)} per run); this machine has {_gib(avail)}; "
        f"allowed: {fix}")


def runs_that_fit(config: Config, trace_stride: int | None = None,
                  fraction: float = 0.5) -> int:
    """The most runs of ``config`` a batch may hold: its shared arrays and that many runs
    within ``fraction`` of this machine's memory (at least 1; unbounded if unknown)."""
    avail = available_memory()
    if avail is None:
        return 1 << 30
    shared, per_run = memory_estimate(config, trace_stride)
    return max(1, int((avail * fraction - shared) // per_run))
