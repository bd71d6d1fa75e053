r"""SGD's median escape time as the exact first passage of the scalar escape recursion.

For plain SGD (momentum 0, no weight decay) at quartic 0 with one escape mode, the gradient
along E = p q^T is exactly -gamma a + xi_t with a = <E, W - W*> and xi_t = <E, Xi_t>: the
quadratic landscape is diagonal in the coordinates C = P^T (W - W*) Q, so C_00 = a sees no
other coordinate. Hence, with g = 1 + eta gamma,

    a_{t+1} = g a_t - eta xi_t,    a_0 = init_escape,

exactly, and the escape time (criterion ``projection``) is the first t with |a_t| >= R.
The bulk enters only through whether the run survives (divergence stops it): with noise on
the bulk that needs eta lambda_max < 2. The low-rank noise turned fully onto E (noise_rank
1, noise_coherence 1) puts nothing on the bulk: each draw is Xi_t = eps_t (sigma/sqrt(mn))
||A_t|| ||B_t|| E (``saddle.noise.lowrank``: the rotation turns A's only column onto +-p
and B's onto +-q, norms kept), so a bulk started at W* stays there whatever eta lambda is,
up to rounding: the draw's off-E part is of the order of the dtype's epsilon times |xi|,
and an unstable bulk mode amplifies it by |1 - eta lambda_max| a step. The assumption
``quiet_bulk`` asks that this residual needs at least three estimated median escape times
to reach the radius (else the run diverges first, as measured at 16^2 with gamma = 0.01,
eta = 2.26).

**Why a Monte Carlo.** The law of a_t is a convolution power of the step law. For Gaussian
xi the asymptotic law (``sgd_escape_mean``) is accurate for R >> s = eta sigma_E /
sqrt(g^2 - 1); in the regime map's low-rank cells R ~ s (eta up to 2.26, sigma 0.05: R/s
between 1.5 and 9), so the escape happens within a few steps of the noise's own scale, the
overshoot and the discreteness of t matter, and xi is nearly a +-sigma coin
(chi_m chi_n/sqrt(mn) -> 1): no closed form covers that. The median is instead computed
from the recursion itself, sampled exactly:

- lowrank turned onto E (rank 1, coherence 1): xi = eps sigma sqrt(X_m X_n/(mn)), eps a
  fair sign, X_k ~ chi-square(k), all independent (variance sigma^2, ``noise_facts``);
- Gaussian along E (isotropic, opnorm, kronecker): xi ~ N(0, sigma_E^2), sigma_E^2 =
  ``noise_facts(config).e_variance[0]``.

Up to 2,000 paths from a seed derived from the scalar parameters, advanced in blocks of k
steps with a_{t+j} = g^j (a_t - eta sum_{i <= j} g^{-i} xi_{t+i}) (k <= 128 with
g^k <= 10^6), until half of them have passed; the estimate is the middle passage time (the
sample median, as the Kaplan-Meier median of uncensored times). Its Monte Carlo error is
about 1.25 sd(tau)/sqrt(paths), 3% of sd(tau) at 2,000. A long escape takes fewer paths (at
least 400; ``path_count``): its sd/median ~ 1.1/ln(R/s) is small. None when the median is
not reached within 2 max_steps (the cap). The value is cached by the scalar parameters
(law, eta, gamma, R, a_0, cap), so the seeds and landscape draws of one cell cost one
evaluation, at most about 0.3 s (400 paths to the cap; 60 ms at the map's longest
low-rank cell, 280 steps).

What is approximated: nothing in the dynamics (the recursion is exact under the
assumptions); the value is a sample median, hence an estimate.
"""

from __future__ import annotations

import math
import zlib
from functools import lru_cache

import numpy as np
import sympy as sp

from ..noise.lowrank import LowRank
from ._core import Assumption, Result
from .diffusive import _bulk_eigenvalues
from .noise_facts import noise_facts
from .sgd import SGD

__all__ = ["SGD_PASSAGE", "passage_median", "passage_times", "path_count", "sample_xi",
           "noise_law"]

PATHS = 2000
MIN_PATHS = 400
WORK = 1_000_000  # path-steps one evaluation aims at (about 0.1 s)
CAP_FACTOR = 2  # the Monte Carlo stops at CAP_FACTOR * max_steps


def _aligned_lowrank(c) -> bool:
    return (c.noise == LowRank.name and (c.noise_coherence or 0.0) == 1.0
            and (c.noise_rank or 1) == 1)


