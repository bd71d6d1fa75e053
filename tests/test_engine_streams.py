"""Noise streams per (condition, seed) and the relative divergence rule, on both engines."""

from __future__ import annotations

import pytest

from saddle.config import Config, stream_id
from saddle.engine import run_batch
from saddle.engine.output import DIVERGED, ESCAPED
from saddle.errors import ConfigError

_BASE = dict(optimizer="adamw", basis="coherent", m=16, max_steps=3000)


def _taus(backend, n, streams="independent", seeds=4):
    c = Config.from_dict(dict(_BASE, n=n, backend=backend, noise_streams=streams, seeds=seeds))
    out = run_batch([c] * seeds, c.seed_list)
    assert (out.status == ESCAPED).all()
    return tuple(out.stop_step.tolist())


@pytest.mark.parametrize("backend", ["jax", "numba"])
def test_independent_streams_differ_across_shapes(backend):
    taus = [_taus(backend, n) for n in (16, 32, 64)]
    assert len(set(taus)) == 3, taus


def test_common_streams_replay_entry_00_across_shapes_on_jax():
    # A variance-reduction design: entry (0, 0) draws the same noise at every shape, and
    # AdamW's update of (0, 0) is element-wise, so the escape times are identical.
    taus = [_taus("jax", n, "common") for n in (16, 32, 64)]
    assert taus[0] == taus[1] == taus[2]


def test_common_streams_refuse_numba_in_one_line():
    with pytest.raises(ConfigError, match="noise_streams") as e:
        Config.from_dict(dict(_BASE, backend="numba", noise_streams="common"))
    assert "\n" not in str(e.value)
    from saddle.engine import resolve_backend
    assert resolve_backend(Config.from_dict(dict(_BASE, noise_streams="common"))) == "jax"


@pytest.mark.parametrize("backend", ["jax", "numba"])
def test_run_is_bit_identical_alone_in_a_mixed_batch_and_with_a_larger_budget(backend):
    c = Config.from_dict(dict(_BASE, n=16, backend=backend))
    others = [c.replace(learning_rate=lr) for lr in (0.002, 0.004, 0.003)]
    alone = run_batch([c], [3])
    mixed = run_batch([others[0], c, others[1], others[2]], [0, 3, 3, 1])
    assert alone.stop_step[0] == mixed.stop_step[1]
    assert alone.final_loss[0] == mixed.final_loss[1]
    assert alone.final_distance[0] == mixed.final_distance[1]
    tau = int(alone.stop_step[0])
    assert alone.status[0] == ESCAPED and tau > 10
    # A budget just past tau (a different max_steps, the same stream): the same path.
    short = run_batch([c.replace(max_steps=tau + 1)], [3])
    assert short.stop_step[0] == tau and short.final_loss[0] == alone.final_loss[0]
    # A budget below tau censors the run there; raising it again continues the same path.
    cut = run_batch([c.replace(max_steps=tau - 5)], [3])
    assert cut.status[0] != ESCAPED and cut.stop_step[0] == tau - 5


def test_stream_ids_differ_across_conditions_and_ignore_bookkeeping():
    c = Config.from_dict({})
    # Golden value: the stream id is a contract across processes and machines (sha256 of the
    # condition's fields); changing it changes every stored run's noise.
    assert stream_id(c) == 0xEDFAB9C58F297446
    same = [c.replace(seed=5), c.replace(seeds=9), c.replace(max_steps=77),
            c.replace(backend="jax"), c.replace(radius=2.0), c.replace(max_loss=1e6),
            c.replace(divergence_factor=10.0), c.replace(noise_streams="common"),
            c.replace(escape="loss", loss_drop=0.01)]
    assert {stream_id(x) for x in same} == {stream_id(c)}
    changed = [c.replace(m=32), c.replace(n=32), c.replace(learning_rate=0.03),
               c.replace(sigma=0.02), c.replace(gamma=0.2), c.replace(landscape_seed=1),
               c.replace(dtype="float64"), c.replace(optimizer="adamw")]
    ids = [stream_id(x) for x in changed]
    assert len(set(ids)) == len(ids) and stream_id(c) not in ids


@pytest.mark.parametrize("backend", ["jax", "numba"])
def test_sgd_blow_up_is_diverged_not_escaped(backend):
    # The audit's example: lr = 100 on a unit bulk; the projection crossed the radius at
    # tau = 2 with f ~ 1e6, far below the absolute max_loss = 1e8.
    c = Config.from_dict(dict(optimizer="sgd", m=16, n=16, seeds=4, max_steps=200,
                              learning_rate=100, basis="coherent", backend=backend))
    out = run_batch([c] * 4, c.seed_list)
    assert (out.status == DIVERGED).all(), out.status
    assert not (out.status == ESCAPED).any()


@pytest.mark.parametrize("opt", ["adamw", "sgd", "sign_descent", "normalized_gd", "mano"])
@pytest.mark.parametrize("noise,sigma", [("isotropic", 0.01), ("opnorm", 0.2),
                                         ("kronecker", 0.01)])
def test_legitimate_runs_do_not_diverge(opt, noise, sigma):
    c0 = Config.from_dict(dict(optimizer=opt, noise=noise, sigma=sigma, m=32, n=32,
                               basis="coherent", max_steps=2000, seeds=2))
    for k in (1.0, 4.0):
        c = c0.replace(learning_rate=c0.learning_rate * k)
        out = run_batch([c] * 2, c.seed_list)
        assert not (out.status == DIVERGED).any(), (k, out.final_loss)


def test_linear_network_legitimate_run_does_not_diverge():
    c = Config.from_dict(dict(landscape="linear_network", optimizer="sgd", m=16, n=16,
                              width=4, init="random", escape="loss", loss_drop=0.1,
                              max_steps=2000, seeds=2))
    out = run_batch([c] * 2, c.seed_list)
    assert not (out.status == DIVERGED).any(), out.final_loss
