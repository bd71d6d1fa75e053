r"""What the theory needs to know about each noise model and escape direction.

For the gradient noise Xi of a config (``saddle.noise``), and for a momentum-filtered sum
sum_k w_k Xi_k of independent draws with weights w (what an optimizer's momentum holds):

- the variance of the escape-coordinate noise <Xi, E_i>;
- whether <Xi, E_i> is Gaussian;
- high-probability bounds on the spectral and Frobenius norms of sum_k w_k Xi_k;
- the typical spectral norm of one draw, and the per-entry standard deviation.

High-probability bounds use Gaussian concentration: a function of a standard Gaussian
vector with Lipschitz constant L exceeds its mean by L u with probability at most
exp(-u^2/2). The means come from Gordon's and Chevet's inequalities,
E||A G B||_2 <= ||A||_2 ||B||_F + ||A||_F ||B||_2 for G standard Gaussian.

| model | entries of Xi | E-variance | E||sum w_k Xi_k||_2 <= |
|---|---|---|---|
| isotropic | sigma Z | sigma^2 | sigma ||w||_2 (sqrt m + sqrt n) |
| opnorm | sigma/(sqrt m + sqrt n) Z | sigma^2/(sqrt m + sqrt n)^2 | sigma ||w||_2 |
| lowrank | sigma/sqrt(mn) A B^T | sigma^2 k/(mn) | see FOOTNOTE |
| kronecker | sigma diag(s) Z | sigma^2 sum_i s_i^2 p_i^2 | sigma ||w||_2 (s_max sqrt n + sqrt m) |
| student_t | sigma T (unit variance) | sigma^2 | no sub-Gaussian bound |

FOOTNOTE (lowrank): sigma (sqrt(m w_max) + sqrt(k sum w)) (sqrt(n w_max) + sqrt(k sum w))
/ sqrt(mn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..landscapes.spectral import landscape_arrays
from ..landscapes.structured import apply_np
from ..registry import NOISES

__all__ = [
    "NoiseFacts",
    "noise_facts",
    "escape_direction_stats",
    "EscapeDirectionStats",
]


@dataclass(frozen=True)
class EscapeDirectionStats:
    """Norms of the escape directions E_i = p_i q_i^T of a config's landscape."""

    l1: tuple[float, ...]  # ||E_i||_1 (sum of |entries|)
    linf: tuple[float, ...]  # max |entry|
    row_weight: tuple[float, ...]  # sum_k s_k^2 p_ik^2, s the noise's row scales (else 1)


_STATS_CACHE: dict[tuple, EscapeDirectionStats] = {}


def escape_direction_stats(config) -> EscapeDirectionStats:
    """||E_i||_1, ||E_i||_inf and the noise row weight of each escape direction."""
    spec = NOISES[config.noise]
    key = (config.m, config.n, config.escape_rank, config.basis, config.mixing,
           config.landscape_seed, config.noise, spec.shared_key(config))
    if key not in _STATS_CACHE:
        if len(_STATS_CACHE) >= 64:
            _STATS_CACHE.pop(next(iter(_STATS_CACHE)))
        scales = spec.row_scales(config)
        _STATS_CACHE[key] = _direction_stats(config, None if scales is None else scales**2)
    return _STATS_CACHE[key]


def _direction_stats(config, row_var) -> EscapeDirectionStats:
    m, n, r = config.m, config.n, config.escape_rank
    rows = row_var if row_var is not None else np.ones(m)
    if config.basis == "coherent":
        return EscapeDirectionStats(
            l1=(1.0,) * r, linf=(1.0,) * r, row_weight=tuple(float(rows[i]) for i in range(r))
        )
    cfg = Config.from_dict(
        m=m, n=n, escape_rank=r, basis=config.basis, mixing=config.mixing,
        landscape_seed=config.landscape_seed, noise="none",
    )
    arrs = landscape_arrays(cfg)
    l1, linf, rw = [], [], []
    for i in range(r):
        if arrs["basis"] is not None:  # structured: columns without forming P and Q
            p = apply_np(arrs["basis"].P, _unit(m, i))
            q = apply_np(arrs["basis"].Q, _unit(n, i))
        else:
            p, q = arrs["P"][:, i], arrs["Q"][:, i]
        l1.append(float(np.abs(p).sum() * np.abs(q).sum()))
        linf.append(float(np.abs(p).max() * np.abs(q).max()))
        rw.append(float(np.sum(rows * p * p)))
    return EscapeDirectionStats(tuple(l1), tuple(linf), tuple(rw))


def _unit(n: int, i: int) -> np.ndarray:
    e = np.zeros(n)
    e[i] = 1.0
    return e


@dataclass(frozen=True)
class NoiseFacts:
    """The facts about one config's noise model that the bounds use. The formulas live in
    the noise model's spec (:class:`saddle.noise.NoiseSpec`); this holds the numbers."""

    kind: str
    m: int
    n: int
    sigma: float
    rank: int
    row_scale_max: float  # max_i s_i of per-row scales; 1 when the rows are alike
    e_variance: tuple[float, ...]  # Var <Xi, E_i>, i < r
    entry_std: float  # root-mean-square per-entry standard deviation
    df: float | None

    @property
    def spec(self):
        return NOISES[self.kind]

    @property
    def gaussian_along_e(self) -> bool:
        return self.spec.gaussian_along_e

    @property
    def has_tail_bound(self) -> bool:
        """Whether sub-Gaussian norm bounds exist."""
        return self.spec.has_tail_bound

    def typical_spectral_norm(self) -> float:
        """The large-(m, n) spectral norm of one draw of Xi."""
        return self.spec.typical_spectral_norm(self)

    def spectral_bound(self, wnorm: float, wsum: float, wmax: float, u: float) -> float:
        """||sum_k w_k Xi_k||_2 <= this, except with probability events * exp(-u^2/2).

        ``wnorm`` = ||w||_2, ``wsum`` = sum |w_k|, ``wmax`` = max |w_k|, ``u`` >= 0.
        """
        return self.spec.spectral_bound(self, wnorm, wsum, wmax, u)

    def frobenius_bound(self, wnorm: float, wsum: float, wmax: float, u: float) -> float:
        """||sum_k w_k Xi_k||_F <= this, except with probability events * exp(-u^2/2)."""
        return self.spec.frobenius_bound(self, wnorm, wsum, wmax, u)

    # Events per step that the bounds above union over (spectral + Frobenius, two factors
    # each for lowrank).
    events_per_step: int = 4


def noise_facts(config) -> NoiseFacts:
    """The :class:`NoiseFacts` of a config, from its noise model's spec."""
    spec = NOISES[config.noise]
    scales = spec.row_scales(config)
    weights = (1.0,) * config.escape_rank
    if scales is not None:
        weights = escape_direction_stats(config).row_weight
    return NoiseFacts(
        kind=config.noise, m=config.m, n=config.n,
        sigma=0.0 if config.sigma is None else float(config.sigma),
        rank=config.noise_rank or 1,
        row_scale_max=1.0 if scales is None else float(scales.max()),
        e_variance=spec.e_variance(config, weights),
        entry_std=spec.entry_std(config), df=config.noise_df,
    )
