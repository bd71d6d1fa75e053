"""Claim C4's measurement: the coherence knob of lowrank noise, the leakage trace columns and
the effect analysis, each against an answer known independently (NumPy, a closed form, or a
symmetry)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saddle import Config, prng
from saddle.engine.trace import TRACE_FIELDS, trace_row
from saddle.errors import ConfigError
from saddle.landscapes import make_landscape
from saddle.leakage import leakage_effects, run_leakage
from saddle.noise import generator, make_noise
from saddle.sweep import parse_spec, run_sweep
from saddle.sweep.store import Store

M, N = 12, 9


def cfg(**kw):
    base = dict(m=M, n=N, noise="lowrank", sigma=0.3, dtype="float64", basis="incoherent")
    return Config.from_dict({**base, **kw})


def escape_vectors(config):
    """(p_0, q_0) from the landscape's dense basis (NumPy), independent of escape_vectors."""
    L = make_landscape(config)
    if config.basis == "coherent":
        return np.eye(config.m)[:, 0], np.eye(config.n)[:, 0]
    P, Q = L.basis.dense() if L.basis is not None else (np.asarray(L.P), np.asarray(L.Q))
    return np.asarray(P)[:, 0], np.asarray(Q)[:, 0]


def noise_draws(config, count, seed=3):
    """``count`` draws of the engine's Xi at steps 0..count-1 of one run key."""
    model, L = make_noise(config), make_landscape(config)
    key = prng.run_key(jnp.uint32(seed), prng.STREAM_NOISE)
    W = jnp.zeros((config.m, config.n), jnp.float64)

    def one(t):
        gen = generator(config.rng, key, t)
        if model.state_dependent:
            return model.gradient_noise(gen, L, W, W)
        return model.sample(gen, W.shape, W.dtype)

    return np.asarray(jax.jit(jax.vmap(one))(jnp.arange(count, dtype=jnp.uint32)))


# --- the knob ----------------------------------------------------------------------------
def test_zero_coherence_is_the_plain_law_and_config():
    plain = cfg()
    assert cfg(noise_coherence=0).config_hash() == plain.config_hash()
    assert plain.noise_coherence is None and not make_noise(plain).state_dependent
    assert make_noise(cfg(noise_coherence=0.5)).state_dependent
    with pytest.raises(ConfigError, match="noise_coherence"):
        cfg(noise_coherence=1.5)
    with pytest.raises(ConfigError, match="noise_coherence: .*landscape = 'spectral'"):
        Config.from_dict(landscape="linear_network", noise="lowrank", noise_coherence=0.5)


@pytest.mark.parametrize("basis", ["coherent", "incoherent", "structured"])
@pytest.mark.parametrize("rank", [1, 3])
def test_coherence_keeps_every_singular_value_per_draw(basis, rank):
    """Same run key, same step: the c > 0 draw has the c = 0 draw's singular values (so its
    Frobenius and operator norms), and its first factors overlap p_0, q_0 by >= sqrt(c)."""
    plain = noise_draws(cfg(basis=basis, noise_rank=rank), 50)
    p, q = escape_vectors(cfg(basis=basis))
    for c in (0.3, 1.0):
        turned = noise_draws(cfg(basis=basis, noise_rank=rank, noise_coherence=c), 50)
        sv0 = np.linalg.svd(plain, compute_uv=False)
        sv1 = np.linalg.svd(turned, compute_uv=False)
        np.testing.assert_allclose(sv1, sv0, rtol=1e-10, atol=1e-14)
        assert not np.allclose(turned, plain)
        along = np.abs(np.einsum("i,kij,j->k", p, turned, q))
        if rank == 1:  # Xi = s u v^T with |p^T u| >= sqrt(c), |q^T v| >= sqrt(c)
            assert np.all(along >= c * sv0[:, 0] * (1 - 1e-9))


