"""Theory beside a measured dimension exponent: what ``saddle.theory``'s escape-time
estimates predict for a cell of stored runs.

A cell (one regime, basis, protocol and method over several D) ran one config per shape,
each with the learning rate its protocol chose. For the first estimate in :data:`ESTIMATES`
whose assumptions hold at every shape, the predicted exponent is the least-squares slope of
log(estimate) on log D over those configs. The assumptions that only say whether a
simulation can observe the median (``budget``: enough steps) are not required: the estimate
of a censored cell is what says why it is censored, so the estimate at the largest D is
returned beside the exponent.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .records import config_from_row

__all__ = ["ESTIMATES", "predicted_exponent"]

# Escape-time estimates, most specific first (a gamma = 0 cell takes the diffusive law).
ESTIMATES = ("sgd_diffusive_median", "adamw_diffusive_median", "muon_diffusive_median",
             "sgd_escape_mean", "adamw_escape_estimate")
# Assumptions about the simulation's step budget, not about the dynamics.
OBSERVATION_ONLY = ("budget",)

EMPTY = dict(theory_b=math.nan, theory_result="", theory_tau_max_d=math.nan)


def _holds(res, cfg) -> bool:
    if not res.applies_to(cfg):
        return False
    return all(ok for a, ok in res.check(cfg) if a.name not in OBSERVATION_ONLY)


def _configs(runs: pd.DataFrame) -> list | None:
    """(D, config of the cell's first run at that shape) per shape, by D; None when a row
    cannot be read as a config (an older schema)."""
    out = []
    for (m, n), g in runs.groupby(["m", "n"], sort=True):
        try:
            out.append((int(m) * int(n), config_from_row(g.iloc[0])))
        except Exception:  # noqa: BLE001 - a row of an older schema: no prediction
            return None
    return sorted(out, key=lambda x: x[0])


def predicted_exponent(runs: pd.DataFrame) -> dict:
    """``theory_b`` (predicted exponent), ``theory_result`` (the estimate's name) and
    ``theory_tau_max_d`` (its value, in steps, at the largest D) for the runs of one cell;
    NaN and '' when no estimate covers every shape of the cell (or it has one shape)."""
    from .theory import RESULTS

    if runs.empty or not {"m", "n"} <= set(runs.columns):
        return dict(EMPTY)
    configs = _configs(runs)
    if configs is None or len(configs) < 2:
        return dict(EMPTY)
    for name in ESTIMATES:
        res = RESULTS[name]
        values = []
        for d, cfg in configs:
            v = res.evaluate(cfg) if _holds(res, cfg) else None
            if v is None or not math.isfinite(v) or v <= 0:
                break
            values.append((d, v))
        else:
            x, y = np.log([d for d, _ in values]), np.log([v for _, v in values])
            slope = float(np.polyfit(x, y, 1)[0])
            return dict(theory_b=slope, theory_result=name, theory_tau_max_d=values[-1][1])
    return dict(EMPTY)
