"""Section N: the linear network in the engine against plain optax loops, side by side.

``python -m benchmarks.network [--width H] [--seeds B] [--steps T]`` (or ``saddle bench
--sections N``): the two-layer linear network f = 1/2 ||W2 W1 - S||^2 - 1/2 ||S||^2
(m = n = 16, full batch, float32) run for T steps on B seeds batched,

1. by the lab's engine (``saddle.engine.run_batch``: its step, loss, escape and divergence
   checks every step, the signal-lost check, frozen stopped runs, early exit);
2. ``optax``: the loop a user would write, ``jax.jit`` of ``vmap`` over the seeds of a
   ``lax.fori_loop`` of ``optax.adamw`` (or ``optax.sgd``) updates on the same pytree,
   computing the loss every step (``value_and_grad``) but testing nothing;
3. ``optax+stop``: the same with the escape test and early exit a user would add, a
   ``lax.while_loop`` per seed that ends once the loss has dropped by ``loss_drop`` (under
   ``vmap`` JAX runs it until every seed has stopped and freezes the stopped ones by
   selects, as the engine does), and SGD keeps a momentum buffer (``momentum = 0``) as the
   engine's SGD does. This does the engine's work per step except its divergence and
   signal-lost checks: the fairer floor.

Both start at the same small random init scale and use learning rates small enough that no
run escapes, so every loop does exactly T steps. Compile time is excluded (median of
timed calls after a first one). The engine runs whole blocks of
``engine.block_size(structure)`` runs (32 for this model: the block is sized by m n, not
D), so B seeds below a block cost a whole block; the rows at B = 4 show that padding.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

from saddle.config import Config
from saddle.landscapes import make_landscape

from .common import median_time

# Learning rates that leave the origin's plateau untouched within the budget (no escape).
LR = {"adamw": 1e-6, "sgd": 1e-3}
# (width, seeds, steps) per row; seeds None is the engine's block size.
SIZES = ((128, 4, 1000), (128, None, 1000), (1024, None, 200))
QUICK_SIZES = ((128, None, 200), (1024, None, 20))


def _config(optimizer: str, width: int, steps: int, seeds: int) -> Config:
    return Config.from_dict(landscape="linear_network", m=16, n=16, width=width,
                            init="random", init_scale=1e-6, escape="loss", loss_drop=0.05,
                            optimizer=optimizer, learning_rate=LR[optimizer], noise="none",
                            max_steps=steps, seeds=seeds)


def block_seeds(width: int) -> int:
    """The engine's block size for this model at ``width``: seeds that fill one block."""
    from saddle import engine

    return engine.block_size(engine.structure_of(_config("sgd", width, 1, 1)))


def time_engine(config: Config, repeats: int = 3) -> float:
    """Seconds for one engine batch of ``config.seeds`` runs (median after a compiling call)."""
    from saddle import engine

    seeds = config.seed_list
    out = engine.run_batch([config] * len(seeds), seeds)
    assert np.all(np.asarray(out.stop_step) == config.max_steps), "a run stopped early"
    return median_time(lambda: engine.run_batch([config] * len(seeds), seeds).status,
                       repeats, warmup=0)


def _optax(config: Config, same_work: bool = False):
    """The optax optimizer; ``same_work``: SGD keeps a momentum buffer even at momentum 0,
    as the engine's SGD does (its momentum is a per-run scalar, so one program serves
    every momentum)."""
    c = config
    if c.optimizer == "adamw":
        return optax.adamw(c.learning_rate, b1=c.b1, b2=c.b2, eps=c.eps,
                           weight_decay=c.weight_decay)
    return optax.sgd(c.learning_rate, momentum=c.momentum if same_work else None)


def time_optax(config: Config, stop: bool = False, repeats: int = 3) -> float:
    """Seconds for the plain optax loop over the same seeds and steps (median after a
    compiling call); ``stop``: with the loss-drop escape test and early exit, and SGD's
    momentum buffer (the engine's work per step but its divergence and signal-lost checks)."""
    L = make_landscape(config)
    S, tx, zero, steps = L.S, _optax(config, stop), L.saddle_point, config.max_steps
    drop = config.loss_drop

    def loss(W):
        P = W["W2"] @ W["W1"]
        return jnp.sum(P * (0.5 * P - S))

    def train_step(W, state):
        value, g = jax.value_and_grad(loss)(W)
        updates, state = tx.update(g, state, W)
        return optax.apply_updates(W, updates), state, value

    def one_run(key):
        k1, k2 = jax.random.split(key)
        W = {"W1": config.init_scale * jax.random.normal(k1, zero["W1"].shape),
             "W2": config.init_scale * jax.random.normal(k2, zero["W2"].shape)}
        if not stop:
            return jax.lax.fori_loop(
                0, steps, lambda _, c: train_step(*c[:2]), (W, tx.init(W), jnp.float32(0)))[2]

        def cond(c):  # T steps, or stop once an iterate t >= 1 has f <= -loss_drop
            i, _, _, value = c
            return (i < steps) & ((i <= 1) | (value > -drop))

        def body(c):
            i, W, state, _ = c
            return (i + 1, *train_step(W, state))

        return jax.lax.while_loop(cond, body, (0, W, tx.init(W), jnp.float32(0)))[3]

    run = jax.jit(jax.vmap(one_run))
    keys = jax.random.split(jax.random.PRNGKey(0), config.seeds)
    return median_time(lambda: run(keys), repeats)


def bench_network(quick: bool = False, sizes=None) -> list[dict]:
    """Section N's rows: one per (optimizer, width, seeds)."""
    rows, repeats = [], 1 if quick else 3
    for width, seeds, steps in sizes or (QUICK_SIZES if quick else SIZES):
        seeds = seeds or block_seeds(width)
        for opt in LR:
            cfg = _config(opt, width, steps, seeds)
            te, to = time_engine(cfg, repeats), time_optax(cfg, repeats=repeats)
            ts = time_optax(cfg, stop=True, repeats=repeats)
            work = seeds * steps
            rows.append(dict(section="N", optimizer=opt, width=width, D=cfg.D, seeds=seeds,
                             block=block_seeds(width), steps=steps,
                             engine_steps_per_s=work / te, optax_steps_per_s=work / to,
                             optax_stop_steps_per_s=work / ts, engine_over_optax=to / te,
                             engine_over_optax_stop=ts / te))
    return rows


def markdown_row(r: dict) -> str:
    return (f"| {r['optimizer']} | {r['width']} | {r['D']} | {r['seeds']} | {r['steps']} | "
            f"{r['engine_steps_per_s']:.0f} | {r['optax_steps_per_s']:.0f} | "
            f"{r['optax_stop_steps_per_s']:.0f} | {r['engine_over_optax']:.2f} | "
            f"{r['engine_over_optax_stop']:.2f} |")


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.network", description=__doc__)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--seeds", type=int, default=None, help="default: the engine's block size")
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args(argv)
    print("| optimizer | width | D | seeds | steps | engine | optax | optax+stop | "
          "engine ÷ optax | engine ÷ optax+stop |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for r in bench_network(sizes=((args.width, args.seeds, args.steps),)):
        rows.append(r)
        print(markdown_row(r), flush=True)
    return rows


if __name__ == "__main__":
    main()
