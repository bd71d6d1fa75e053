"""The batched run loop: one ``lax.while_loop`` over a block of runs.

Timing convention: iteration i evaluates f, its gradient and the escape coordinates at
W_i (the iterate after i optimizer steps), checks the criteria for i >= 1, and, if the run
goes on and i < max_steps, takes step i + 1 with fresh noise. So the escape time is the
first t >= 1 whose iterate W_t meets the criterion, and each gradient is computed once.
The loop stops as soon as every run of the block has escaped or diverged, or the budget is
spent. A stopped run's results (status, stop step, loss, distance, signal-lost counts) are
frozen by masking; its iterate and optimizer state are not: they go on stepping, unread,
until the block ends (a trace row masks them itself). Masking them every step cost a
select and a copy of every state buffer, about 15% of a linear-network step at D = 4096.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..numerics import dtype_of
from ..reduce import tree_sum
from .output import CENSORED, DIVERGED, ESCAPED, RUNNING
from .problem import build_problem
from .step import RunState, StepKey, init_state, run_keys, step
from .structure import Structure
from .trace import TRACE_FIELDS, trace_row

__all__ = ["Carry", "programs"]


class Carry(NamedTuple):
    i: jax.Array
    W: Any
    opt_state: Any
    status: jax.Array
    stop: jax.Array
    loss: jax.Array
    dist: jax.Array
    counted: jax.Array  # steps whose update had a non-zero escape component
    lost: jax.Array  # ... of which rounding W + U changed that component by more than half
    f0: jax.Array  # f(W_0), the run's starting loss (set at iteration 0)


def _rounding_lost(intended, realized):
    """Whether adding an update moved the first escape coordinate by less than half, or more
    than one and a half times, what the update itself says (rounding of W + U at work)."""
    return (intended != 0) & (jnp.abs(realized - intended) > 0.5 * jnp.abs(intended))


def diverged_at(s, f, f0):
    """The divergence rule, checked before escape at every iterate (f(W*) = 0): f is
    non-finite, or f > divergence_factor * (|f(W_0)| + divergence_scale), or f > max_loss."""
    limit = s["divergence_factor"] * (jnp.abs(f0) + s["divergence_scale"])
    return ~jnp.isfinite(f) | (f > limit) | (f > s["max_loss"])


def _outcome(structure: Structure, s, i, max_steps, f, d, f0, align):
    """The status each run would have at iterate i (RUNNING if it goes on); ``align`` is
    the landscape's alignment at W_i (None unless the criterion is alignment)."""
    diverged = diverged_at(s, f, f0)
    if structure.escape == "projection":
        met = d >= s["radius"]
    elif structure.escape == "alignment":
        met = align >= s["alignment"]
    else:
        met = f <= -s["loss_drop"]
    escaped = met & (i >= 1) & ~diverged
    return jnp.where(
        diverged,
        DIVERGED,
        jnp.where(escaped, ESCAPED, jnp.where(i >= max_steps, CENSORED, RUNNING)),
    )


def _alignment(structure: Structure, shared, s, W):
    """Each run's landscape alignment at W (None unless the escape criterion is alignment)."""
    if structure.escape != "alignment":
        return None
    one = lambda sh, s1, w: build_problem(structure, sh, s1).landscape.alignment(w)
    return jax.vmap(one, in_axes=(None, 0, 0))(shared, s, W)


def _keys(structure: Structure, seeds):
    """(init keys, noise keys) from the (B, 3) uint32 rows (seed, stream id low, high)."""
    cond = seeds[:, 1:] if structure.noise_streams == "independent" else None
    return run_keys(seeds[:, 0], structure.rng, cond)


def _keep(go_on, new, old):
    mask = go_on.reshape(go_on.shape + (1,) * (new.ndim - 1))
    return jnp.where(mask, new, old)


def _frozen(go_on, new, old):
    """``new`` for the runs that go on, ``old`` for those that stop (a pytree, or None)."""
    if new is None:
        return None
    return jax.tree.map(lambda n, o: _keep(go_on, n, o), new, old)


