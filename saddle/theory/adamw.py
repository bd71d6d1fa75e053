r"""AdamW escape-time prediction for the linear unstable mode (coherent basis).

In the coherent basis the escape coordinate a is one entry of W and AdamW is element-wise,
so a follows its own scalar AdamW recursion with gradient -gamma a + xi, xi ~ N(0, sigma_E^2).

**Noise-dominated phase** (gamma |a| << sigma_E). The second moment v settles at
sigma_E^2 (v-hat is bias corrected, so from the first steps on), and the first moment is a
linear filter of unit DC gain. For a mode that grows slowly compared with 1/(1 - beta_1), AdamW
is SGD with learning rate eta/sigma_E:

    a_{t+1} ~ g a_t - (eta/sigma_E) xi_t,   g = 1 + eta gamma/sigma_E,

so the SGD law applies with sigma_E -> 1 in the noise term: Z ~ N(a_0, s_A^2),
s_A^2 = eta^2/(g^2 - 1), and the phase ends at a_* = sigma_E/gamma after

    T_1 = (ln(min(R, a_*)/s_A) - ell(lambda)/2)/ln g,   lambda = a_0^2/s_A^2.

**Signal-dominated phase** (gamma |a| >> sigma_E). The step tends to sign-like
eta m-hat/sqrt(v-hat); v-hat lags the growing gradient (beta_2 memory), so steps exceed eta for a
while. T_2 is computed by running the noise-free scalar AdamW recursion from a_* with its
moments initialized at the phase-1 values (v = sigma_E^2, m = gamma a_*), a short deterministic
loop.

Prediction: tau ~ T_1 + T_2 (an estimate; tests check it within a factor against simulation).

Where D enters (the escape coordinate's own dynamics are D-free in the coherent basis):

- isotropic noise, any protocol: sigma_E = sigma, no D anywhere.
- opnorm noise: sigma_E = sigma/(sqrt m + sqrt n). At a *fixed* lr the effective SGD rate
  eta/sigma_E grows like D^{1/4} (faster escape) but so does the bulk's effective step
  eta lambda/sigma_E, which must stay < 2: the stability edge is
  eta < 2 sigma/(lambda (sqrt m + sqrt n)), a D^{-1/4} shrinkage. Under the
  ``stability_edge`` (and ``tuned``) protocol the growth factor eta gamma/sigma_E ~ 2 gamma/lambda
  is D-free; only ln(a_*/s_A) changes, by O(ln D).
- incoherent basis: each entry sees the signal gamma a |p_i q_j| ~ gamma a/sqrt(D) against
  noise sigma, so the noise-dominated phase lasts until a ~ sigma sqrt(D)/gamma: a D^{1/2}
  longer phase 1 if R exceeds sigma/gamma (phase 2's sign-like speed-up is delayed).
"""

from __future__ import annotations

import math

import sympy as sp

from ..optimizers import AdamWSpec
from ._core import FUNCTIONS, Assumption, Result  # noqa: F401  (FUNCTIONS holds ell)
from .noise_facts import noise_facts
from .sgd import ell_f

ADAMW = AdamWSpec.name

__all__ = ["ADAMW_ESCAPE", "ADAMW_STABILITY_LR", "adamw_phase2", "adamw_phases"]

eta, gam, sig, R, a0, T2 = sp.symbols("eta gamma sigma_E R a_0 T_2", positive=True)
g, sA, lam, astar = sp.symbols("g s_A lambda a_*", positive=True)

EXPR = (sp.log(sp.Min(R, astar) / sA) - ell_f(lam) / 2) / sp.log(g) + T2
DEFS = (
    (g, 1 + eta * gam / sig),
    (sA, eta / sp.sqrt(g**2 - 1)),
    (lam, a0**2 / sA**2),
    (astar, sig / gam),
)


def adamw_phase2(a_start, radius, lr, gamma, sigma_e, b1, b2, eps, t_start, cap=10**6) -> int:
    """Steps of the noise-free scalar AdamW recursion from a_start to radius."""
    a = a_start
    m = gamma * a_start
    v = sigma_e**2
    t = max(int(t_start), 1)
    # moments as if accumulated for t steps (bias-corrected values m, v)
    m_raw, v_raw = m * (1 - b1**t), v * (1 - b2**t)
    k = 0
    while a < radius:
        t += 1
        k += 1
        grad = -gamma * a
        m_raw = b1 * m_raw + (1 - b1) * grad
        v_raw = b2 * v_raw + (1 - b2) * grad * grad
        mh, vh = m_raw / (1 - b1**t), v_raw / (1 - b2**t)
        a = a - lr * mh / (math.sqrt(vh) + eps)
        if k > cap:
            return cap
    return k