def test_variance_along_e0_matches_the_closed_form():
    """Var <Xi, E_0> against NoiseSpec.e_variance (a Beta-law formula), by Monte Carlo: the
    plain law's sigma^2 k/(mn) at c = 0, about c^2 sigma^2 above."""
    count = 6000
    for c, rank in ((0.0, 1), (0.25, 1), (1.0, 1), (0.5, 2)):
        config = cfg(noise_rank=rank, noise_coherence=c)
        p, q = escape_vectors(config)
        x = np.einsum("i,kij,j->k", p, noise_draws(config, count), q)
        expected = config.components()[1].e_variance(config, (1.0,))[0]
        # Var of a sample variance: (E x^4 - var^2)/count; the fourth moment is estimated.
        se = np.sqrt((np.mean(x**4) - np.mean(x**2) ** 2) / count)
        assert abs(np.mean(x**2) - expected) < 4 * se, (c, rank, np.mean(x**2), expected)
        assert abs(np.mean(x)) < 4 * np.std(x) / np.sqrt(count)  # no drift along E_0


# --- the trace columns --------------------------------------------------------------------
def _numpy_columns(config, W, W_new, mu):
    """update_orthogonal, update_leakage, momentum_alignment, drift_spectral by NumPy from
    the dense basis."""
    L = make_landscape(config)
    r = config.escape_rank
    if config.basis == "coherent":
        P, Q = np.eye(config.m), np.eye(config.n)
    else:
        P, Q = L.basis.dense() if L.basis is not None else (np.asarray(L.P), np.asarray(L.Q))
    d = W_new - W
    C = P.T @ d @ Q
    idx = np.arange(r)
    C[idx, idx] = 0
    perp = np.linalg.norm(C)
    U, _, Vt = np.linalg.svd(mu)
    align = abs(U[:, 0] @ P[:, 0]) * abs(Vt[0] @ Q[:, 0])
    X = P.T @ (W - np.asarray(L.saddle_point)) @ Q
    X[idx, idx] = 0
    return perp, perp / np.linalg.norm(d), align, np.linalg.norm(X, 2)


@pytest.mark.parametrize("basis,m,n", [("coherent", 7, 5), ("incoherent", 7, 5),
                                       ("structured", 8, 6), ("incoherent", 260, 258)])
def test_trace_leakage_columns_match_numpy(basis, m, n):
    """The JAX trace row (SVD below 256, power iteration above) against NumPy."""
    config = cfg(m=m, n=n, basis=basis, escape_rank=2)
    L = make_landscape(config)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((m, n))
    step = 0.01 * rng.standard_normal((m, n))
    # A momentum with a clear top singular pair, for the power iteration to find.
    mu = 3 * np.outer(rng.standard_normal(m), rng.standard_normal(n)) / np.sqrt(m * n)
    mu += 0.1 * rng.standard_normal((m, n)) / np.sqrt(m + n)
    a = L.escape_coordinates(jnp.asarray(W))
    row = np.asarray(trace_row(L, jnp.asarray(W), jnp.asarray(W + step), jnp.asarray(mu),
                               a, jnp.asarray(0.0)))
    got = {f: row[2 + k] for k, f in enumerate(TRACE_FIELDS)}
    perp, leak, align, drift2 = _numpy_columns(config, W, W + step, mu)
    np.testing.assert_allclose(got["update_orthogonal"], perp, rtol=1e-9)
    np.testing.assert_allclose(got["update_leakage"], leak, rtol=1e-9)
    np.testing.assert_allclose(got["momentum_alignment"], align, rtol=1e-6, atol=1e-9)
    if min(m, n) <= 256:
        np.testing.assert_allclose(got["drift_spectral"], drift2, rtol=1e-9)
    else:  # 40 power iterations on a random matrix: a lower estimate, within a few percent
        assert 0.9 * drift2 <= got["drift_spectral"] <= drift2 * (1 + 1e-9)