def programs(structure: Structure, stride: int, points: int):
    """(init, advance): the un-jitted batched run, split so that it can stop at chunk ends.

    ``advance(shared, scalars, seeds, max_steps, carry, until)`` iterates while some run is
    running and i < until; with ``stride`` > 0 it also returns the trace rows of the
    iterates t = i with t % stride == 0 in this chunk, ``points`` slots per run."""
    dtype = dtype_of(structure.dtype)
    width = structure.escape_rank + len(TRACE_FIELDS)

    def init_one(shared, s, k_init):
        state = init_state(k_init, build_problem(structure, shared, s), s["init_scale"],
                           s["init_escape"])
        return state.params, state.opt_state

    def step_one(shared, s, k_noise, t, W, opt_state):
        new, info = step(StepKey(k_noise, t), RunState(W, opt_state),
                         build_problem(structure, shared, s))
        return new.params, new.opt_state, info

    def trace_one(shared, s, W, W_new, mu, a, f):
        return trace_row(build_problem(structure, shared, s).landscape, W, W_new, mu, a, f)

    def cast(scalars):
        return {k: v.astype(dtype) for k, v in scalars.items()}

    def init(shared, scalars, seeds, max_steps):
        s = cast(scalars)
        k_init, _ = _keys(structure, seeds)
        B = seeds.shape[0]
        W, opt_state = jax.vmap(init_one, in_axes=(None, 0, 0))(shared, s, k_init)
        zeros = jnp.zeros((B,), dtype)
        izeros = jnp.zeros((B,), jnp.int32)
        return Carry(jnp.asarray(0, jnp.int32), W, opt_state, izeros, max_steps, zeros, zeros,
                     izeros, izeros, zeros)

    def body(shared, s, k_noise, max_steps, start, state):
        c, buf, tmark = state
        i = c.i
        running = c.status == RUNNING
        W_new, opt_new, info = jax.vmap(step_one, in_axes=(None, 0, 0, None, 0, 0))(
            shared, s, k_noise, i, c.W, c.opt_state)
        f, a = info.loss, info.coordinates
        d = jnp.sqrt(tree_sum(a * a, axis=1))
        f0 = jnp.where(i == 0, f, c.f0)
        new_status = jnp.where(running, _outcome(structure, s, i, max_steps, f, d, f0, _alignment(
            structure, shared, s, c.W)), c.status)  # the alignment at W_i, where f was evaluated
        go_on = new_status == RUNNING
        counted = c.counted + (go_on & (info.intended != 0)).astype(jnp.int32)
        lost = c.lost + (go_on & _rounding_lost(info.intended, info.realized)).astype(jnp.int32)
        W, opt_state = W_new, opt_new  # a stopped run's are never read again
        if stride:
            def record(bufs):
                buf, tmark = bufs
                # The row of a stopping iterate records no step (the run does not move).
                mu = _frozen(go_on, getattr(opt_state, "mu", None),
                             getattr(c.opt_state, "mu", None))
                rows = jax.vmap(trace_one, in_axes=(None, 0, 0, 0, 0, 0, 0))(
                    shared, s, c.W, _frozen(go_on, W, c.W), mu, a, f)
                p = (i - start) // stride
                buf = buf.at[:, p].set(jnp.where(running[:, None], rows, jnp.nan))
                tmark = tmark.at[:, p].set(jnp.where(running, i, -1))
                return buf, tmark

            buf, tmark = jax.lax.cond(i % stride == 0, record, lambda b: b, (buf, tmark))
        c = Carry(i + 1, W, opt_state, new_status,
                  jnp.where(running & (new_status != RUNNING), i, c.stop),
                  jnp.where(running, f, c.loss), jnp.where(running, d, c.dist), counted, lost,
                  f0)
        return c, buf, tmark

    def advance(shared, scalars, seeds, max_steps, carry, until):
        s = cast(scalars)
        _, k_noise = _keys(structure, seeds)
        B = seeds.shape[0]
        buf = jnp.full((B, points, width), jnp.nan, dtype) if stride else None
        tmark = jnp.full((B, points), -1, jnp.int32) if stride else None
        start = carry.i

        def cond(state):
            return jnp.any(state[0].status == RUNNING) & (state[0].i < until)

        return jax.lax.while_loop(
            cond, lambda st: body(shared, s, k_noise, max_steps, start, st),
            (carry, buf, tmark))

    return init, advance
