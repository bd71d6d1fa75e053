"""Theory beside a measured dimension exponent: what ``saddle.theory``'s escape-time
results predict for a cell of stored runs.

A cell (one regime, basis, protocol and method over several D) ran one config per shape,
each with the learning rate its protocol chose. For the first estimate in :data:`ESTIMATES`
whose assumptions hold at every shape, the predicted exponent is the least-squares slope of
log(estimate) on log D over those configs. The assumptions that only say whether a
simulation can observe the median (``budget``: enough steps) are not required: the estimate
of a censored cell is what says why it is censored, so the estimate at the largest D is
returned beside the exponent. A result that says it has no value because the run cannot
escape (``extra["no_escape"](config)``: the quartic cap's closed window) predicts no escape
at that shape: the cell is predicted censored (inf), with no exponent.

:func:`applicable_results` lists every escape-time result (bounds too) whose assumptions
hold at every shape of a cell: the coverage of the map by the theory. :func:`cell_theory`
gives both for one cell, reading its configs once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .records import config_from_row

__all__ = ["ESTIMATES", "Prediction", "predicted_series", "predicted_exponent",
           "applicable_results", "cell_theory"]

# Escape-time estimates, most specific first (a gamma = 0 cell takes the diffusive law, a
# kappa > 0 cell the quartic window, an incoherent basis its own AdamW law).
ESTIMATES = ("sgd_diffusive_median", "adamw_diffusive_median", "muon_diffusive_median",
             "quartic_sgd_escape", "quartic_adamw_escape", "sgd_escape_mean",
             "adamw_escape_estimate", "adamw_incoherent_estimate", "adamw_incoherent_clt",
             "sgd_escape_clt", "sgd_first_passage_median", "adamw_escape_clt",
             "muon_noise_start_estimate", "mano_clock_estimate")
# Assumptions about the simulation's step budget, not about the dynamics.
OBSERVATION_ONLY = ("budget",)

EMPTY = dict(theory_b=math.nan, theory_result="", theory_tau_max_d=math.nan)


@dataclass(frozen=True)
class Prediction:
    """An estimate along a cell's shapes: ``dims`` (D, increasing), ``values`` (steps; inf
    where it predicts no escape) and ``slope`` (the predicted exponent; NaN when some value
    is infinite)."""

    result: str
    dims: tuple[int, ...]
    values: tuple[float, ...]
    slope: float


def _holds(res, cfg) -> bool:
    return res.applies_to(cfg) and res.assumptions_hold(cfg, skip=OBSERVATION_ONLY)


def _configs(runs: pd.DataFrame) -> list | None:
    """(D, config of the cell's first run at that shape) per shape, by D; None when the
    runs have no shapes or a row cannot be read as a config (an older schema)."""
    if runs.empty or not {"m", "n"} <= set(runs.columns):
        return None
    out = []
    for (m, n), g in runs.groupby(["m", "n"], sort=True):
        try:
            out.append((int(m) * int(n), config_from_row(g.iloc[0])))
        except Exception:  # noqa: BLE001 - a row of an older schema: no prediction
            return None
    return sorted(out, key=lambda x: x[0])


def _values(res, configs) -> list[float] | None:
    """The result's value at every shape (inf kept: no escape), or None where it does not
    hold or cannot be evaluated at some shape."""
    out = []
    no_escape = res.extra.get("no_escape")
    for _, cfg in configs:
        if not _holds(res, cfg):
            return None
        v = res.evaluate(cfg)
        if v is None and no_escape is not None and no_escape(cfg):
            v = math.inf  # the result says why it has no value: no escape at all
        if v is None or math.isnan(v) or v <= 0:
            return None
        out.append(float(v))
    return out


def predicted_series(runs: pd.DataFrame, names=ESTIMATES) -> Prediction | None:
    """The first result of ``names`` that holds at every shape of the cell ``runs`` (at
    least two shapes), with its values and slope; None when none does."""
    return _series(_configs(runs), names)


def _series(configs, names=ESTIMATES) -> Prediction | None:
    from .theory import RESULTS

    if configs is None or len(configs) < 2:
        return None
    for name in names:
        if name not in RESULTS:
            continue
        values = _values(RESULTS[name], configs)
        if values is None:
            continue
        dims = tuple(d for d, _ in configs)
        slope = math.nan
        if all(math.isfinite(v) for v in values):
            slope = float(np.polyfit(np.log(dims), np.log(values), 1)[0])
        return Prediction(name, dims, tuple(values), slope)
    return None


def predicted_exponent(runs: pd.DataFrame) -> dict:
    """``theory_b`` (predicted exponent), ``theory_result`` (the estimate's name) and
    ``theory_tau_max_d`` (its value, in steps, at the largest D; inf: no escape predicted)
    for the runs of one cell; NaN and '' when no estimate covers every shape of the cell
    (or it has one shape)."""
    return _exponent_fields(_series(_configs(runs)))


def _exponent_fields(p: Prediction | None) -> dict:
    if p is None:
        return dict(EMPTY)
    return dict(theory_b=p.slope, theory_result=p.result, theory_tau_max_d=p.values[-1])


def applicable_results(runs: pd.DataFrame) -> list[str]:
    """Every escape-time result of ``saddle.theory`` (bounds and estimates) whose assumptions
    other than the step budget hold at every shape of the cell."""
    return _applicable(_configs(runs))


def _applicable(configs) -> list[str]:
    from .theory import RESULTS

    if not configs:
        return []
    return [name for name, res in RESULTS.items()
            if res.quantity == "escape_time" and all(_holds(res, c) for _, c in configs)]


def cell_theory(runs: pd.DataFrame) -> dict:
    """:func:`predicted_exponent`'s fields and ``theory_applicable`` (the names of
    :func:`applicable_results`, comma-separated) for one cell, its configs built once."""
    configs = _configs(runs)
    return dict(_exponent_fields(_series(configs)),
                theory_applicable=", ".join(_applicable(configs)))
