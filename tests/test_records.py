"""Per-run records: the one mapping from engine output to stored results, and stored rows back
to configs."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd

from saddle import Config
from saddle.engine import CENSORED, DIVERGED, ESCAPED, SIGNAL_LOST_FRACTION, BatchOutput
from saddle.records import batch_arrays, config_from_row, run_records
from saddle.simulate import RunResult


def _output(lost=True) -> BatchOutput:
    return BatchOutput(
        status=np.array([ESCAPED, DIVERGED, CENSORED]),
        stop_step=np.array([17, 5, 100]),
        final_loss=np.array([-0.5, np.nan, np.inf], np.float32),
        final_distance=np.array([1.0, np.inf, 0.25]),
        wall_s=3.0, compile_s=0.5, traces=None,
        lost_fraction=np.array([0.0, 0.1, SIGNAL_LOST_FRACTION]) if lost else None,
    )


def test_records_name_the_status_and_keep_only_finite_numbers():
    esc, div, cens = run_records(batch_arrays(_output()))
    assert (esc["status"], div["status"], cens["status"]) == ("escaped", "diverged", "censored")
    assert esc["escaped"] and not div["escaped"] and not cens["escaped"]
    assert div["diverged"] and not esc["diverged"] and not cens["diverged"]
    assert (esc["escape_time"], div["escape_time"], cens["escape_time"]) == (17, None, None)
    assert (esc["steps"], div["steps"], cens["steps"]) == (17, 5, 100)
    assert esc["final_loss"] == -0.5 and div["final_loss"] is None and cens["final_loss"] is None
    assert div["final_distance"] is None and cens["final_distance"] == 0.25
    assert [r["signal_lost"] for r in (esc, div, cens)] == [False, False, True]
    assert cens["rounding_lost_frac"] == SIGNAL_LOST_FRACTION
    assert all(r["wall_s"] == 1.0 for r in (esc, div, cens))
    assert all(type(r[k]) is bool for r in (esc, div, cens)
               for k in ("escaped", "diverged", "signal_lost"))


def test_batch_arrays_are_picklable_and_unreported_rounding_loss_is_none():
    arrays = batch_arrays(_output(lost=False))
    assert pickle.loads(pickle.dumps(arrays))["stop_step"].tolist() == [17, 5, 100]
    records = run_records(arrays)
    assert [r["signal_lost"] for r in records] == [False] * 3
    assert [r["rounding_lost_frac"] for r in records] == [None] * 3


def test_run_results_are_built_from_the_records():
    runs = [RunResult.from_record(s, r)
            for s, r in zip([7, 8, 9], run_records(batch_arrays(_output())), strict=True)]
    assert [r.status for r in runs] == ["escaped", "diverged", "censored"]
    assert runs[0] == RunResult(seed=7, escaped=True, escape_time=17, steps=17, diverged=False,
                                final_loss=-0.5, wall_s=1.0, signal_lost=False)


def test_config_from_a_stored_row_with_numpy_scalars_and_missing_values():
    configs = [Config.from_dict(dict(optimizer="adamw", m=8, n=16, max_steps=300, seeds=4)),
               Config.from_dict(dict(optimizer="muon", m=8, n=8, sigma=0.1, seeds=4))]
    df = pd.DataFrame([c.to_dict() for c in configs])  # None in mixed columns: NaN
    for i, c in enumerate(configs):
        row = df.iloc[i]
        assert isinstance(row["max_steps"], np.integer)
        got = config_from_row(row)
        assert got.config_hash() == c.config_hash() and got.seeds == 1
        assert config_from_row(row.to_dict()).config_hash() == c.config_hash()
    nullable = df.astype({"ns_steps": "Int64"}).iloc[0]
    assert nullable["ns_steps"] is pd.NA
    assert config_from_row(nullable).config_hash() == configs[0].config_hash()
    wide = config_from_row(df.iloc[0], m=32, n=32)
    assert (wide.m, wide.n) == (32, 32) and wide.config_hash() == configs[0].replace(
        m=32, n=32).config_hash()
    assert config_from_row({"m": 4, "sigma": math.nan}).sigma == Config.from_dict({}).sigma
