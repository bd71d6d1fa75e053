"""The run loop against closed forms, and its bookkeeping (censoring, divergence, batching)."""

import math

import numpy as np
import pytest

from saddle import Config, engine
from saddle.simulate import simulate


def cfg(**kw):
    base = dict(m=12, n=8, dtype="float64", noise="none", max_steps=2000)
    base.update(kw)
    return Config.from_dict(base)


@pytest.mark.parametrize("basis", ["coherent", "incoherent"])
def test_sgd_without_noise_grows_geometrically(basis):
    # a_t = a0 (1 + eta gamma)^t exactly; tau = ceil(log(R/a0) / log(1 + eta gamma)).
    lr, gamma, a0, R = 0.05, 0.3, 1e-3, 1.0
    c = cfg(optimizer="sgd", learning_rate=lr, gamma=gamma, init_escape=a0, radius=R, basis=basis)
    res = simulate(c)
    tau = math.ceil(math.log(R / a0) / math.log(1 + lr * gamma))
    assert [r.escape_time for r in res.runs] == [tau]
    assert res.runs[0].escaped and not res.runs[0].diverged


@pytest.mark.parametrize("shape", [(16, 16), (24, 8), (8, 24)])
def test_polar_muon_without_noise_is_ballistic(shape):
    # With only the escape mode excited, the momentum is a multiple of E = p0 q0^T, so
    # polar(M) = E and a grows by exactly eta * scale per step: tau = ceil((R - a0)/(eta s)).
    m, n = shape
    lr, a0, R = 0.01, 1e-4, 0.5
    c = cfg(m=m, n=n, optimizer="muon", orthogonalizer="polar", learning_rate=lr, init_escape=a0,
            radius=R, basis="incoherent", gamma=0.2)
    scale = math.sqrt(max(1.0, m / n))
    res = simulate(c)
    assert res.runs[0].escape_time == math.ceil((R - a0) / (lr * scale) - 1e-9)


def test_normalized_gd_without_noise_moves_eta_per_step():
    lr, a0, R = 0.02, 0.01, 0.3
    c = cfg(optimizer="normalized_gd", learning_rate=lr, init_escape=a0, radius=R)
    assert simulate(c).runs[0].escape_time == math.ceil((R - a0) / lr - 1e-9)


def test_loss_criterion():
    lr, gamma, a0, drop = 0.05, 0.3, 1e-2, 0.02
    c = cfg(optimizer="sgd", learning_rate=lr, gamma=gamma, init_escape=a0, escape="loss",
            loss_drop=drop)
    # f(W_t) = -gamma a_t^2 / 2 <= -drop  <=>  a_t >= sqrt(2 drop / gamma)
    target = math.sqrt(2 * drop / gamma)
    tau = math.ceil(math.log(target / a0) / math.log(1 + lr * gamma))
    run = simulate(c).runs[0]
    assert run.escape_time == tau
    assert run.final_loss <= -drop


def test_flat_saddle_without_noise_is_censored_not_escaped():
    c = cfg(optimizer="adamw", gamma=0.0, max_steps=50, seeds=3)
    res = simulate(c)
    for r in res.runs:
        assert not r.escaped and not r.diverged
        assert r.escape_time is None and r.steps == 50
    s = res.summary()
    assert s["censored"] == 3 and s["success_rate"] == 0 and s["median_escape_time"] is None


def test_divergence_is_recorded_with_its_step_and_never_as_escape():
    # SGD with eta * lambda = 3 > 2 on the bulk: |1 - eta lambda| = 2, the loss explodes.
    c = cfg(optimizer="sgd", learning_rate=3.0, noise="isotropic", sigma=0.1, seeds=4,
            max_loss=1e6, radius=1e9)
    res = simulate(c)
    for r in res.runs:
        assert r.diverged and not r.escaped and r.escape_time is None
        assert 1 <= r.steps < 100
    assert res.summary()["diverged"] == 4


def test_batched_runs_equal_single_runs_bit_for_bit():
    c = Config.from_dict(m=16, n=12, optimizer="muon", noise="isotropic", sigma=0.05,
                         gamma=0.5, seeds=5, max_steps=3000, radius=0.3)
    together = simulate(c)
    alone = simulate(c, batch_size=1)
    assert [r.escape_time for r in together.runs] == [r.escape_time for r in alone.runs]
    assert [r.final_loss for r in together.runs] == [r.final_loss for r in alone.runs]
    assert all(r.escaped for r in together.runs)


