"""AdamW's speed limit (theory.speed_limit): the per-entry factor C_t against the lab's own
AdamW arithmetic (reached by the Cauchy-Schwarz equality case, never exceeded by random
gradients), and the bound against engine runs where it is closest to tight."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from saddle import theory
from saddle.config import Config
from saddle.optimizers import adamw
from saddle.simulate import simulate
from saddle.theory.speed_limit import speed_limit_steps, step_factor

LIMIT = theory.RESULTS["adamw_speed_limit"]
B1, B2 = 0.9, 0.999


def _last_step(grads) -> float:
    """|update| / lr of the lab's AdamW at the last of a sequence of scalar gradients."""
    opt = adamw(1.0, b1=B1, b2=B2, eps=0.0)
    p = jnp.zeros((1,), jnp.float64)
    state = opt.init(p)
    for g in grads:
        up, state = opt.update(jnp.array([g], jnp.float64), state, p)
    return float(abs(up[0]))


def test_step_factor_is_attained_and_never_exceeded():
    """The equality case of Cauchy-Schwarz, g_i proportional to w_i/u_i, gives exactly C_t;
    random gradient sequences (heavy-tailed, sign-flipping) stay below it."""
    from saddle import enable_x64

    enable_x64()
    for t in (1, 7, 40):
        i = np.arange(1, t + 1)
        w = (1 - B1) * B1 ** (t - i) / (1 - B1**t)
        u = (1 - B2) * B2 ** (t - i) / (1 - B2**t)
        assert abs(_last_step(w / u) - step_factor(t, B1, B2)) < 1e-9 * step_factor(t, B1, B2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        t = int(rng.integers(1, 60))
        g = rng.standard_t(1.5, t) * np.exp(rng.normal(0, 2, t))
        assert _last_step(g) <= step_factor(t, B1, B2) * (1 + 1e-12)


def test_speed_limit_steps_cover_the_distance_exactly():
    """N is the first t whose cumulative largest moves reach the distance."""
    n = speed_limit_steps(1.0, 1e-3, B1, B2)
    csum = np.cumsum(1e-3 * step_factor(np.arange(1, n + 1), B1, B2))
    assert csum[-1] >= 1.0 > csum[-2]


def test_no_adamw_run_escapes_before_its_speed_limit():
    """Dense basis with noise turned onto the escape vectors (AdamW's steps there are nearly
    sign(E)-shaped, the bound's worst case) and the coherent base regime: every escape time
    is at least the bound, on 12 seeds each."""
    for kw in (dict(basis="structured", noise="lowrank", sigma=0.05, noise_coherence=1.0,
                    learning_rate=2e-3),
               dict(basis="coherent", noise="isotropic", sigma=0.01, learning_rate=5e-3)):
        cfg = Config.from_dict(dict(optimizer="adamw", m=16, n=16, gamma=0.1, radius=1.0,
                                    max_steps=1500, seeds=12, **kw))
        assert LIMIT.assumptions_hold(cfg)
        bound = LIMIT.evaluate(cfg)
        res = simulate(cfg)
        times = [r.escape_time for r in res.runs if r.escaped]
        assert len(times) >= 6, kw
        assert min(times) >= bound, (kw, bound, sorted(times)[:3])
