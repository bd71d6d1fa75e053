"""Muon with a stiff bulk: the conditional certificate and the bulk-amplitude hypothesis.

Run with ``-s`` to see the tightness (bound / measured worst case) and the hypothesis margin.
"""

from __future__ import annotations

import numpy as np
import pytest

from saddle import Config, theory
from saddle.simulate import simulate
from saddle.theory.diagnostics import replay_muon
from saddle.theory.muon import certify
from saddle.theory.stiff_bulk import bulk_amplitude, certify_stiff

STIFF = theory.RESULTS["muon_stiff_bulk_escape"]
AMPLITUDE = theory.RESULTS["muon_bulk_amplitude"]


@pytest.fixture(autouse=True)
def _one_blas_thread(single_threaded_blas):
    yield


def _cfg(lam=1.0, m=16, n=16, seeds=32, **kw):
    d = dict(optimizer="muon", m=m, n=n, orthogonalizer="polar", noise="opnorm", sigma=0.02,
             gamma=1.0, bulk_scale=lam, basis="coherent", max_steps=400, radius=1.0,
             init_escape=0.3, seeds=seeds, dtype="float64")
    d.update(kw)
    return Config.from_dict(d)


def _replays(cfg, seeds):
    """(escape time, max_t ||X_t||_2) of float64 NumPy replays of cfg, one per seed."""
    out = []
    for seed in range(seeds):
        rows = replay_muon(cfg, seed, contour_every=0)
        escaped = abs(rows[-1]["a"] + rows[-1]["da"]) >= cfg.radius
        tau = len(rows) if escaped else np.inf
        out.append((tau, max(r["bulk_norm"] for r in rows)))
    return np.array(out)


def test_stiff_bulk_certificate_holds_and_is_tight():
    cfg = _cfg()
    # the unconditional certificate fails on this config: its bulk term grows like t
    assert certify(cfg) is None and not theory.RESULTS["muon_total_escape"].assumptions_hold(cfg)
    assert STIFF.assumptions_hold(cfg)
    bound = STIFF.evaluate(cfg)
    B = bulk_amplitude(cfg)
    hyp = STIFF.state_assumptions()[0]
    # the hypothesis, checked on every replayed trajectory, and the bound on those runs
    rep = _replays(cfg, 32)
    for tau, amp in rep:
        assert hyp.holds({"bulk_norm": amp, "bulk_bound": B}), (amp, B)
        assert tau <= bound
    # the engine's runs (its own random stream): the hypothesis at every recorded step (the
    # trace's drift_spectral = ||X_t||_2) and no escape later than the bound
    res = simulate(cfg, trace_stride=1)
    eng_amp = 0.0
    for tr in res.traces:
        for v in np.asarray(tr["drift_spectral"], float):
            assert hyp.holds({"bulk_norm": v, "bulk_bound": B}), (v, B)
        eng_amp = max(eng_amp, float(np.max(tr["drift_spectral"])))
    times = np.array([r.escape_time if r.escaped else np.inf for r in res.runs], float)
    assert int(np.sum(times > bound)) == 0, (times.max(), bound)
    worst = max(times.max(), rep[:, 0].max())
    print(f"\n[stiff bulk 16x16 lambda=1] bound {bound:.0f}, worst measured {worst:.0f} "
          f"(engine {times.max():.0f}, replay {rep[:, 0].max():.0f}, 32+32 runs), "
          f"tightness {bound / worst:.2f}; B {B:.4f} vs max ||X||_2 {rep[:, 1].max():.4f} "
          f"(replays), {eng_amp:.4f} (engine)")
    assert bound / worst <= 2.0


@pytest.mark.parametrize("lam", [0.1, 10.0])
def test_bulk_amplitude_estimate_against_replays(lam):
    cfg = _cfg(lam, max_steps=60)
    B = AMPLITUDE.evaluate(cfg)
    assert B == pytest.approx(bulk_amplitude(cfg))
    measured = _replays(cfg, 8)[:, 1].max()
    print(f"\n[bulk amplitude lambda={lam}] B {B:.4f}, measured max {measured:.4f}")
    # an upper estimate within a factor 2 (measured margins 1.2 to 1.9 on 16x16 to 64x64)
    assert measured <= B <= 2 * measured