def noise_law(c) -> tuple | None:
    """The law of xi = <Xi, E> as a hashable key: ("lowrank_e", sigma, m, n) for low-rank
    noise turned onto E, ("gauss", sigma_E) for a Gaussian model; None otherwise."""
    sigma = float(c.sigma or 0.0)
    if sigma <= 0:
        return None
    if _aligned_lowrank(c):
        return ("lowrank_e", sigma, int(c.m), int(c.n))
    if noise_facts(c).gaussian_along_e:  # isotropic, opnorm, kronecker
        var = float(noise_facts(c).e_variance[0])
        return ("gauss", math.sqrt(var)) if var > 0 else None
    return None


def sample_xi(law: tuple, rng: np.random.Generator, shape) -> np.ndarray:
    """Draws of xi = <Xi, E> from a :func:`noise_law` key."""
    if law[0] == "gauss":
        return law[1] * rng.standard_normal(shape)
    _, sigma, m, n = law
    half = np.array([m / 2, n / 2]).reshape((2,) + (1,) * len(shape))
    gam = rng.standard_gamma(half, size=(2, *shape))  # chi-square(k) / 2 = Gamma(k/2)
    mag = np.sqrt(gam[0] * gam[1] * (4.0 / (m * n)))
    return np.where(rng.random(shape) < 0.5, -sigma, sigma) * mag


def _block(g: float) -> int:
    """Steps per block: g^k <= 10^6 keeps the block's weights g^{-j} well conditioned."""
    if g <= 1:
        return 128
    return max(1, min(128, int(math.log(1e6) / math.log(g))))


def passage_times(law: tuple, eta: float, gamma: float, radius: float, a0: float, cap: int,
                  paths: int = PATHS, stop: int | None = None, seed: int = 0) -> np.ndarray:
    """First t with |a_t| >= radius for ``paths`` samples of a_{t+1} = (1 + eta gamma) a_t -
    eta xi_t (inf where not within ``cap`` steps); the sampling stops early once ``stop``
    paths have passed (the later ones are then left inf)."""
    rng = np.random.default_rng(seed)
    g = 1.0 + eta * gamma
    k = _block(g)
    powers = g ** np.arange(1, k + 1)
    out = np.full(paths, np.inf)
    if abs(a0) >= radius:
        return np.zeros(paths)
    idx = np.arange(paths)
    a = np.full(paths, float(a0))
    t, done, stop = 0, 0, paths if stop is None else stop
    while t < cap and done < stop and a.size:
        j = min(k, cap - t)
        incr = np.cumsum(sample_xi(law, rng, (a.size, j)) / powers[:j], axis=1)
        traj = (a[:, None] - eta * incr) * powers[:j]
        hit = np.abs(traj) >= radius
        passed = hit.any(axis=1)
        out[idx[passed]] = t + 1 + np.argmax(hit[passed], axis=1)
        done += int(passed.sum())
        a, idx = traj[~passed, -1], idx[~passed]
        t += j
    return out


@lru_cache(maxsize=512)
def passage_median(law: tuple, eta: float, gamma: float, radius: float, a0: float,
                   cap: int, paths: int = PATHS) -> float | None:
    """The median of :func:`passage_times` (seeded by the arguments), sampled until half
    the paths have passed; None when fewer than half pass within ``cap`` steps."""
    seed = zlib.crc32(repr((law, eta, gamma, radius, a0, cap, paths)).encode())
    need = (paths + 1) // 2
    times = passage_times(law, eta, gamma, radius, a0, cap, paths, stop=need, seed=seed)
    value = float(np.sort(times)[need - 1])
    return value if math.isfinite(value) else None


