"""Series and factors in the analysis: every swept field but D keeps its own series (a learning
rate, a noise level, a fixed landscape seed); a protocol-set learning rate is not a key; the
``tuned`` protocol reports the rate it chose per D; declared landscape draws are pooled, counted
and passed to the exponent fit as clusters."""

from __future__ import annotations

import pandas as pd
import pytest
from test_figures import fabricate

from saddle import analysis

DIMS = (8, 16, 32)


def _two_rates() -> pd.DataFrame:
    """learning_rate = [0.1, 1000] crossed with three shapes: exponent 0.5 at both rates, the
    large rate twice as slow."""
    conds = [dict(optimizer="sgd", m=n, n=n, learning_rate=lr) for n in DIMS for lr in (0.1, 1000)]
    return fabricate(conds, budget=10_000, time=lambda c, s: (
        (50 if c.learning_rate == 0.1 else 100) * c.n / 8 + s))


def test_a_swept_learning_rate_keeps_its_own_series():
    df = _two_rates()
    assert analysis.series_columns(df) == ["learning_rate"]
    t = analysis.exponent_table(df, n_resamples=99)
    assert sorted(t["learning_rate"]) == [0.1, 1000.0]
    for r in t.to_dict("records"):
        assert r["exponent"] == pytest.approx(0.5, abs=0.02)
        assert r["low"] > 0.4 and r["high"] < 0.6  # not b = 0 [-2, 2] from pooled rates
        assert r["outcome"] == "fit" and r["dims"] == 3 and r["runs"] == 12
    assert "dropped" not in t.columns


def test_noise_level_and_fixed_landscape_seed_are_series():
    conds = [dict(optimizer="sgd", m=n, n=n, sigma=s, landscape_seed=ls)
             for n in DIMS for s in (0.01, 0.1) for ls in (0, 1)]
    df = fabricate(conds)
    assert set(analysis.series_columns(df)) == {"sigma", "landscape_seed"}
    assert len(analysis.exponent_table(df, n_resamples=19)) == 4


def test_a_protocol_set_learning_rate_is_not_a_series_key():
    """matched_rms: the rate varies with D by design, one series; beside it a fixed
    protocol at two rates: two more."""
    conds = [dict(optimizer="sgd", m=n, n=n, learning_rate=1e-3 * n) for n in DIMS]
    matched = fabricate(conds, protocol="matched_rms")
    fixed = fabricate([dict(optimizer="sgd", m=n, n=n, learning_rate=lr)
                       for n in DIMS for lr in (0.1, 1.0)], protocol="fixed")
    assert analysis.series_columns(matched) == []
    df = pd.concat([matched, fixed], ignore_index=True)
    assert analysis.series_columns(df) == ["learning_rate", "lr_protocol"]
    t = analysis.exponent_table(df, n_resamples=19)
    assert len(t) == 3
    m = t[t["lr_protocol"] == "matched_rms"].iloc[0]
    assert pd.isna(m["learning_rate"]) and m["chosen_lr"] == "64:0.008, 256:0.016, 1024:0.032"
    assert t[t["lr_protocol"] == "fixed"]["chosen_lr"].isna().all()


def test_tuned_reports_the_chosen_rate_per_D():
    frames = []
    for k in (0.25, 1.0, 4.0):
        conds = [dict(optimizer="sgd", m=n, n=n, learning_rate=1e-3 * k) for n in DIMS]
        # the best multiplier is 4 at D=64 and 0.25 elsewhere
        f = fabricate(conds, protocol="tuned", time=lambda c, s, k=k: (
            100 / k if c.n == 8 else 100 * k) + s)
        frames.append(f.assign(lr_multiplier=k, run_id=f["run_id"] + f"-{k}"))
    t = analysis.exponent_table(pd.concat(frames, ignore_index=True), n_resamples=19)
    assert len(t) == 1
    r = t.iloc[0]
    assert r["chosen_multiplier"] == "64:4, 256:0.25, 1024:0.25"
    assert r["chosen_lr"] == "64:0.004, 256:0.00025, 1024:0.00025"


def _drawn(k: int = 3) -> pd.DataFrame:
    """Three shapes x k landscape draws (landscape_seed = 7 + j), the draws 1x, 2x, 3x slow.
    AdamW: an optimizer for which a drawn basis can change the law of a run (for SGD or Muon
    under isotropic noise the draws are one landscape in law)."""
    frames = []
    for j in range(k):
        conds = [dict(optimizer="adamw", m=n, n=n, landscape_seed=7 + j) for n in DIMS]
        f = fabricate(conds, budget=10_000, time=lambda c, s, j=j: (j + 1) * 20 * c.n / 8 + s)
        frames.append(f.assign(landscape_draw=j))
    return pd.concat(frames, ignore_index=True)