def test_numba_trace_row_matches_jax():
    from saddle.kernels.elementwise import _record

    config = cfg(m=7, n=5, basis="coherent", escape_rank=2)
    L = make_landscape(config)
    rng = np.random.default_rng(1)
    W, W_new, mu = (rng.standard_normal((7, 5)) for _ in range(3))
    a = L.escape_coordinates(jnp.asarray(W))
    jrow = np.asarray(trace_row(L, jnp.asarray(W), jnp.asarray(W_new), jnp.asarray(mu), a,
                                jnp.asarray(0.0)))
    nrow = np.full(2 + len(TRACE_FIELDS), np.nan)
    _record(nrow, W, W_new, np.zeros((7, 5)), mu, 2, 0.0, float(np.sum(W * W)),
            float(np.linalg.norm(np.asarray(a))))
    new = [2 + TRACE_FIELDS.index(f) for f in ("update_orthogonal", "update_leakage",
                                               "momentum_alignment", "drift_spectral")]
    np.testing.assert_allclose(nrow[new], jrow[new], rtol=1e-9)


def test_old_traces_without_the_columns_give_nan():
    import pandas as pd

    runs = pd.DataFrame(dict(run_id=["a"], radius=[1.0]))
    old = pd.DataFrame(dict(run_id=["a", "a"], t=[0, 5], escape_distance=[0.0, 0.1]))
    assert np.isnan(run_leakage(runs, old).loc["a"])


# --- the effect analysis, on known answers ------------------------------------------------
def _sweep(tmp_path, **axes):
    spec = {**dict(name="c4", seeds=16, optimizer="sgd", m=16, n=16, gamma=0.2, sigma=0.05,
                   max_steps=1500, trace_stride=4, backend="jax"), **axes}
    run_sweep(parse_spec(spec), tmp_path)
    store = Store(tmp_path)
    return store.runs(), store.traces()


def test_aligned_noise_changes_leakage_and_escape_time(tmp_path):
    """SGD with rank-one noise: at c = 1 the noise is +-||Xi|| E_0, so from W_0 = W* the
    iterate never leaves the escape line (leakage 0 up to rounding, against ~1 at c = 0) and
    Var <Xi, E_0> grows from sigma^2/(mn) to sigma^2, so it escapes sooner."""
    runs, traces = _sweep(tmp_path, noise="lowrank", noise_coherence=[0.0, 1.0],
                          basis="incoherent")
    eff = leakage_effects(runs, traces).iloc[0]
    assert eff["base_mean"] > 0.9 and eff["mean"] < 1e-3
    assert eff["ratio_high"] < 0.01 and eff["p_value"] < 1e-4
    assert eff["tau_ratio_high"] < 1 and eff["tau_p_value"] < 0.05


def test_rotation_invariant_noise_shows_no_basis_effect(tmp_path):
    """SGD is equivariant under W -> P W Q^T and isotropic noise is rotation-invariant in
    law: the incoherent landscape is the coherent one rotated, so leakage and escape time
    have one law. The test must not reject, and its CIs must be narrow enough to mean it."""
    runs, traces = _sweep(tmp_path, noise="isotropic", sigma=0.005, momentum=0.5,
                          basis=["coherent", "incoherent"])
    # Measured CI widths here: about 0.02 and 0.2; a real 5% (30%) effect would show.
    for metric, width in (("update_leakage", 0.05), ("momentum_alignment", 0.3)):
        eff = leakage_effects(runs, traces, treatment="basis", baseline="coherent",
                              metric=metric).iloc[0]
        assert eff["runs"] == eff["base_runs"] == 16
        assert eff["p_value"] > 0.01, eff
        assert eff["ratio_low"] <= 1 <= eff["ratio_high"], eff
        assert eff["ratio_high"] - eff["ratio_low"] < width, eff
    assert eff["tau_p_value"] > 0.01
    assert eff["tau_ratio_low"] <= 1 <= eff["tau_ratio_high"]
