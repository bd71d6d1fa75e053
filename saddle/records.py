"""Per-run records: from an engine batch's output to stored results, and back to configs.

Both :func:`saddle.simulate.simulate` and the sweep runner store what the engine returns for a
batch through :func:`run_records`, so a run's status, escape time and flags are derived in one
place. :func:`config_from_row` rebuilds the validated config of a stored result row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import FIELDS, Config
from .engine import DIVERGED, ESCAPED, SIGNAL_LOST_FRACTION
from .numerics import x64_enabled

__all__ = ["batch_arrays", "run_records", "config_from_row"]

# The per-run arrays of a batch output that :func:`run_records` reads.
_PER_RUN = ("status", "stop_step", "final_loss", "final_distance", "lost_fraction")


def batch_arrays(out) -> dict[str, Any]:
    """The results of an engine batch (:class:`saddle.engine.BatchOutput`) as plain numpy
    arrays and floats: picklable, so they can cross process boundaries (Dask workers)."""
    arrays: dict[str, Any] = {}
    for name in _PER_RUN:
        v = getattr(out, name)
        arrays[name] = None if v is None else np.asarray(v)
    arrays.update(wall_s=float(out.wall_s), compile_s=float(out.compile_s), traces=out.traces,
                  engine=out.engine, x64=x64_enabled())
    return arrays


def _finite_or_none(x) -> float | None:
    """``x`` as a float, or None if it is NaN or infinite (Parquet and JSON store None)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _status_name(code: int) -> str:
    return {ESCAPED: "escaped", DIVERGED: "diverged"}.get(code, "censored")


def run_records(batch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One record per run of a batch, in the batch's order.

    ``batch`` holds the per-run arrays status, stop_step, final_loss, final_distance and
    lost_fraction (None if not reported), and the batch's ``wall_s`` (as
    :func:`batch_arrays` returns them). A record has the run's ``status`` (escaped, diverged or
    censored), ``escaped``, ``escape_time`` (None unless escaped), ``steps`` (the escape time,
    the divergence step or the budget), ``diverged``, ``final_loss`` and ``final_distance``
    (None when not finite), ``signal_lost`` (rounding lost the escape component in at least
    :data:`saddle.engine.SIGNAL_LOST_FRACTION` of the steps), ``rounding_lost_frac`` (that
    fraction; None when the batch did not report it) and ``wall_s`` (the run's equal share of
    the batch's execution time), and what changes numbers besides the config: ``engine``
    (the engine that ran: jax or numba) and ``x64`` (JAX's 64-bit setting of the process).
    """
    status = batch["status"]
    lost = batch["lost_fraction"]
    per = batch["wall_s"] / len(status)
    records = []
    for b in range(len(status)):
        name = _status_name(int(status[b]))
        stop = int(batch["stop_step"][b])
        records.append(dict(
            status=name, escaped=name == "escaped",
            escape_time=stop if name == "escaped" else None, steps=stop,
            diverged=name == "diverged",
            final_loss=_finite_or_none(batch["final_loss"][b]),
            final_distance=_finite_or_none(batch["final_distance"][b]),
            signal_lost=bool(lost is not None and lost[b] >= SIGNAL_LOST_FRACTION),
            rounding_lost_frac=None if lost is None else float(lost[b]),
            wall_s=per, engine=batch.get("engine"), x64=batch.get("x64"),
        ))
    return records


def _plain(v: Any) -> Any:
    """A stored cell as a config value: missing (None, NaN, NA) is None, numpy scalars are
    Python scalars."""
    import pandas as pd

    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return v.item() if hasattr(v, "item") else v


def config_from_row(row: Mapping[str, Any], **overrides: Any) -> Config:
    """The validated config of a stored result row (a dict or a pandas Series).

    Config fields missing from the row take their defaults; ``seeds`` is 1 (a row is one run)
    unless given in ``overrides``, which replace row values before validation.
    """
    d = {k: _plain(row[k]) for k in FIELDS if k in row}
    d["seeds"] = 1
    d.update(overrides)
    return Config.from_dict(d)