def adamw_phases(c) -> tuple[float, float]:
    p = _params(c, with_t2=False)
    gg = 1 + p["eta"] * p["gamma"] / p["sigma_E"]
    s_a = p["eta"] / math.sqrt(gg * gg - 1)
    lam_v = (p["a_0"] / s_a) ** 2
    a_st = p["sigma_E"] / p["gamma"]
    t1 = (math.log(min(p["R"], a_st) / s_a) - FUNCTIONS["ell"](lam_v) / 2) / math.log(gg)
    t1 = max(t1, 0.0)
    t2 = 0.0
    if p["R"] > a_st:
        t2 = adamw_phase2(a_st, p["R"], p["eta"], p["gamma"], p["sigma_E"], c.b1, c.b2, c.eps,
                          t1)
    return t1, float(t2)


def _params(c, with_t2=True):
    facts = noise_facts(c)
    sig_e = math.sqrt(facts.e_variance[0])
    if sig_e == 0:
        raise ValueError("no noise")
    if c.gamma <= 0:
        raise ValueError("gamma = 0: a diffusion, see theory.diffusive")
    out = {"eta": c.learning_rate, "gamma": c.gamma, "sigma_E": sig_e, "R": c.radius,
           "a_0": abs(c.init_escape) if c.init_escape else 1e-300}
    if with_t2:
        out["T_2"] = adamw_phases(c)[1]
    return out


_ASSUME = (
    Assumption(ADAMW, "optimizer adamw", lambda c: c.optimizer == ADAMW),
    Assumption("coherent", "coherent basis (the escape coordinate is one entry)",
               lambda c: c.basis == "coherent"),
    Assumption("rank_one", "escape_rank = 1", lambda c: c.escape_rank == 1),
    Assumption("unstable", "gamma > 0 (a negative-curvature escape mode; gamma = 0 is "
               "diffusion, outside this estimate)", lambda c: c.gamma > 0),
    Assumption("no_quartic", "quartic = 0", lambda c: c.quartic == 0),
    Assumption("no_decay", "weight_decay = 0", lambda c: not c.weight_decay),
    Assumption("saddle_init", "init = saddle", lambda c: c.init == "saddle"),
    Assumption("gaussian", "Gaussian noise along E", lambda c: noise_facts(c).gaussian_along_e
               and c.noise != "none"),
    Assumption("projection", "escape criterion projection", lambda c: c.escape == "projection"),
    Assumption("slow_mode", "eta gamma/sigma_E <= 0.1 (slow compared with the moments)",
               lambda c: c.learning_rate * c.gamma / math.sqrt(noise_facts(c).e_variance[0])
               <= 0.1),
)

ADAMW_ESCAPE = Result(
    name="adamw_escape_estimate",
    title="AdamW escape time: noise-dominated (preconditioned SGD) + signal-dominated phase",
    quantity="escape_time",
    kind="estimate",
    optimizer=ADAMW,
    lhs=r"\mathbb{E}\,\tau",
    expr=EXPR,
    definitions=DEFS,
    assumptions=_ASSUME,
    params=_params,
    page="adamw",
    d_dependence="isotropic: none; opnorm: sigma_E ~ D^{-1/4} speeds phase 1 at fixed lr but "
    "the stable lr shrinks like D^{-1/4}; incoherent basis: phase 1 lasts to a ~ sigma "
    "sqrt(D)/gamma",
    summary="T_2 from the noise-free scalar AdamW recursion",
)

lam_b = sp.Symbol("lambda_b", positive=True)
sig_entry = sp.Symbol("sigma_e", positive=True)

ADAMW_STABILITY_LR = Result(
    name="adamw_stability_lr",
    title="AdamW stability edge of the bulk in the noise-dominated regime",
    quantity="learning_rate",
    kind="estimate",
    optimizer=ADAMW,
    lhs=r"\eta_{\max}",
    expr=2 * sig_entry / lam_b,
    assumptions=(
        Assumption(ADAMW, "optimizer adamw", lambda c: c.optimizer == ADAMW),
        Assumption("noisy", "noise with a finite per-entry std",
                   lambda c: c.noise not in ("none",)),
    ),
    params=lambda c: {"sigma_e": noise_facts(c).entry_std, "lambda_b": c.bulk_scale},
    page="adamw",
    d_dependence="opnorm: sigma_e = sigma/(sqrt m + sqrt n), so eta_max ~ D^{-1/4}; "
    "isotropic: D-free",
    summary="bulk entries follow SGD with lr eta/sigma_e on curvature lambda_b",
)
