"""One run's state and its step: ``step(key, state, problem) -> (state, info)``.

The step is a pure function of one run (the batch is a ``vmap`` over it). It evaluates the
loss, gradient and escape coordinates at the current iterate, draws the step's noise, asks
the optimizer for an update and applies it; ``info`` reports what it evaluated, so that the
loop can decide whether the run had already stopped at the iterate it was given.

Parameters may be any pytree of matrices (the landscape decides). Leaf k of the noise and
of the initial perturbation draws from its own stream; leaf 0 uses the run's key itself.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import prng
from ..noise import generator
from .problem import Problem

__all__ = ["RunState", "StepInfo", "StepKey", "run_keys", "init_state", "step"]

# Streams of a leaf k >= 1 of a parameter pytree, derived from the run's key.
_LEAF_STREAM = 64


class RunState(NamedTuple):
    params: Any  # the iterate W_t (a pytree)
    opt_state: Any


class StepKey(NamedTuple):
    """The randomness of one step: the run's noise key and the step counter t."""

    key: jax.Array
    t: jax.Array


class StepInfo(NamedTuple):
    loss: jax.Array  # f(W_t)
    coordinates: jax.Array  # escape coordinates a(W_t), shape (escape_rank,)
    intended: jax.Array  # the update's own first escape coordinate
    realized: jax.Array  # the first escape coordinate of W_{t+1} - W_t after rounding


def run_keys(seeds: jax.Array, rng: str = "pcg3d",
             conditions: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Per-run (init key, noise key), from the seed and the condition's stream id.

    ``conditions``: (B, 2) uint32, the low and high words of each run's 64-bit stream id
    (:func:`saddle.config.stream_id`), or None for keys from the seed alone (common random
    numbers). A run's randomness never depends on its position in a batch or the batch
    size. ``pcg3d``: 32-bit keys hashed from (seed, stream id, stream). ``threefry``: the two
    halves of ``split(key(seed))``, the two words folded in first. Step t's noise is a
    function of (noise key, t).
    """
    if rng == "pcg3d":
        return (prng.run_key(seeds, prng.STREAM_INIT, conditions),
                prng.run_key(seeds, prng.STREAM_NOISE, conditions))

    def one(seed, cond):
        key = jax.random.key(seed)
        if cond is not None:
            key = jax.random.fold_in(jax.random.fold_in(key, cond[0]), cond[1])
        k_init, k_noise = jax.random.split(key)
        return k_init, k_noise

    if conditions is None:
        return jax.vmap(lambda s: one(s, None))(seeds)
    return jax.vmap(one)(seeds, conditions)


def _leaf_key(rng: str, key, k: int):
    if k == 0:
        return key
    if rng == "pcg3d":
        return prng.run_key(key, _LEAF_STREAM + k)
    return jax.random.fold_in(key, k)


def _draw(rng: str, key, t, like, draw):
    """``draw(generator, shape, dtype)`` for every leaf of ``like``, each from its stream."""
    leaves, treedef = jax.tree.flatten(like)
    out = [draw(generator(rng, _leaf_key(rng, key, k), t), x.shape, x.dtype)
           for k, x in enumerate(leaves)]
    return jax.tree.unflatten(treedef, out)


def init_state(key: jax.Array, problem: Problem, init_scale, init_escape) -> RunState:
    """W_0 = W* + init_scale Z + init_escape E_0, with Z standard normal."""
    L = problem.landscape
    w_star = L.saddle_point
    Z = _draw(problem.rng, key, 0, w_star, lambda g, shape, dtype: g.normal(shape, dtype))
    W = jax.tree.map(lambda w, z, e: w + init_scale * z + init_escape * e,
                     w_star, Z, L.escape_direction(0))
    return RunState(W, problem.optimizer.init(W))


def step(key: StepKey, state: RunState, problem: Problem) -> tuple[RunState, StepInfo]:
    """Evaluate at W_t, draw the noise of step t + 1 and move: W_{t+1} = W_t + U."""
    L = problem.landscape
    W = state.params
    f, g, a = L.value_and_grad_with_coordinates(W)
    if problem.noise.state_dependent:  # decided at trace time: static values only
        Xi = problem.noise.gradient_noise(generator(problem.rng, key.key, key.t), L, W, g)
    else:
        Xi = _draw(problem.rng, key.key, key.t, W,
                   lambda gen, shape, dtype: problem.noise.sample(gen, shape, dtype))
    G = jax.tree.map(jnp.add, g, Xi)
    updates, opt_state = problem.optimizer.update(G, state.opt_state, W)
    W_new = jax.tree.map(jnp.add, W, updates)
    # Signal-loss check: the update's own escape component against the change that
    # survived rounding in W + U (W_new - W is exact: Sterbenz).
    intended = L.direction_coordinates(updates)[0]
    realized = L.direction_coordinates(jax.tree.map(jnp.subtract, W_new, W))[0]
    return RunState(W_new, opt_state), StepInfo(f, a, intended, realized)
