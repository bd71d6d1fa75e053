"""``saddle results`` and ``saddle sweep`` with explicit axes and landscape draws: a swept
learning rate gives one exponent per rate; ``landscape_draws = k`` expands every grid point
into k draws whose rows carry ``landscape_draw``, which results pools and counts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_analysis_axes import _two_rates

from saddle.errors import SaddleInputError
from saddle.sweep import parse_spec, run_sweep
from saddle.sweep.store import Store


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "saddle", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_results_fits_each_learning_rate_apart(tmp_path):
    Store(tmp_path).create().write_batch(_two_rates().to_dict("records"))
    r = _cli("results", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    exps = json.loads(r.stdout)["exponents"]
    assert sorted(e["learning_rate"] for e in exps) == [0.1, 1000.0]
    for e in exps:
        assert abs(e["exponent"] - 0.5) < 0.03 and e["high"] - e["low"] < 0.1
        assert e["outcome"] == "fit" and e["censored_dims"] == "" and e["seeds"] == 4
        assert "dropped" not in e
    r = _cli("results", tmp_path)
    assert r.returncode == 0, r.stderr
    table = r.stdout[r.stdout.index("Dimension exponent"):]
    rows = [ln for ln in table.splitlines() if "0.1" in ln or "1000.0" in ln]
    assert len(rows) == 2 and all("fit" in ln and "64–1024" in ln for ln in rows), table
    assert "censored D" in table and "outcome" in table


SPEC = dict(seeds=2, optimizer="adamw", m=[8, 16], n=8, max_steps=3, landscape_seed=5,
            landscape_draws=3)


def test_landscape_draws_expand_every_point():
    spec = parse_spec(dict(SPEC))
    got = [(p.config.m, p.config.landscape_seed, p.landscape_draw) for p in spec.points]
    assert got == [(8, 5, 0), (8, 6, 1), (8, 7, 2), (16, 5, 0), (16, 6, 1), (16, 7, 2)]
    base0 = parse_spec(dict(SPEC, landscape_seed=0, landscape_draws=2))
    assert [p.config.landscape_seed for p in base0.points] == [0, 1, 0, 1]
    assert all(p.landscape_draw is None for p in parse_spec(dict(m=8, n=8)).points)


@pytest.mark.parametrize("bad, allowed", [
    (dict(landscape_draws=0), "an integer >= 1"),
    (dict(landscape_draws=[1, 2]), "an integer >= 1"),
    (dict(landscape_draws=2.0), "an integer >= 1"),
    (dict(landscape_draws=2, landscape_seed=[1, 2]), "not both"),
])
def test_landscape_draws_refusals_are_one_line(bad, allowed):
    with pytest.raises(SaddleInputError) as e:
        parse_spec(dict(m=8, n=8, seeds=1, **bad))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("spec: landscape_draws:") and allowed in msg


def test_both_forms_refused_by_the_cli(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text("m = 8\nn = 8\nseeds = 1\nlandscape_draws = 2\nlandscape_seed = [1, 2]\n")
    r = _cli("sweep", spec, "--out", tmp_path / "out")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "landscape_draws" in lines[0], r.stderr


def test_draw_rows_are_stored_and_pooled_by_results(tmp_path):
    rep = run_sweep(parse_spec(dict(SPEC)), tmp_path)
    assert rep.ran == 12
    df = Store(tmp_path).runs()
    assert sorted(df["landscape_draw"].unique()) == [0, 1, 2]
    assert set(zip(df["landscape_draw"], df["landscape_seed"], strict=True)) == {
        (0, 5), (1, 6), (2, 7)}
    r = _cli("results", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    groups = json.loads(r.stdout)["groups"]
    assert len(groups) == 2 and all(g["draws"] == 3 and g["seeds"] == 2 and g["runs"] == 6
                                    for g in groups)
    assert all("landscape_seed" not in g for g in groups)
