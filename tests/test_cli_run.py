"""`saddle run` through the real console script."""

import json
import subprocess
import sys

import pytest


def saddle(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "saddle", *args], capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def test_run_json_has_config_hash_runs_and_summary():
    out = saddle("run", "--optimizer", "muon", "--m", "64", "--n", "64", "--seeds", "4", "--json")
    doc = json.loads(out.stdout)
    assert set(doc) >= {"config", "config_hash", "runs", "summary"}
    assert doc["config"]["optimizer"] == "muon" and doc["config"]["m"] == 64
    assert doc["config"]["learning_rate"] == 0.02  # normalized: the optimizer's default
    assert len(doc["runs"]) == 4
    assert [r["seed"] for r in doc["runs"]] == [0, 1, 2, 3]
    for r in doc["runs"]:
        assert set(r) >= {"seed", "escaped", "escape_time", "steps", "diverged", "final_loss",
                          "wall_s"}
        assert r["escaped"] == (r["escape_time"] is not None)
    assert set(doc["summary"]) >= {"success_rate", "median_escape_time"}


def test_config_file_and_flags_combine(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('optimizer = "sgd"\nm = 8\nn = 4\nmax_steps = 7\ngamma = 0.0\nnoise = "none"\n')
    doc = json.loads(saddle("run", "--config", str(p), "--n", "6", "--json").stdout)
    assert doc["config"]["optimizer"] == "sgd"
    assert (doc["config"]["m"], doc["config"]["n"]) == (8, 6)
    assert doc["runs"][0]["steps"] == 7 and not doc["runs"][0]["escaped"]


def test_table_output_is_readable():
    out = saddle("run", "--optimizer", "sgd", "--m", "8", "--n", "8", "--seeds", "2").stdout
    assert "sgd" in out and "median escape time" in out


@pytest.mark.parametrize(
    "args, field",
    [
        (["--m", "0"], "m"),
        (["--optimizer", "adam"], "optimizer"),
        (["--learning-rate", "nan"], "learning_rate"),
        (["--escape-rank", "9", "--m", "8", "--n", "8"], "escape_rank"),
        (["--config", "/nonexistent.toml"], "config"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, field):
    proc = saddle("run", *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert field in lines[0] and "Traceback" not in proc.stderr