def test_declared_draws_are_pooled_and_counted():
    df = _drawn()
    assert analysis.series_columns(df) == []
    s = analysis.summarize(df)
    assert list(s["D"]) == [64, 256, 1024] and "landscape_seed" not in s.columns
    assert (s["draws"] == 3).all() and (s["seeds"] == 4).all() and (s["runs"] == 12).all()
    # the same seeds as an explicit axis, without landscape_draw: a fixed factor, 3 series
    fixed = df.drop(columns="landscape_draw")
    assert analysis.series_columns(fixed) == ["landscape_seed"]
    assert len(analysis.summarize(fixed)) == 9
    assert len(analysis.exponent_table(fixed, n_resamples=19)) == 3


def test_draws_reach_the_fit_as_clusters(monkeypatch):
    seen = []
    real = analysis.fit_exponent

    def spy(samples, **kw):
        seen.append(samples)
        return real({D: s[:2] for D, s in samples.items()}, **kw)

    monkeypatch.setattr(analysis, "fit_exponent", spy)
    t = analysis.exponent_table(_drawn(), n_resamples=19)
    assert len(t) == 1 and len(seen) == 1
    assert sorted(seen[0]) == [64, 256, 1024]
    for t_, e, clusters in seen[0].values():
        assert len(t_) == len(e) == len(clusters) == 12
        assert sorted(set(clusters)) == [0, 1, 2]
    r = t.iloc[0]
    assert r["draws"] == 3 and r["seeds"] == 4 and r["runs"] == 36
    assert r["noise_streams"] == "independent"


def test_draws_of_a_landscape_its_seed_does_not_change_are_one_landscape(monkeypatch):
    """A coherent spectral saddle with a constant bulk and W* = 0 has nothing to draw: its
    declared draws are one landscape, their runs plain seeds, and the fit gets no clusters."""
    frames = []
    for j in range(3):
        conds = [dict(optimizer="sgd", m=n, n=n, landscape_seed=7 + j, basis="coherent")
                 for n in DIMS]
        f = fabricate(conds, budget=10_000, time=lambda c, s: 20 * c.n / 8 + s)
        frames.append(f.assign(landscape_draw=j))
    df = pd.concat(frames, ignore_index=True)
    seen = []
    real = analysis.fit_exponent
    monkeypatch.setattr(analysis, "fit_exponent",
                        lambda samples, **kw: seen.append(samples) or real(samples, **kw))
    r = analysis.exponent_table(df, n_resamples=19).iloc[0]
    assert all(len(s) == 2 for s in seen[0].values())  # times and events, no clusters
    assert r["draws"] == 1 and r["seeds"] == 12 and r["runs"] == 36
    s = analysis.summarize(df)
    assert (s["draws"] == 1).all() and (s["seeds"] == 12).all()


def test_censored_dims_are_listed():
    df = _drawn(1)
    df.loc[df["D"] == 1024, ["status", "escaped", "escape_time", "steps"]] = (
        "censored", False, None, 10_000)
    r = analysis.exponent_table(df, n_resamples=19).iloc[0]
    assert r["censored_dims"] == "1024" and r["n_censored_dims"] == 1
    assert r["censored_runs"] == 4 and r["d_max"] == 1024


def test_tuned_selection_pools_draws():
    """One rate per condition for all its draws, not the best rate per draw."""
    frames = []
    for k in (1.0, 4.0):
        for j in range(2):
            conds = [dict(optimizer="sgd", m=n, n=n, learning_rate=1e-3 * k,
                          landscape_seed=j) for n in DIMS]
            # draw 0 prefers k=1, draw 1 prefers k=4; pooled, k=1 has the smaller KM median
            # (103 against 113): one rate for both draws
            f = fabricate(conds, protocol="tuned", time=lambda c, s, k=k, j=j: (
                (100 if k == 1 else 110) if j == 0 else (300 if k == 1 else 120)) + s)
            frames.append(f.assign(lr_multiplier=k, landscape_draw=j,
                                   run_id=f["run_id"] + f"-{k}-{j}"))
    kept = analysis.select_tuned(pd.concat(frames, ignore_index=True))
    assert set(kept["lr_multiplier"]) == {1.0} and len(kept) == 3 * 2 * 4
