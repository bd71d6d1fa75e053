"""Sweeps: grids of configs run resumably into a Parquet results store.

See :mod:`saddle.sweep.spec` for the spec syntax, :mod:`saddle.sweep.store` for the store's
layout and its crash-safety argument, and :mod:`saddle.sweep.runner` for planning and
executors.
"""

from .protocols import (
    find_stability_edge,
    matched_lr,
    matched_rms_lr,
    norm_table,
    update_norms_per_lr,
    update_rms_per_lr,
)
from .runner import Run, SweepReport, make_batches, plan_runs, run_sweep
from .spec import PROTOCOLS, Point, SweepSpec, load_spec, parse_spec
from .store import Store

__all__ = [
    "PROTOCOLS",
    "Point",
    "Run",
    "Store",
    "SweepReport",
    "SweepSpec",
    "find_stability_edge",
    "load_spec",
    "make_batches",
    "matched_lr",
    "matched_rms_lr",
    "norm_table",
    "parse_spec",
    "plan_runs",
    "run_sweep",
    "update_norms_per_lr",
    "update_rms_per_lr",
]
