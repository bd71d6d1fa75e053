"""The linear network in the engine against a plain optax training loop, side by side.

``python -m benchmarks.network [--width H] [--seeds B] [--steps T]``: the two-layer linear
network f = 1/2 ||W2 W1 - S||^2 - 1/2 ||S||^2 (m = n = 16, full batch) run for T steps on B
seeds batched, (1) by the lab's engine (``saddle.engine.run_batch``: its step, loss, escape
and divergence checks every step, early exit) and (2) by the loop a user would write:
``jax.jit`` of ``vmap`` over the seeds of a ``lax.fori_loop`` of ``optax.adamw`` (or
``optax.sgd``) updates on the same pytree, computing the loss every step as the engine does.
Both start at the same small random init scale and use learning rates small enough that no
run escapes, so both do exactly T steps. Compile time is excluded from both (each is timed
on its second call). Prints one row per optimizer: steps/s (seed-steps per second) and the
ratio engine ÷ optax.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from saddle.config import Config
from saddle.landscapes import make_landscape

# Learning rates that leave the origin's plateau untouched within the budget (no escape).
LR = {"adamw": 1e-6, "sgd": 1e-3}


def _config(optimizer: str, width: int, steps: int, seeds: int) -> Config:
    return Config.from_dict(landscape="linear_network", m=16, n=16, width=width,
                            init="random", init_scale=1e-6, escape="loss", loss_drop=0.05,
                            optimizer=optimizer, learning_rate=LR[optimizer], noise="none",
                            max_steps=steps, seeds=seeds)


def time_engine(config: Config) -> float:
    """Seconds for one engine batch of ``config.seeds`` runs (second call: compiled)."""
    from saddle import engine

    seeds = config.seed_list
    out = engine.run_batch([config] * len(seeds), seeds)
    t0 = time.perf_counter()
    out = engine.run_batch([config] * len(seeds), seeds)
    wall = time.perf_counter() - t0
    assert np.all(np.asarray(out.stop_step) == config.max_steps), "a run stopped early"
    return wall


def _optax(config: Config):
    c = config
    if c.optimizer == "adamw":
        return optax.adamw(c.learning_rate, b1=c.b1, b2=c.b2, eps=c.eps,
                           weight_decay=c.weight_decay)
    return optax.sgd(c.learning_rate)


def time_optax(config: Config) -> float:
    """Seconds for the plain optax loop over the same seeds and steps (second call)."""
    L = make_landscape(config)
    S = L.S
    tx = _optax(config)
    zero = L.saddle_point
    steps = config.max_steps

    def loss(W):
        P = W["W2"] @ W["W1"]
        return jnp.sum(P * (0.5 * P - S))

    def one_run(key):
        k1, k2 = jax.random.split(key)
        W = {"W1": config.init_scale * jax.random.normal(k1, zero["W1"].shape),
             "W2": config.init_scale * jax.random.normal(k2, zero["W2"].shape)}

        def body(_, carry):
            W, state, _ = carry
            value, g = jax.value_and_grad(loss)(W)
            updates, state = tx.update(g, state, W)
            return optax.apply_updates(W, updates), state, value

        return jax.lax.fori_loop(0, steps, body, (W, tx.init(W), jnp.float32(0)))[2]

    run = jax.jit(jax.vmap(one_run))
    keys = jax.random.split(jax.random.PRNGKey(0), config.seeds)
    jax.block_until_ready(run(keys))
    t0 = time.perf_counter()
    jax.block_until_ready(run(keys))
    return time.perf_counter() - t0


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.network", description=__doc__)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--steps", type=int, default=2000)
    args = p.parse_args(argv)
    rows = []
    for opt in LR:
        cfg = _config(opt, args.width, args.steps, args.seeds)
        te, to = time_engine(cfg), time_optax(cfg)
        work = args.seeds * args.steps
        rows.append(dict(optimizer=opt, width=args.width, D=cfg.D, seeds=args.seeds,
                         steps=args.steps, engine_steps_per_s=work / te,
                         optax_steps_per_s=work / to, engine_over_optax=to / te))
        r = rows[-1]
        print(f"| {opt} | {args.width} | {cfg.D} | {args.seeds} | {args.steps} | "
              f"{r['engine_steps_per_s']:.0f} | {r['optax_steps_per_s']:.0f} | "
              f"{r['engine_over_optax']:.2f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
