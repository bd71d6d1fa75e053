r"""The two-layer linear network's saddle at the origin: plain SGD's time to the criterion.

f(W_1, W_2) = 1/2 ||W_2 W_1 - S||_F^2 (population loss, whitened inputs), teacher
S = s u v^T of rank one, hidden width h. For a unit vector e in R^h the pair
W_1 = a e v^T, W_2 = b u e^T carries the 2 x 2 Hessian [[0, -s], [-s, 0]] at the origin
(science.md section 1): x = (a + b)/sqrt 2 has curvature -s, y = (a - b)/sqrt 2 has +s,
and every other direction is flat. The mode's strength is c = u^T W_2 W_1 v = sum_j a_j b_j
= (|x|^2 - |y|^2)/2 over the h units, and the loss along the mode is c^2/2 - s c.

**Gradient descent on one mode (exact).** With a = b (the balanced line) the GD step is
a <- a (1 + eta (s - a^2)), so c <- c (1 + eta (s - c))^2: for c << s each step multiplies c
by (1 + eta s)^2, the discrete form of the flow dc/dt = 2 c (s - c) (Saxe, McClelland &
Ganguli 2014), whose solution c(t) = s / (1 + (s/c_0 - 1) e^{-2 s t}) crosses c* at
t = ln((s/c_0 - 1)/(s/c* - 1)) / (2 s). Off the balanced line the partner y shrinks by
|1 - eta s| a step (so it fades when eta s < 2), and a random start puts N(0, eps^2) on every
entry: the h coordinates x_j are iid N(0, eps^2), so c_0 = E|x|^2/2 = h eps^2/2 (plus
init_escape^2/2, the lab's convention, :func:`saddle.networks.initial_overlap`).

**The estimate.** Replacing the flow's rate 2 s by the map's per-step rate 2 ln(1 + eta s)
(exact while c << s; the flow is its eta -> 0 limit) and counting whole steps,

    tau ~ ceil( ln((s/c_0 - 1)/(s/c* - 1)) / (2 ln(1 + eta s)) ),

with c* the criterion's strength: loss (f <= -Delta) c* = s - sqrt(s^2 - 2 Delta), alignment
c* = A s, projection c* = R^2/2. The flow time divided by eta is shorter by the factor
ln(1 + eta s)/(eta s): 0.73 at eta s = 0.8, the rate of the stored matched_rms runs.

**What is approximated.** The saturation factor ln((s - c_0)/(s - c*)) is the flow's, not the
map's (small while c* << s: 0.05 at the networks experiment's Delta = 0.05); the y partners
are dropped from c (they shrink from the first step); |x|^2 is replaced by its mean (the
spread of ln chi^2_h / h is about sqrt(2/h)); minibatch noise (B fresh inputs a step) is
ignored. Its per-entry scale at the start, sigma_mb (saddle.networks.minibatch_entry_std),
kicks x by eta sigma_mb a step against the start's eps: below 0.3 eps (the stored
matched_rms runs: 0.14) the estimate met every stored median.
"""

from __future__ import annotations

import math

import sympy as sp

from ..landscapes.linear_network import LinearNetworkSpec
from ..noise.gaussian import NoNoise
from ..noise.minibatch import Minibatch
from ..optimizers import SGDSpec
from ._core import Assumption, Result

NETWORK = LinearNetworkSpec.name
SGD = SGDSpec.name
__all__ = ["overlap_start", "criterion_strength", "NETWORK_GD_ESCAPE"]


def overlap_start(c) -> float:
    """c_0 = (init_escape^2 + h init_scale^2)/2 (0 at an exact saddle start)."""
    eps = (c.init_scale or 0.0) if c.init == "random" else 0.0
    return 0.5 * ((c.init_escape or 0.0) ** 2 + c.width * eps * eps)


def criterion_strength(c) -> float:
    """c*: the mode strength at which the escape criterion is met along the mode."""
    s = c.teacher_scale
    if c.escape == "loss":
        if 2 * c.loss_drop >= s * s:
            raise ValueError("loss_drop beyond the mode's depth s^2/2")
        return s - math.sqrt(s * s - 2 * c.loss_drop)
    if c.escape == "alignment":
        return c.alignment * s
    return c.radius**2 / 2


def _minibatch_kick(c) -> float:
    """eta sigma_mb / eps: the start's minibatch noise kick per step against the start."""
    if c.noise == NoNoise.name:
        return 0.0
    if c.noise != Minibatch.name or c.init != "random" or not c.init_scale:
        return math.inf
    sig = LinearNetworkSpec().minibatch_entry_std(c)
    return c.learning_rate * sig / c.init_scale


def _params(c) -> dict[str, float]:
    if c.landscape != NETWORK:
        raise ValueError("needs a linear_network config")
    c0 = overlap_start(c)
    if c0 <= 0:
        raise ValueError("no start off the saddle: gradient descent never leaves")
    return {"s": c.teacher_scale, "eta": c.learning_rate, "c_0": c0,
            "c_*": criterion_strength(c)}


_s, _eta, _c0, _cs = sp.symbols("s eta c_0 c_*", positive=True)

NETWORK_GD_ESCAPE = Result(
    name="network_gd_escape",
    title="Two-layer linear network, plain SGD: the top mode's growth to the criterion",
    quantity="escape_time",
    kind="estimate",
    optimizer=SGD,
    lhs=sp.Symbol("tau", positive=True),
    expr=sp.ceiling(sp.log((_s / _c0 - 1) / (_s / _cs - 1)) / (2 * sp.log(1 + _eta * _s))),
    assumptions=(
        Assumption(NETWORK, "landscape linear_network (population loss, samples = 0)",
                   lambda c: c.landscape == NETWORK and not c.samples),
        Assumption(SGD, "plain SGD (momentum 0, no weight decay)",
                   lambda c: c.optimizer == SGD and not c.momentum and not c.weight_decay),
        Assumption("rank_one_teacher", "teacher_rank = 1 (one mode, s = teacher_scale)",
                   lambda c: c.teacher_rank == 1),
        Assumption("below_criterion", "0 < c_0 < c* < s (a small start, a reachable "
                   "criterion)", lambda c: 0 < overlap_start(c) < criterion_strength(c)
                   < c.teacher_scale),
        Assumption("stable_partners", "eta s < 2 (the +s partners y shrink by |1 - eta s|)",
                   lambda c: c.learning_rate * c.teacher_scale < 2),
        Assumption("small_kicks", "noise none, or minibatch with eta sigma_mb <= 0.3 eps "
                   "(the start's noise kicks small against the start)",
                   lambda c: _minibatch_kick(c) <= 0.3),
    ),
    params=_params,
    page="network",
    d_dependence="through c_0 = h eps^2/2 only (D = h (m + n)): at fixed eta the time falls "
    "by ln(4)/(2 ln(1 + eta s)) steps per 4 x width",
    summary="the map c <- c (1 + eta s)^2 of balanced gradient descent on the mode; the flow "
    "ln((s/c_0 - 1)/(s/c* - 1))/(2 s eta) is its eta -> 0 limit",
    landscape=NETWORK,
)