def test_new_seeds_scalars_and_budgets_do_not_recompile():
    c = Config.from_dict(m=10, n=6, optimizer="adamw", seeds=3, max_steps=200, gamma=0.5)
    simulate(c)
    before = engine.compile_count()
    simulate(c.replace(seed=7, learning_rate=3e-3, max_steps=150, sigma=0.02, gamma=0.2))
    assert engine.compile_count() == before


def test_runs_in_one_batch_may_have_different_budgets_and_scalars():
    base = Config.from_dict(m=10, n=6, optimizer="sgd", noise="none", init_escape=1e-3,
                            gamma=0.5, learning_rate=0.1, dtype="float64")
    configs = [base, base.replace(max_steps=10), base.replace(learning_rate=0.2)]
    out = engine.run_batch(configs, [0, 0, 0])
    tau = lambda lr: math.ceil(math.log(1 / 1e-3) / math.log(1 + lr * 0.5))
    assert list(out.status) == [engine.ESCAPED, engine.CENSORED, engine.ESCAPED]
    assert list(out.stop_step) == [tau(0.1), 10, tau(0.2)]


def test_float32_is_the_default_and_float64_on_request():
    assert Config.from_dict().dtype == "float32"
    r32 = simulate(Config.from_dict(m=8, n=8, max_steps=5, gamma=0.0, noise="none"))
    assert r32.runs[0].steps == 5


def test_seeds_are_independent():
    c = Config.from_dict(m=16, n=16, optimizer="sgd", seeds=64, gamma=0.5, sigma=0.05,
                         max_steps=5000)
    times = np.array([r.escape_time for r in simulate(c).runs], dtype=float)
    assert len(set(times.tolist())) > 10  # not the same noise path reused


@pytest.mark.parametrize("backend", ["jax", "numba"])
def test_traces_do_not_change_results_and_record_the_trajectory(backend):
    c = Config.from_dict(m=16, n=12, optimizer="sgd", momentum=0.5, basis="coherent", seeds=3,
                         gamma=0.3, sigma=0.02, max_steps=4000, backend=backend, radius=0.5)
    plain = simulate(c)
    traced = simulate(c, trace_stride=7)
    assert [r.escape_time for r in plain.runs] == [r.escape_time for r in traced.runs]
    assert [r.final_loss for r in plain.runs] == [r.final_loss for r in traced.runs]
    for run, tr in zip(traced.runs, traced.traces, strict=True):
        assert list(tr["t"]) == list(range(0, run.escape_time + 1, 7))
        assert tr["escape_coordinates"].shape == (len(tr["t"]), 1)
        # The recorded distance is below the radius before escape, and the drift is finite.
        assert np.all(tr["escape_distance"][:-1] < 0.5)
        assert np.all(np.isfinite(tr["orthogonal_drift"]))


def test_trace_chunks_stream_across_chunk_boundaries():
    # 128 points per chunk: a stride of 1 and ~300 steps spans three chunks.
    c = Config.from_dict(m=8, n=8, optimizer="sgd", noise="none", init_escape=1e-3, gamma=0.02,
                         learning_rate=0.1, backend="jax", dtype="float64")
    res = simulate(c, trace_stride=1)
    tau = res.runs[0].escape_time
    tr = res.traces[0]
    assert tau > 256
    assert list(tr["t"]) == list(range(tau + 1))
    # Without noise the escape coordinate grows geometrically: a_t = a0 (1 + eta gamma)^t.
    np.testing.assert_allclose(tr["escape_coordinates"][:, 0], 1e-3 * 1.002 ** tr["t"], rtol=1e-9)


def test_xla_compiles_once_per_structure(caplog):
    """Independent of the engine's own counter: XLA's compile log stays silent when only the
    seed, scalar hyperparameters or the budget change, and speaks for a new shape."""
    import logging

    import jax

    c = Config.from_dict(m=9, n=5, optimizer="muon", seeds=2, max_steps=50, gamma=0.5,
                         backend="jax")
    simulate(c)  # warm: compile this structure
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.DEBUG):
            caplog.clear()
            simulate(c.replace(seed=11, learning_rate=0.03, momentum=0.8, max_steps=40,
                               sigma=0.05, gamma=0.3, radius=0.7, seeds=2))
            again = [r for r in caplog.records if "ompil" in r.getMessage()]
            caplog.clear()
            simulate(c.replace(m=7))
            new_shape = [r for r in caplog.records if "ompil" in r.getMessage()]
    finally:
        jax.config.update("jax_log_compiles", False)
    assert again == []
    assert new_shape  # the log does report compilations: the silence above means something


