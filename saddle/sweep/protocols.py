"""Learning-rate protocols: what learning rate each grid point runs at.

Every optimizer spec states the nominal norms of one update per unit learning rate of each
parameter leaf (m, n) (the table of values is in
:meth:`saddle.optimizers.OptimizerSpec.leaf_norms_per_lr`), and :func:`update_norms_per_lr`
combines them over the landscape's leaves (:meth:`saddle.landscapes.LandscapeSpec.param_shapes`:
one (m, n) leaf for the spectral families; W1 (h, n) and W2 (m, h) for the networks): RMS
over all D parameters, Frobenius over all, spectral the largest leaf's.

Frobenius = RMS * sqrt(mn) always. Spectral: Muon's orthogonalized update has all its
singular values equal to its scale ``s`` (keller: sqrt(max(1, m/n)); Newton-Schulz gets
the polar values); every other method's update at the saddle is dense and incoherent
(noise and the bulk's pull on a random init dominate the gradient), so its spectral norm is
that of a random matrix of the same entry RMS, RMS * (sqrt m + sqrt n). A rank-one update
of the same RMS would have spectral = Frobenius.

Protocols:

- ``fixed``: the config's learning rate (the optimizer's default when unset), for every D.
  Each optimizer then runs in its own norm (AdamW's RMS, Muon's spectral norm, normalized
  GD's Frobenius norm): ``fixed`` does NOT compare optimizers on one norm, and a dimension
  exponent measured across optimizers under ``fixed`` may come from the norms alone.
- ``matched_rms``, ``matched_frobenius``, ``matched_spectral``: the learning rate that sets
  the named nominal norm of one update to the spec's target (``target_rms``, default 2e-4 =
  0.2 x AdamW's default 1e-3; ``target_frobenius``, default 0.02 = normalized GD's default
  step; ``target_spectral``, default 0.02 = Muon's default step on a square matrix):
  ``lr = target / norm_per_lr``.
- ``tuned``: every multiplier of ``lr_grid`` times the base learning rate runs (all of them
  in one batch: the configs differ only in a scalar). The analysis then keeps, per D and
  optimizer, the learning rate with the smallest Kaplan-Meier median escape time
  (:func:`saddle.analysis.select_tuned`). Rows carry ``lr_base`` and ``lr_grid``.
- ``stability_edge``: the largest stable learning rate, searched by :func:`find_stability_edge`
  (grid bisection, then geometric growth past the grid, then geometric bisection to a
  relative resolution); rows carry ``edge_lr`` and ``edge_capped``.

Two protocols that give an optimizer the same learning rate at a point (e.g. AdamW's
``fixed`` and ``matched_rms`` at the defaults) would run and report the same cells twice:
the planner refuses such a spec (:func:`saddle.sweep.runner.plan_runs`).
"""

from __future__ import annotations

import math

import numpy as np

from ..config import Config
from ..registry import OPTIMIZERS

__all__ = ["update_rms_per_lr", "update_norms_per_lr", "matched_rms_lr", "matched_lr",
           "norm_table", "find_stability_edge", "MATCHED", "DEFAULT_TARGETS", "EDGE_GROWTH",
           "EDGE_CEILING", "EDGE_RESOLUTION"]

# The matched protocols and the nominal norm each one sets.
MATCHED = {"matched_rms": "rms", "matched_frobenius": "frobenius",
           "matched_spectral": "spectral"}
# The default target of each norm (spec keys target_rms, target_frobenius, target_spectral).
DEFAULT_TARGETS = {"rms": 2e-4, "frobenius": 0.02, "spectral": 0.02}

# The stability-edge search past the top of the grid: grow the multiplier by EDGE_GROWTH
# until a probe diverges or the multiplier reaches EDGE_CEILING (x the base learning rate);
# then bisect geometrically until first-diverging / last-stable <= EDGE_RESOLUTION.
EDGE_GROWTH = 4.0
EDGE_CEILING = 1e6
EDGE_RESOLUTION = 1.1


def update_rms_per_lr(config: Config) -> float:
    """Nominal RMS of one update over all parameters divided by the learning rate (see the
    module docstring)."""
    return update_norms_per_lr(config)["rms"]


def update_norms_per_lr(config: Config) -> dict[str, float]:
    """Nominal ``rms``, ``frobenius`` and ``spectral`` norms of one update per unit learning
    rate over the config's parameter leaves (the module docstring)."""
    return dict(OPTIMIZERS[config.optimizer].update_norms_per_lr(config))