def path_count(law: tuple, eta: float, gamma: float, radius: float, cap: int) -> int:
    """PATHS, or fewer (at least MIN_PATHS) when the Gaussian law's guess of the escape
    time, ln(R/s)/ln g (gamma = 0: (R/(eta sigma_E))^2), makes PATHS x 2 guess exceed WORK.
    A long escape's median has a small relative spread (sd/median ~ 1.1/ln(R/s)), so
    fewer paths keep its relative Monte Carlo error near 1%."""
    g = 1.0 + eta * gamma
    step = eta * law[1]  # both laws' standard deviation (lowrank: E chi_m^2 chi_n^2/(mn) = 1)
    if g > 1:
        s = step / math.sqrt(g * g - 1)
        guess = max(math.log(radius / s), 1.0) / math.log(g)
    else:
        guess = (radius / step) ** 2
    horizon = min(float(cap), 2 * guess)
    return int(min(PATHS, max(MIN_PATHS, WORK // max(horizon, 1.0))))


def _cap(c) -> int:
    return CAP_FACTOR * int(c.max_steps)


def _median(c) -> float | None:
    law = noise_law(c)
    if law is None or c.escape != "projection" or c.radius is None or not c.learning_rate:
        return None
    eta, gamma, radius = float(c.learning_rate), float(c.gamma), float(c.radius)
    paths = path_count(law, eta, gamma, radius, _cap(c))
    return passage_median(law, eta, gamma, radius, abs(float(c.init_escape or 0.0)), _cap(c),
                          paths)


def _params(c) -> dict[str, float]:
    if noise_law(c) is None:
        raise ValueError("no sampled law for <Xi, E> (see the assumption sampled_noise)")
    value = _median(c)
    if value is None:
        raise ValueError("no projection radius, or the median is not reached within the cap")
    return {"T_MC": value}


@lru_cache(maxsize=256)
def _top_bulk(key) -> float:
    return float(np.max(_bulk_eigenvalues(_Key(*key))))


class _Key:
    """The fields of a config that fix its bulk spectrum (hashable through a tuple)."""

    def __init__(self, m, n, escape_rank, bulk, bulk_scale, bulk_ratio, bulk_tail):
        self.m, self.n, self.escape_rank = m, n, escape_rank
        self.bulk, self.bulk_scale = bulk, bulk_scale
        self.bulk_ratio, self.bulk_tail = bulk_ratio, bulk_tail


def top_bulk(c) -> float:
    return _top_bulk((c.m, c.n, c.escape_rank, c.bulk, c.bulk_scale, c.bulk_ratio,
                      c.bulk_tail))


def _quiet_bulk(c) -> bool:
    """eta lambda_max < 2, or (noise with no bulk part) the rounding residual eps sigma eta,
    amplified by |1 - eta lambda_max| a step, reaches R only after 3 estimated medians."""
    rho = abs(1.0 - c.learning_rate * top_bulk(c))
    if rho < 1:
        return True
    if not _aligned_lowrank(c):
        return False
    value = _median(c)
    if value is None:
        return False
    seed = np.finfo(np.dtype(c.dtype)).eps * float(c.sigma) * c.learning_rate
    if rho == 1:
        return True
    return math.log(c.radius / seed) / math.log(rho) >= 3 * value


ASSUMPTIONS = (
    Assumption(SGD, "plain SGD (momentum 0)", lambda c: c.optimizer == SGD and not c.momentum),
    Assumption("rank_one", "escape_rank = 1", lambda c: c.escape_rank == 1),
    Assumption("no_quartic", "quartic = 0", lambda c: c.quartic == 0),
    Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
    Assumption("saddle_init", "init = saddle (a_0 = init_escape, any value)",
               lambda c: c.init == "saddle"),
    Assumption("projection", "escape criterion projection", lambda c: c.escape == "projection"),
    Assumption("sampled_noise", "<Xi, E> iid with a law sampled here: Gaussian (isotropic, "
               "opnorm, kronecker; variance from noise_facts) or lowrank turned onto E "
               "(noise_rank 1, noise_coherence 1: +-sigma chi_m chi_n/sqrt(mn)); sigma > 0",
               lambda c: noise_law(c) is not None),
    Assumption("quiet_bulk", "a decoupled bulk that does not stop the run: eta lambda_max < 2, "
               "or noise with no bulk part (lowrank onto E) whose rounding residual, grown by "
               "|1 - eta lambda_max| a step, needs 3 estimated medians to reach R", _quiet_bulk),
    Assumption("budget", "max_steps >= 2 x the estimate (the median is observed)",
               lambda c: c.max_steps >= 2 * (_median(c) or math.inf)),
)

T_MC = sp.Symbol("T_MC", positive=True)

SGD_PASSAGE = Result(
    name="sgd_first_passage_median",
    title="SGD median escape time: exact first passage of the scalar escape recursion "
    "(Monte Carlo)",
    quantity="escape_time",
    kind="estimate",
    optimizer=SGD,
    lhs=r"\operatorname{med}\,\min\{t : |a_t| \ge R\}",
    expr=T_MC,
    assumptions=ASSUMPTIONS,
    params=_params,
    page="sgd_passage",
    d_dependence="through the step law of xi and the protocol's lr only (lowrank onto E: "
    "sigma chi_m chi_n/sqrt(mn), nearly +-sigma; the map's D-dependence is the lr's)",
    summary="T_MC = sample median over up to 2,000 seeded paths of a_{t+1} = (1 + eta gamma) "
    "a_t - eta xi_t, xi drawn from the noise model's exact law along E; cap 2 max_steps",
)