def test_stiff_certificate_never_worse_than_the_unconditional_one():
    for lam, sigma in ((1e-3, 0.002), (0.1, 0.02), (0.1, 0.05)):
        cfg = _cfg(lam, sigma=sigma)
        old, new = certify(cfg), certify_stiff(cfg)
        assert old is not None and new is not None
        assert new.tau <= old.tau and STIFF.evaluate(cfg) <= old.closed_form
    # the hypothesis only enters through the bulk term: without a bulk both agree
    cfg = _cfg(1e-12, sigma=0.002)
    assert certify_stiff(cfg).tau == certify(cfg).tau


def test_stiff_bulk_result_refuses_uncovered_configs():
    assert not STIFF.assumptions_hold(_cfg(orthogonalizer="newton_schulz"))
    assert not STIFF.assumptions_hold(_cfg(nesterov=False))
    assert STIFF.evaluate(_cfg(orthogonalizer="newton_schulz")) is None
    assert not AMPLITUDE.assumptions_hold(_cfg(momentum=0.0))


# ---- Newton-Schulz self-excitation -------------------------------------------------------------


def _ns_cfg(lam, m=16, n=16, max_steps=30, **kw):
    d = dict(optimizer="muon", m=m, n=n, orthogonalizer="newton_schulz", noise="none",
             gamma=1.0, bulk_scale=lam, basis="coherent", learning_rate=0.01, radius=1.0,
             init="random", init_scale=1e-9, init_escape=0.053, max_steps=max_steps,
             dtype="float64")
    d.update(kw)
    return Config.from_dict(d)


def test_ns_slope_and_rank_one_output_against_the_lab_iteration():
    from saddle.optimizers import NS_COEFFS
    from saddle.theory.diagnostics import _ns
    from saddle.theory.ns_excitation import ns_at_one, ns_slope

    eps = 1e-9
    out = _ns(np.diag([1.0, eps, 0.0]), 5, NS_COEFFS, 0.0)  # normalized by sqrt(1 + eps^2)
    assert ns_at_one(5) == pytest.approx(out[0, 0], rel=1e-12)
    assert ns_slope(5) == pytest.approx(out[1, 1] / eps, rel=1e-6)
    assert ns_slope(5) == pytest.approx(484.876287, rel=1e-8)


def _drift(cfg):
    """||X_t||_F per step of the engine's single run (its orthogonal_drift trace)."""
    tr = simulate(cfg, trace_stride=1).traces[0]
    return np.asarray(tr["orthogonal_drift"], float)


def test_ns_excitation_threshold_separates_excited_from_quiet():
    from saddle.theory.ns_excitation import linear_gain

    r = theory.RESULTS["ns_bulk_excitation_threshold"]
    base = _ns_cfg(1.0)
    assert r.assumptions_hold(base)
    lam_c = r.evaluate(base)
    # without momentum the threshold is 2 gamma a0 / (eta k_s a^5); the lab's momentum keeps it
    assert lam_c == pytest.approx(2 * 0.053 / (0.01 * 3.4445**5), rel=1e-6)
    for f in (0.5, 2.0):
        cfg = _ns_cfg(f * lam_c)
        x = _drift(cfg)
        growth = x.max() / x[0]
        pred = linear_gain(cfg, f * lam_c)
        print(f"\n[ns excitation] lambda = {f} lambda_c: growth {growth:.3f}, linear {pred:.3f}")
        if f < 1:
            assert growth <= 1 + 1e-6
        else:
            assert growth > 2 and growth == pytest.approx(pred, rel=0.15)


@pytest.mark.parametrize("m", [16])  # 32x32 and up: a new compile (6 s); see the docs page
def test_ns_saturated_bulk_amplitude(m):
    cfg = _ns_cfg(1.0, m, m)
    r = theory.RESULTS["ns_bulk_saturation"]
    assert r.assumptions_hold(cfg)
    pred = r.evaluate(cfg)
    measured = _drift(cfg).max()
    print(f"\n[ns saturation {m}x{m}] max ||X||_F {measured:.4f}, estimate {pred:.4f}")
    assert 0.6 * pred <= measured <= 1.05 * pred
