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

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "NoiseFacts",
    "noise_facts",
    "escape_direction_stats",
    "EscapeDirectionStats",
    "GAUSSIAN_ALONG_E",
]

# Noise models whose escape-coordinate noise <Xi, E> is exactly Gaussian.
GAUSSIAN_ALONG_E = ("none", "isotropic", "opnorm", "kronecker")


@dataclass(frozen=True)
class EscapeDirectionStats:
    """Norms of the escape directions E_i = p_i q_i^T of a config's landscape."""

    l1: tuple[float, ...]  # ||E_i||_1 (sum of |entries|)
    linf: tuple[float, ...]  # max |entry|
    row_weight: tuple[float, ...]  # sum_k s_k^2 p_ik^2 (kronecker row scales; 1 otherwise)


@lru_cache(maxsize=64)
def _direction_stats(m, n, r, basis, mixing, seed, zipf) -> EscapeDirectionStats:
    from saddle.config import Config
    from saddle.landscapes import landscape_arrays
    from saddle.noise import kronecker_row_scales

    rows = kronecker_row_scales(m, zipf) ** 2 if zipf is not None else np.ones(m)
    if basis == "coherent":
        return EscapeDirectionStats(
            l1=(1.0,) * r, linf=(1.0,) * r, row_weight=tuple(float(rows[i]) for i in range(r))
        )
    cfg = Config.from_dict(
        m=m, n=n, escape_rank=r, basis=basis, mixing=mixing, landscape_seed=seed, noise="none"
    )
    arrs = landscape_arrays(cfg)
    P, Q = arrs["P"], arrs["Q"]
    l1, linf, rw = [], [], []
    for i in range(r):
        p, q = P[:, i], Q[:, i]
        l1.append(float(np.abs(p).sum() * np.abs(q).sum()))
        linf.append(float(np.abs(p).max() * np.abs(q).max()))
        rw.append(float(np.sum(rows * p * p)))
    return EscapeDirectionStats(tuple(l1), tuple(linf), tuple(rw))


def escape_direction_stats(config) -> EscapeDirectionStats:
    """||E_i||_1, ||E_i||_inf and the Kronecker row weight of each escape direction."""
    zipf = config.noise_zipf if config.noise == "kronecker" else None
    return _direction_stats(
        config.m, config.n, config.escape_rank, config.basis, config.mixing,
        config.landscape_seed, zipf,
    )


