r"""AdamW's speed limit: how far one step can move the escape coordinates, for any gradient.

**The per-entry bound (Cauchy-Schwarz on the moment weights).** With bias correction the
moments are weighted averages of the gradients seen so far: at step t,
m-hat_t = sum_i w_i g_i and v-hat_t = sum_i u_i g_i^2 with

    w_i = (1 - beta_1) beta_1^{t-i}/(1 - beta_1^t),  u_i = (1 - beta_2) beta_2^{t-i}/(1 - beta_2^t).

Writing w_i g_i = (w_i/sqrt(u_i)) (sqrt(u_i) g_i), the Cauchy-Schwarz inequality gives
|m-hat_t| <= C_t sqrt(v-hat_t), so every entry of the step eta m-hat/(sqrt(v-hat) + eps) is
at most eta C_t in absolute value, whatever the gradients were, with

    C_t^2 = sum_i w_i^2/u_i
          = (1 - beta_1)^2 (1 - beta_2^t) (1 - rho^t) / ((1 - beta_1^t)^2 (1 - beta_2) (1 - rho)),
    rho = beta_1^2/beta_2 < 1.

C_1 = 1 and C_t grows to C_inf = (1 - beta_1)/sqrt((1 - beta_2)(1 - rho)) = 7.27 at the
defaults (0.9, 0.999). (The textbook bound (1 - beta_1)/sqrt(1 - beta_2) = 3.16 is for the
moments without bias correction and beta_1 < sqrt(beta_2); this one is for the update the lab
runs.)

**From entries to the escape coordinate.** a_t = <E, W_t - W*> with E = p q^T, so one step
changes a by at most sum_ij |E_ij| eta C_t = eta C_t ||E||_1 (||E||_1 = ||p||_1 ||q||_1: 1 on
the coherent basis, about (2/pi) sqrt(D) on a dense one). Decoupled weight decay with
W* = 0 multiplies a by 1 - eta lambda_wd, which only shrinks |a|. Hence, from |a_0|,

    tau >= min{ t : eta ||E||_1 (C_1 + ... + C_t) >= R - |a_0| }

(rank r: ||A|| moves at most eta C_t (sum_i ||E_i||_1^2)^{1/2} a step). It is a proved lower
bound for every landscape, noise model, quartic cap and bulk: a coverage result, loose by
construction where the escape is noise-limited (coherent basis: AdamW moves a by about eta a
step only in its sign-like phase), and the right scale where every entry's step is sign-like
and aligned with E: on a dense basis a step of eta sign(E) moves a by eta ||E||_1 ~ eta
sqrt(D), the D^{-1/2} gain measured with noise turned onto the escape vectors.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy as sp

from ..optimizers import AdamWSpec
from ._core import Assumption, Result
from .noise_facts import escape_direction_stats

ADAMW = AdamWSpec.name

__all__ = ["ADAMW_SPEED_LIMIT", "step_factor", "speed_limit_steps"]

STEP_CAP = 10**6  # the bound is computed up to this many steps (then: at least the cap)


def step_factor(t, b1: float, b2: float) -> np.ndarray:
    """C_t: the largest |m-hat_t|/sqrt(v-hat_t) any gradient sequence can give at step t."""
    t = np.asarray(t, float)
    rho = b1 * b1 / b2
    num = (1 - b1) ** 2 * (1 - b2**t) * (1 - rho**t)
    return np.sqrt(num / ((1 - b1**t) ** 2 * (1 - b2) * (1 - rho)))


@lru_cache(maxsize=4096)
def speed_limit_steps(distance: float, step: float, b1: float, b2: float) -> int:
    """The fewest steps whose largest possible moves, step * C_t each, cover ``distance``."""
    if distance <= 0:
        return 0
    done, t0, chunk = 0.0, 1, 4096
    while t0 <= STEP_CAP:
        c = np.cumsum(step * step_factor(np.arange(t0, t0 + chunk), b1, b2)) + done
        hit = np.nonzero(c >= distance)[0]
        if hit.size:
            return int(t0 + hit[0])
        done, t0, chunk = float(c[-1]), t0 + chunk, chunk * 2
    return STEP_CAP


def _params(c) -> dict[str, float]:
    stats = escape_direction_stats(c)
    reach = math.sqrt(sum(x * x for x in stats.l1))
    dist = c.radius - abs(c.init_escape or 0.0)
    return {"N": speed_limit_steps(dist, c.learning_rate * reach, c.b1, c.b2)}


_N = sp.Symbol("N", positive=True)

ADAMW_SPEED_LIMIT = Result(
    name="adamw_speed_limit",
    title="AdamW: the escape coordinate moves at most eta C_t ||E||_1 a step",
    quantity="escape_time",
    kind="lower",
    optimizer=ADAMW,
    lhs=sp.Symbol("tau", positive=True),
    expr=_N,
    definitions=(),
    assumptions=(
        Assumption(ADAMW, "optimizer adamw", lambda c: c.optimizer == ADAMW),
        Assumption("moments", "beta_1^2 < beta_2 (the moment weights' Cauchy-Schwarz sum "
                   "converges)", lambda c: c.b1 * c.b1 < c.b2),
        Assumption("decay_shrinks", "weight_decay = 0, or W* = 0 (decay then only shrinks a)",
                   lambda c: not c.weight_decay or c.saddle_point == "zero"),
        Assumption("saddle_init", "init = saddle (a_0 = init_escape)",
                   lambda c: c.init == "saddle"),
        Assumption("projection", "escape criterion projection (||A|| >= R)",
                   lambda c: c.escape == "projection"),
    ),
    params=_params,
    page="speed_limit",
    d_dependence="through ||E||_1 only: 1 on the coherent basis (no D), about (2/pi) sqrt(D) "
    "on a dense basis (the bound falls like D^{-1/2})",
    summary="proved for any gradient, noise, bulk and quartic cap; N = min{t: eta ||E||_1 "
    "sum_{s<=t} C_s >= R - |a_0|}",
)
