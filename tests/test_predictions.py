"""The theory's exponent beside a regime-map cell (saddle.predictions)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from saddle.config import Config
from saddle.predictions import predicted_exponent

FLAT = dict(landscape="spectral", gamma=0.0, radius=0.3, noise="isotropic", sigma=0.01,
            bulk_scale=1.0, basis="coherent", max_steps=3000, init="saddle")


def _cell(optimizer: str, sizes=(16, 32, 64), lr=None, **over) -> pd.DataFrame:
    rows = []
    for n in sizes:
        c = Config.from_dict(dict(FLAT, optimizer=optimizer, m=n, n=n, **over))
        if lr is not None:
            c = c.replace(learning_rate=lr(n) if callable(lr) else lr)
        rows.append(c.to_dict())
    return pd.DataFrame(rows)


def test_flat_saddle_at_a_fixed_rate_sgd_is_dimension_free_and_muon_pays_sqrt_d():
    """At gamma = 0 and a fixed rate, SGD's walk along E has a D-free variance rate
    (isotropic noise: sigma_E = sigma), while Muon's is 1/max(m, n) (Haar moment): the
    predicted exponents are 0 and 1/2, whatever the budget (the runs would be censored)."""
    sgd = predicted_exponent(_cell("sgd", lr=0.05))
    assert sgd["theory_result"] == "sgd_diffusive_median"
    assert abs(sgd["theory_b"]) < 1e-9
    assert sgd["theory_tau_max_d"] > 3000  # the estimate says why such a cell is censored
    muon = predicted_exponent(_cell("muon", lr=0.005, orthogonalizer="polar"))
    assert muon["theory_result"] == "muon_diffusive_median"
    assert muon["theory_b"] == pytest.approx(0.5, abs=0.05)


def test_a_rate_that_falls_like_d_to_the_minus_quarter_adds_half_to_sgd():
    """lr ~ D^(-1/4) (a matched spectral step for a dense update): tau ~ 1/lr^2 ~ D^(1/2),
    up to the overshoot correction of the exit radius (a step of sd h ~ lr)."""
    got = predicted_exponent(_cell("sgd", lr=lambda n: 0.05 * (16 / n) ** 0.5))
    assert got["theory_b"] == pytest.approx(0.5, abs=0.01)


def test_cells_no_estimate_covers_get_no_prediction():
    # heavy-ball SGD: every SGD law assumes plain SGD (momentum 0)
    assert predicted_exponent(_cell("sgd", gamma=0.1, momentum=0.9))["theory_result"] == ""
    one_shape = predicted_exponent(_cell("sgd", sizes=(16,), lr=0.05))
    assert math.isnan(one_shape["theory_b"]) and one_shape["theory_result"] == ""
    assert predicted_exponent(pd.DataFrame())["theory_result"] == ""


def test_a_closed_quartic_window_is_predicted_censored():
    """The quartic cap's estimate has no value where the bulk's drift closes the escape
    window; the cell is then predicted censored (inf) at that D, with no exponent, and
    covered with a finite exponent where the window stays open."""
    opened = predicted_exponent(_cell("sgd", quartic=0.02, gamma=0.1, radius=1.0, lr=0.05))
    assert opened["theory_result"] == "quartic_sgd_escape"
    assert math.isfinite(opened["theory_b"]) and math.isfinite(opened["theory_tau_max_d"])
    closed = predicted_exponent(_cell("sgd", quartic=0.08, gamma=0.1, radius=1.0, lr=0.1,
                                      sigma=0.05))
    assert closed["theory_result"] == "quartic_sgd_escape", closed
    assert closed["theory_tau_max_d"] == math.inf and math.isnan(closed["theory_b"])
