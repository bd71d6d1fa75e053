r"""The SGD and AdamW escape laws under non-Gaussian noise along E (a central limit theorem).

``sgd_escape_mean`` and ``adamw_escape_estimate`` assume <Xi, E> Gaussian. Their laws use
the noise only through Z = a_0 + sum_{t >= 1} g^{-t} eta xi_t, the limit of a_t g^{-t}
(``sgd_law``): the escape time is ln(R/|Z|)/ln g, and E ln|Z| = ln s + ell(lambda)/2 when Z
is Gaussian. For xi_t independent and identically distributed with mean 0 and finite
variance sigma_E^2 (the gradient noise is drawn afresh every step), Z is a weighted sum whose
weights w_t = g^{-t} satisfy max_t w_t^2 / sum_t w_t^2 = 1 - g^{-2} -> 0 as eta gamma -> 0:
Lindeberg's condition holds and (Z - a_0)/s -> N(0, 1). The number of steps Z effectively
averages is

    N = (sum w^2)^2 / sum w^4 = (1 + g^{-2})/(1 - g^{-2}) ~ 1/(eta gamma),

so the Gaussian law applies, with the noise's own variance along E, when N >> 1
(assumption ``many_steps``: N >= 10). ell enters through E ln|Z|, which is sensitive to the
density of Z near 0: the CLT's error there is O(N^{-1/2}) (Berry-Esseen) for a finite third
moment and decays more slowly without one (Student-t with nu = 3 has none), hence an
estimate. For nu <= 2 the variance is infinite: Z is then in the domain of a stable law,
s is not defined, and ``finite_variance`` fails.

**Student-t entries** (noise ``student_t``, nu > 2, unit variance times sigma): on the
coherent basis <Xi, E> is one entry, a t(nu) variable of variance sigma^2: the law applies
with sigma_E = sigma. AdamW's v-hat averages squares of such entries; its mean is sigma^2
(used here), but for nu <= 4 the squares have infinite variance, so v-hat fluctuates (and
E v^{-1/2} > (E v)^{-1/2}: steps a little larger than the estimate's).

**Low-rank noise turned onto E** (``lowrank``, noise_coherence c = 1, rank k = 1): every
draw is exactly Xi_t = +-(sigma/sqrt(mn)) ||A_t|| ||B_t|| E_0 (``saddle.noise.lowrank``), so
the noise is a fresh, independent scalar along E each step, xi_t = sigma eps_t chi_m chi_n
/sqrt(mn) with a random sign eps_t: mean 0, variance sigma^2, nearly a +-sigma coin for large
m, n. It is not a persistent direction in time (a new sign every step), so the sum-of-iid
argument above holds; the bulk receives no noise at all and stays at W* under SGD and, on
the coherent basis, under AdamW. On a dense basis AdamW turns the rank-one noise into
sign(E)-shaped steps (v_ij = E_ij^2 x scalar), which move a by eta ||E||_1 ~ eta sqrt(D) and
push the bulk along sign(E) - ||E||_1 E: not covered here (``adamw_escape_clt`` keeps the
coherent assumption).
"""

from __future__ import annotations

import math

from . import adamw as _adamw
from . import sgd as _sgd
from ._core import Assumption, Result
from .adamw_incoherent import effective_steps
from .noise_facts import noise_facts

__all__ = ["SGD_CLT", "ADAMW_CLT"]


def _non_gaussian(c) -> bool:
    return c.noise != "none" and not noise_facts(c).gaussian_along_e


def _finite_variance(c) -> bool:
    var = noise_facts(c).e_variance[0]
    return math.isfinite(var) and var > 0


def _finite(params):
    """params, refusing an infinite noise variance (the law has no scale s then)."""

    def out(c):
        if not _finite_variance(c):
            raise ValueError("infinite or zero noise variance along E")
        return params(c)

    return out


def _sgd_g(c) -> float:
    return 1 + c.learning_rate * c.gamma


def _adamw_g(c) -> float:
    return 1 + c.learning_rate * c.gamma / math.sqrt(noise_facts(c).e_variance[0])


def _clt_assumptions(g_of) -> tuple[Assumption, ...]:
    return (
        Assumption("non_gaussian", "<Xi, E> not Gaussian (student_t, lowrank, minibatch; the "
                   "Gaussian result covers the others)", _non_gaussian),
        Assumption("finite_variance", "0 < Var <Xi, E> < infinity (student_t: nu > 2)",
                   _finite_variance),
        Assumption("iid_steps", "a fresh draw every step from a law that does not depend "
                   "on W or the past (excludes minibatch)", lambda c: c.noise != "minibatch"),
        Assumption("many_steps", "N = (1 + g^-2)/(1 - g^-2) >= 10 noise steps averaged by Z "
                   "(the CLT's sample size)", lambda c: effective_steps(g_of(c)) >= 10),
    )


def _swap_gaussian(assumptions, g_of, name) -> tuple[Assumption, ...]:
    """The Gaussian result's assumptions with ``gaussian`` replaced by the CLT's and
    ``budget`` judged on this result's own value."""
    out = []
    for a in assumptions:
        if a.name == "gaussian":
            out.extend(_clt_assumptions(g_of))
        elif a.name == "budget":
            out.append(Assumption("budget", "max_steps >= 3 x the estimate (little censoring)",
                                  lambda c: c.max_steps >= 3 * (_BY_NAME[name].evaluate(c)
                                                                or math.inf)))
        else:
            out.append(a)
    return tuple(out)


SGD_CLT = Result(
    name="sgd_escape_clt",
    title="SGD mean escape time, non-Gaussian noise along E (CLT over the escape phase)",
    quantity="escape_time",
    kind="estimate",
    optimizer=_sgd.SGD,
    lhs=r"\mathbb{E}\,\tau",
    expr=_sgd.MEAN_EXPR,
    definitions=_sgd.DEFS,
    assumptions=_swap_gaussian(_sgd.SGD_MEAN.assumptions, _sgd_g, "sgd_escape_clt"),
    params=_finite(_sgd._params),
    page="noise_clt",
    d_dependence="through sigma_E only (student_t: sigma; lowrank turned onto E: sigma)",
    summary="sgd_escape_mean's law with Var <Xi, E>, Gaussian in the limit by Lindeberg's CLT",
)

ADAMW_CLT = Result(
    name="adamw_escape_clt",
    title="AdamW escape time (coherent basis), non-Gaussian noise along E (CLT)",
    quantity="escape_time",
    kind="estimate",
    optimizer=_adamw.ADAMW,
    lhs=r"\mathbb{E}\,\tau",
    expr=_adamw.EXPR,
    definitions=_adamw.DEFS,
    assumptions=_swap_gaussian(_adamw.ADAMW_ESCAPE.assumptions, _adamw_g, "adamw_escape_clt"),
    params=_finite(_adamw._params),
    page="noise_clt",
    d_dependence="coherent basis: through sigma_E only (student_t, lowrank turned onto E: "
    "sigma)",
    summary="adamw_escape_estimate's phases with Var <Xi, E>; CLT over phase 1's ~N steps",
)

_BY_NAME = {r.name: r for r in (SGD_CLT, ADAMW_CLT)}