@dataclass(frozen=True)
class NoiseFacts:
    """The facts about one config's noise model that the bounds use."""

    kind: str
    m: int
    n: int
    sigma: float
    rank: int
    row_scale_max: float  # kronecker: max_i s_i; 1 otherwise
    e_variance: tuple[float, ...]  # Var <Xi, E_i>, i < r
    entry_std: float  # root-mean-square per-entry standard deviation
    df: float | None

    @property
    def gaussian_along_e(self) -> bool:
        return self.kind in GAUSSIAN_ALONG_E

    @property
    def has_tail_bound(self) -> bool:
        """Whether sub-Gaussian norm bounds exist (all but heavy-tailed student_t)."""
        return self.kind != "student_t"

    # ---- one draw ---------------------------------------------------------------------------
    def typical_spectral_norm(self) -> float:
        """The large-(m, n) spectral norm of one draw of Xi."""
        m, n, s = self.m, self.n, self.sigma
        if self.kind == "none":
            return 0.0
        if self.kind in ("isotropic", "student_t"):
            return s * (math.sqrt(m) + math.sqrt(n))
        if self.kind == "opnorm":
            return s
        if self.kind == "lowrank":
            k = self.rank
            return s * (1 + math.sqrt(k / m)) * (1 + math.sqrt(k / n))
        if self.kind == "kronecker":
            return s * (self.row_scale_max * math.sqrt(n) + math.sqrt(m))
        raise ValueError(f"noise: unknown kind {self.kind!r}")

    # ---- filtered sums sum_k w_k Xi_k ---------------------------------------------------
    def spectral_bound(self, wnorm: float, wsum: float, wmax: float, u: float) -> float:
        """||sum_k w_k Xi_k||_2 <= this, except with probability events * exp(-u^2/2).

        ``wnorm`` = ||w||_2, ``wsum`` = sum |w_k|, ``wmax`` = max |w_k|, ``u`` >= 0.
        """
        m, n, s = self.m, self.n, self.sigma
        if self.kind == "none" or wsum == 0:
            return 0.0
        if self.kind == "isotropic":
            return s * wnorm * (math.sqrt(m) + math.sqrt(n) + u)
        if self.kind == "opnorm":
            return s * wnorm * (1 + u / (math.sqrt(m) + math.sqrt(n)))
        if self.kind == "kronecker":
            smax = self.row_scale_max
            return s * wnorm * (smax * math.sqrt(n) + math.sqrt(m) + smax * u)
        if self.kind == "lowrank":
            k = self.rank
            a = math.sqrt(m * wmax) + math.sqrt(k * wsum) + math.sqrt(wmax) * u
            b = math.sqrt(n * wmax) + math.sqrt(k * wsum) + math.sqrt(wmax) * u
            return s * a * b / math.sqrt(m * n)
        return math.inf

    def frobenius_bound(self, wnorm: float, wsum: float, wmax: float, u: float) -> float:
        """||sum_k w_k Xi_k||_F <= this, except with probability events * exp(-u^2/2)."""
        m, n, s = self.m, self.n, self.sigma
        if self.kind == "none" or wsum == 0:
            return 0.0
        if self.kind == "isotropic":
            return s * wnorm * (math.sqrt(m * n) + u)
        if self.kind == "opnorm":
            return s * wnorm * (math.sqrt(m * n) + u) / (math.sqrt(m) + math.sqrt(n))
        if self.kind == "kronecker":
            return s * wnorm * (math.sqrt(m * n) + self.row_scale_max * u)
        if self.kind == "lowrank":
            # ||A~ B~^T||_F <= ||A~||_F ||B~||_2 with A~ = [sqrt(w_k) A_k].
            k = self.rank
            a = math.sqrt(m * k * wsum) + math.sqrt(wmax) * u
            b = math.sqrt(n * wmax) + math.sqrt(k * wsum) + math.sqrt(wmax) * u
            return s * a * b / math.sqrt(m * n)
        return math.inf

    # Events per step that the bounds above union over (spectral + Frobenius, two factors
    # each for lowrank).
    events_per_step: int = 4


def noise_facts(config) -> NoiseFacts:
    """The :class:`NoiseFacts` of a config."""
    from saddle.noise import kronecker_row_scales

    m, n, kind = config.m, config.n, config.noise
    sigma = 0.0 if config.sigma is None or kind == "none" else float(config.sigma)
    rank = config.noise_rank or 1
    smax = 1.0
    r = config.escape_rank
    if kind == "none":
        ev = (0.0,) * r
        entry = 0.0
    elif kind == "isotropic":
        ev, entry = (sigma**2,) * r, sigma
    elif kind == "opnorm":
        c = sigma / (math.sqrt(m) + math.sqrt(n))
        ev, entry = (c**2,) * r, c
    elif kind == "lowrank":
        ev = (sigma**2 * rank / (m * n),) * r
        entry = sigma * math.sqrt(rank / (m * n))
    elif kind == "kronecker":
        smax = float(kronecker_row_scales(m, config.noise_zipf).max())
        stats = escape_direction_stats(config)
        ev = tuple(sigma**2 * w for w in stats.row_weight)
        entry = sigma
    elif kind == "student_t":
        df = config.noise_df
        var = sigma**2 if df > 2 else math.inf
        ev, entry = (var,) * r, math.sqrt(var)
    else:  # pragma: no cover - Config validates the kind
        raise ValueError(f"noise: unknown kind {kind!r}")
    return NoiseFacts(
        kind=kind, m=m, n=n, sigma=sigma, rank=rank, row_scale_max=smax, e_variance=ev,
        entry_std=entry, df=config.noise_df,
    )