def matched_lr(config: Config, norm: str, target: float) -> float:
    """The learning rate whose nominal update has norm ``norm`` equal to ``target``."""
    return target / update_norms_per_lr(config)[norm]


def matched_rms_lr(config: Config, target_rms: float) -> float:
    return matched_lr(config, "rms", target_rms)


def norm_table(configs) -> list[dict]:
    """One row per config: optimizer, shape and its nominal norms per unit learning rate."""
    rows = []
    for c in configs:
        rows.append(dict(optimizer=c.optimizer, orthogonalizer=c.orthogonalizer, m=c.m, n=c.n,
                         **update_norms_per_lr(c)))
    return rows


def _prober(config: Config, probe_seeds: int, probe_steps: int):
    """``stable(multiplier)``: whether no probe run at ``base * multiplier`` diverges (cached).

    A probe is a batch of ``probe_seeds`` runs of the config itself (same escape criterion)
    with at most ``probe_steps`` steps; escaping or reaching the budget both count as stable.
    """
    from ..engine import DIVERGED, run_batch

    base = config.learning_rate
    probe = config.replace(max_steps=min(config.max_steps, probe_steps), seeds=1, seed=10**6)
    seeds = list(range(10**6, 10**6 + probe_seeds))
    cache: dict[float, bool] = {}

    def stable(k: float) -> bool:
        if k not in cache:
            out = run_batch([probe.replace(learning_rate=base * k)] * probe_seeds, seeds)
            cache[k] = not bool(np.any(np.asarray(out.status) == DIVERGED))
        return cache[k]

    return stable, cache


def _grid_bracket(stable, mults: list[float]) -> tuple[float, float | None]:
    """(last stable, first diverging) multipliers on the sorted grid, by bisection over its
    indices; the first diverging is None when the top of the grid is stable."""
    lo, hi = 0, len(mults) - 1
    if stable(mults[hi]):
        return mults[hi], None
    while hi - lo > 1:  # invariant: lo stable, hi diverges
        mid = (lo + hi) // 2
        if stable(mults[mid]):
            lo = mid
        else:
            hi = mid
    return mults[lo], mults[hi]


def find_stability_edge(
    config: Config, grid: tuple[float, ...], probe_seeds: int = 4, probe_steps: int = 300,
    growth: float = EDGE_GROWTH, ceiling: float = EDGE_CEILING,
    resolution: float = EDGE_RESOLUTION,
) -> dict:
    """The largest learning rate whose probes do not diverge, to a relative ``resolution``.

    1. Bisection over the sorted ``base * grid`` (divergence assumed monotone in the rate).
    2. If the top of the grid is stable, the multiplier grows by ``growth`` (capped at
       ``ceiling``) until a probe diverges.
    3. Geometric bisection between the last stable and the first diverging multiplier until
       their ratio is at most ``resolution``.

    Returns ``dict(edge_lr, multiplier, edge_hi, probes, capped, reason, resolution,
    ceiling)``: ``edge_lr`` is stable and ``edge_hi`` (at most ``resolution`` times larger)
    diverged. ``capped`` is True when no probe diverged up to ``ceiling * base`` (then
    ``edge_lr`` is that rate and ``edge_hi`` None: not an edge); ``edge_lr`` is None when the
    smallest grid value already diverges.
    """
    base = config.learning_rate
    mults = sorted(grid)
    stable, cache = _prober(config, probe_seeds, probe_steps)
    out = dict(resolution=resolution, ceiling=ceiling, capped=False, reason="")
    if not stable(mults[0]):
        return dict(out, edge_lr=None, multiplier=None, edge_hi=None, probes=len(cache),
                    reason=f"diverges at the smallest grid rate {base * mults[0]:.3g}")
    lo, hi = _grid_bracket(stable, mults)
    while hi is None and lo < ceiling:
        k = min(lo * growth, ceiling)
        if stable(k):
            lo = k
        else:
            hi = k
    if hi is None:
        return dict(out, edge_lr=base * lo, multiplier=lo, edge_hi=None, probes=len(cache),
                    capped=True, reason=f"no probe diverged up to the ceiling "
                    f"{ceiling:g} x base = {base * ceiling:.3g}")
    while hi / lo > resolution:
        mid = math.sqrt(lo * hi)
        if stable(mid):
            lo = mid
        else:
            hi = mid
    return dict(out, edge_lr=base * lo, multiplier=lo, edge_hi=base * hi, probes=len(cache))
