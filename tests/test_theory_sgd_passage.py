"""sgd_first_passage_median: the scalar escape recursion, sampled, against the engine (low-rank
noise turned onto E, an unstable bulk included), against the asymptotic SGD law (Gaussian
noise, R >> s) and its assumptions where they hold and where they fail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from saddle import Config, theory
from saddle.simulate import simulate
from saddle.theory import sgd_passage as sp_mod
from saddle.theory.noise_facts import noise_facts
from saddle.theory.sgd import SGD_MEAN, SGD_SD

RES = theory.RESULTS["sgd_first_passage_median"]

ALIGNED = dict(optimizer="sgd", noise="lowrank", sigma=0.05, noise_coherence=1.0,
               noise_rank=1, gamma=0.1, radius=1.0, max_steps=2000)

ASSUMPTION_NAMES = ["sgd", "rank_one", "no_quartic", "no_decay", "saddle_init", "projection",
                    "sampled_noise", "quiet_bulk", "budget"]


def test_median_against_the_engine_lowrank_onto_e(seeds=64):
    """16 x 16, structured basis, eta lambda = 2.26 > 2: an unstable bulk that the aligned
    noise never excites. Sign test: P(tau < est) <= 1/2 <= P(tau <= est) for the true median,
    within 3 binomial standard errors plus the estimate's own MC error. Then gamma = 0.01 (one
    compilation for both): the escape is slow enough for the rounding residual on the
    unstable bulk to blow up; quiet_bulk fails and the engine does diverge."""
    c = Config.from_dict(**ALIGNED, m=16, n=16, basis="structured", learning_rate=2.26,
                         seeds=seeds)
    assert RES.assumptions_hold(c)
    est = RES.evaluate(c)
    res = simulate(c)
    assert not any(r.diverged for r in res.runs)
    tau = np.array([r.escape_time if r.escaped else np.inf for r in res.runs], float)
    tol = 3 * math.sqrt(0.25 / seeds) + 0.05
    assert np.mean(tau < est) <= 0.5 + tol
    assert np.mean(tau <= est) >= 0.5 - tol
    slow = c.replace(gamma=0.01)
    assert [a.name for a, ok in RES.check(slow) if not ok] == ["quiet_bulk"]
    assert any(r.diverged for r in simulate(slow).runs)


def test_gaussian_case_against_the_sgd_law():
    """Isotropic noise with R/s = 200 (far_radius holds): the sampled mean and sd match
    sgd_escape_mean/sd, and the median matches the law's, ceil(ln(R/(z s))/ln g) with z the
    median of |N(0, 1)|."""
    c = Config.from_dict(optimizer="sgd", m=16, n=16, noise="isotropic", sigma=0.01,
                         gamma=0.2, learning_rate=0.1, radius=1.0, max_steps=20000)
    assert SGD_MEAN.assumptions_hold(c) and RES.assumptions_hold(c)
    law = sp_mod.noise_law(c)
    tau = sp_mod.passage_times(law, 0.1, 0.2, 1.0, 0.0, 20000, paths=4000, seed=3)
    assert np.isfinite(tau).all()
    assert abs(tau.mean() - SGD_MEAN.evaluate(c)) <= 4 * tau.std() / math.sqrt(tau.size) + 0.5
    assert tau.std() == pytest.approx(SGD_SD.evaluate(c), rel=0.08)
    g = 1.02
    s = 0.1 * 0.01 / math.sqrt(g * g - 1)
    law_median = math.ceil(math.log(1.0 / (0.6744897501960817 * s)) / math.log(g))
    paths = sp_mod.path_count(law, 0.1, 0.2, 1.0, 40000)
    mc_err = 1.25 * SGD_SD.evaluate(c) / math.sqrt(paths)
    assert abs(RES.evaluate(c) - law_median) <= 4 * mc_err + 1


def test_aligned_lowrank_step_law_matches_noise_facts():
    """The sampled xi has mean 0 and variance noise_facts' Var <Xi, E_0> (sigma^2 at
    coherence 1, from its Beta-law formula), and |xi| concentrates near sigma."""
    c = Config.from_dict(**ALIGNED, m=32, n=24)
    law = sp_mod.noise_law(c)
    assert law == ("lowrank_e", 0.05, 32, 24)
    xi = sp_mod.sample_xi(law, np.random.default_rng(0), (200_000,))
    var = noise_facts(c).e_variance[0]
    se = math.sqrt(np.var(xi**2) / xi.size)
    assert abs(np.mean(xi**2) - var) <= 4 * se
    assert abs(xi.mean()) <= 4 * math.sqrt(var / xi.size)
    assert abs(np.median(np.abs(xi)) / 0.05 - 1) < 0.05


def test_deterministic_and_cached():
    c = Config.from_dict(**ALIGNED, m=32, n=32, basis="coherent", learning_rate=1.1)
    v = RES.evaluate(c)
    sp_mod.passage_median.cache_clear()
    assert RES.evaluate(c) == v
    assert RES.evaluate(c.replace(basis="structured", seed=5)) == v


def test_holds_on_the_map_cells():
    """The six low-rank SGD cells' configs (D = 32^2, 128^2 at their protocol rates)."""
    for m, lr in [(32, 0.128), (128, 0.512), (32, 1.131371), (128, 2.262742)]:
        for basis in ("coherent", "structured"):
            c = Config.from_dict(**{**ALIGNED, "max_steps": 3000}, m=m, n=m, basis=basis,
                                 learning_rate=lr)
            assert [a.name for a in RES.assumptions] == ASSUMPTION_NAMES
            assert RES.assumptions_hold(c), [a.name for a, ok in RES.check(c) if not ok]


@pytest.mark.parametrize("change, fails", [
    (dict(noise_coherence=0.5), "sampled_noise"),
    (dict(noise_rank=2), "sampled_noise"),
    (dict(noise="student_t", noise_df=3.0, sigma=0.01), "sampled_noise"),
    (dict(noise="isotropic", sigma=0.01, learning_rate=2.5), "quiet_bulk"),
    (dict(momentum=0.9), "sgd"),
    (dict(quartic=0.05), "no_quartic"),
    (dict(weight_decay=0.01), "no_decay"),
    (dict(escape_rank=2), "rank_one"),
    (dict(init="random"), "saddle_init"),
    (dict(escape="loss", loss_drop=0.01), "projection"),
    (dict(max_steps=20), "budget"),
])
def test_assumptions_fail_where_they_should(change, fails):
    base = Config.from_dict(**ALIGNED, m=16, n=16, basis="coherent", learning_rate=0.5)
    assert RES.assumptions_hold(base)
    failed = [a.name for a, ok in RES.check(base.replace(**change)) if not ok]
    assert fails in failed, failed