@pytest.mark.gpu
def test_cpu_and_gpu_backends_agree():
    """Same config and seed on the CPU and the GPU: same escape times, losses within float32
    tolerance (GEMM and reduction orders differ between the two)."""
    import jax

    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        pytest.skip("no GPU")
    cpu = jax.devices("cpu")[0]
    c = Config.from_dict(m=64, n=48, optimizer="muon", noise="isotropic", sigma=0.01,
                         seeds=8, max_steps=3000, backend="jax")
    with jax.default_device(cpu):
        a = simulate(c)
    with jax.default_device(gpu):
        b = simulate(c)
    ta = np.array([r.escape_time or -1 for r in a.runs])
    tb = np.array([r.escape_time or -1 for r in b.runs])
    assert np.abs(ta - tb).max() <= 2
    np.testing.assert_allclose([r.final_loss for r in a.runs], [r.final_loss for r in b.runs],
                               rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_float32_runs_that_lose_the_escape_signal_are_flagged(backend):
    """W* entries near 180 have a float32 spacing of 1.5e-5; an escape increment of
    lr * gamma * a = 1e-7 per step is rounded away, so the float32 run never moves along the
    escape direction. It must be flagged signal_lost (and stay censored, never escaped);
    the float64 run of the same config is not flagged and grows as it should."""
    base = dict(m=16, n=16, basis="coherent", optimizer="sgd", noise="none", gamma=0.01,
                learning_rate=0.01, init_escape=1e-3, saddle_point="random",
                saddle_point_scale=1e4, max_steps=2000, seeds=2, backend=backend)
    f32 = simulate(Config.from_dict(dict(base, dtype="float32")))
    f64 = simulate(Config.from_dict(dict(base, dtype="float64")))
    assert all(r.signal_lost and r.status == "censored" for r in f32.runs)
    assert not any(r.signal_lost for r in f64.runs)
    assert f32.summary()["signal_lost"] == 2 and f64.summary()["signal_lost"] == 0


@pytest.mark.parametrize("opt", ["adamw", "muon", "mano", "sgd", "sign_descent",
                                 "normalized_gd"])
def test_healthy_float32_runs_are_not_flagged(opt):
    res = simulate(Config.from_dict(optimizer=opt, m=16, n=16, seeds=2, max_steps=400))
    assert not any(r.signal_lost for r in res.runs)


def test_shared_landscape_arrays_are_cached_per_landscape():
    """A sweep's batches reuse the landscape they share; another landscape is built anew and
    the cache stays bounded."""
    c = Config.from_dict(m=20, n=12, basis="incoherent")
    a = engine.shared_arrays(c)
    assert engine.shared_arrays(c.replace(gamma=0.3, learning_rate=0.5)) is a  # scalars only
    b = engine.shared_arrays(c.replace(landscape_seed=1))
    P_a, P_b = a["landscape"]["P"], b["landscape"]["P"]
    assert b is not a and not np.array_equal(np.asarray(P_a), np.asarray(P_b))
    for seed in range(2, 6):
        engine.shared_arrays(c.replace(landscape_seed=seed))
    from saddle.engine import problem

    assert len(problem._SHARED_CACHE) <= problem._SHARED_CACHE_SIZE
    fresh = engine.shared_arrays(c)  # evicted: rebuilt, equal values
    assert fresh is not a
    a, fresh = a["landscape"], fresh["landscape"]
    for k in a:
        if a[k] is not None:
            np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(fresh[k]))


def test_float64_needs_explicit_x64_and_nothing_flips_it_behind_the_callers_back():
    """In a fresh process (x64 off, no conftest), a float64 run through the library raises
    a message naming saddle.enable_x64 and leaves x64 off; after the explicit call it runs
    in float64. The CLI makes that call itself."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import jax
        import saddle
        from saddle import Config
        from saddle.simulate import simulate
        c = Config.from_dict(m=6, n=4, dtype="float64", noise="none", init_escape=1e-3,
                             optimizer="sgd", max_steps=50)
        try:
            simulate(c)
        except ValueError as e:
            assert "saddle.enable_x64()" in str(e), e
        else:
            raise AssertionError("float64 ran without x64")
        assert not jax.config.jax_enable_x64
        saddle.enable_x64()
        r = simulate(c)
        assert r.runs[0].final_loss is not None
        print("ok")
    """)
    env = {k: v for k, v in __import__("os").environ.items() if k != "JAX_ENABLE_X64"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    cli = subprocess.run([sys.executable, "-m", "saddle", "run", "--m", "6", "--n", "4",
                          "--dtype", "float64", "--noise", "none", "--init-escape", "1e-3",
                          "--optimizer", "sgd", "--max-steps", "50", "--json", "--quiet"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert cli.returncode == 0, cli.stderr[-2000:]
