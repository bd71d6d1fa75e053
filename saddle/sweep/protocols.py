"""Learning-rate protocols: what learning rate each grid point runs at.

- ``fixed``: the config's learning rate (the optimizer's default when unset), for every D.
- ``matched_rms``: the learning rate that makes the *nominal* update RMS equal to
  ``target_rms`` (default 2e-4, i.e. 0.2 x 1e-3). Each optimizer's spec states its nominal
  RMS per unit learning rate (:func:`update_rms_per_lr`): 0.2 for AdamW (the typical AdamW
  update RMS, Moonlight's matching convention) and for Mano and Moonlight-scaled Muon
  (exact), 1 for sign descent, ``scale / sqrt(max(m, n))`` for Muon with a full-rank
  orthogonalized update, ``1/sqrt(mn)`` for normalized GD, and the initial gradient RMS for
  SGD.
- ``tuned``: every multiplier of ``lr_grid`` times the base learning rate runs (all of them
  in one batch: the configs differ only in a scalar). The analysis then keeps, per D and
  optimizer, the learning rate with the smallest Kaplan-Meier median escape time
  (:func:`saddle.analysis.select_tuned`).
- ``stability_edge``: the largest learning rate of ``base x edge_grid`` whose probe runs
  (a few seeds, a short budget) do not diverge, found by bisection over the grid
  (:func:`find_stability_edge`); the sweep's runs then use it.
"""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..registry import OPTIMIZERS

__all__ = ["update_rms_per_lr", "matched_rms_lr", "find_stability_edge"]


def update_rms_per_lr(config: Config) -> float:
    """Nominal RMS of one update divided by the learning rate (see the module docstring);
    each optimizer's spec states its own."""
    return OPTIMIZERS[config.optimizer].update_rms_per_lr(config)


def matched_rms_lr(config: Config, target_rms: float) -> float:
    return target_rms / update_rms_per_lr(config)


def find_stability_edge(
    config: Config, grid: tuple[float, ...], probe_seeds: int = 4, probe_steps: int = 300
) -> dict:
    """The largest learning rate on ``base * grid`` whose probes do not diverge.

    Bisection over the sorted grid, assuming divergence is monotone in the learning rate;
    each probe is a batch of ``probe_seeds`` runs of the config itself (same escape criterion)
    with at most ``probe_steps`` steps. A learning rate is stable when no probe diverges:
    escaping, or reaching the probe budget, both count as stable.

    Returns ``dict(edge_lr, multiplier, probes, capped)``; ``capped`` is True when even the
    largest grid value did not diverge (the edge lies beyond the grid), and ``edge_lr`` is
    None when even the smallest did.
    """
    from ..engine import DIVERGED, run_batch

    base = config.learning_rate
    mults = sorted(grid)
    probe = config.replace(max_steps=min(config.max_steps, probe_steps), seeds=1, seed=10**6)
    cache: dict[int, bool] = {}

    def stable(i: int) -> bool:
        if i not in cache:
            c = probe.replace(learning_rate=base * mults[i])
            seeds = list(range(10**6, 10**6 + probe_seeds))
            out = run_batch([c] * probe_seeds, seeds)
            cache[i] = not bool(np.any(np.asarray(out.status) == DIVERGED))
        return cache[i]

    lo, hi = 0, len(mults) - 1
    if not stable(lo):
        return dict(edge_lr=None, multiplier=None, probes=len(cache), capped=False)
    if stable(hi):
        return dict(edge_lr=base * mults[hi], multiplier=mults[hi], probes=len(cache),
                    capped=True)
    while hi - lo > 1:  # invariant: lo stable, hi diverges
        mid = (lo + hi) // 2
        if stable(mid):
            lo = mid
        else:
            hi = mid
    return dict(edge_lr=base * mults[lo], multiplier=mults[lo], probes=len(cache), capped=False)
