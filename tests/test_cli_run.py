"""`saddle run` through the real console script."""

import json
import math
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


ALL_OPTIMIZERS = ["adamw", "muon", "mano", "sgd", "sign_descent", "normalized_gd"]


@pytest.mark.parametrize("opt", ALL_OPTIMIZERS)
def test_plain_run_with_defaults_escapes_for_every_optimizer(opt):
    r = subprocess.run([sys.executable, "-m", "saddle", "run", "--optimizer", opt, "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["runs"] and all(x["escaped"] and not x["diverged"] for x in out["runs"])
    assert all(x["escape_time"] <= out["config"]["max_steps"] for x in out["runs"])


@pytest.mark.slow
@pytest.mark.parametrize("opt", ALL_OPTIMIZERS)
@pytest.mark.parametrize("m, n", [(64, 64), (128, 32), (1024, 1024)])
def test_every_optimizer_runs_at_the_issue_shapes(opt, m, n):
    from saddle import Config
    from saddle.simulate import simulate

    steps = 5 if m * n > 10**5 else 50
    res = simulate(Config.from_dict(optimizer=opt, m=m, n=n, max_steps=steps, seeds=2))
    assert len(res.runs) == 2
    assert all(not r.diverged and r.steps <= steps and math.isfinite(r.final_loss)
               for r in res.runs)


def test_run_warns_on_stderr_when_float32_loses_the_signal():
    args = ["--optimizer", "sgd", "--m", "16", "--n", "16", "--basis", "coherent",
            "--noise", "none", "--gamma", "0.01", "--learning-rate", "0.01",
            "--init-escape", "1e-3", "--saddle-point", "random", "--saddle-point-scale", "1e4",
            "--max-steps", "500", "--seeds", "2", "--json"]
    r = subprocess.run([sys.executable, "-m", "saddle", "run", *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert all(x["signal_lost"] for x in json.loads(r.stdout)["runs"])
    assert "2 of 2 runs lost the escape signal to float32 rounding" in r.stderr
