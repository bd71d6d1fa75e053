"""The CLI against hostile stores and paths: empty and unwritable outputs, stores where
nothing escaped, damaged stores. Every failure is one line on stderr with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from saddle.sweep import parse_spec, run_sweep


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "saddle", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _one_line_error(r, field: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in r.stderr, r.stderr


@pytest.fixture(scope="module")
def no_escape(tmp_path_factory):
    """A store where no run escaped (3 steps): 2 sigmas x 2 shapes x 2 seeds, with traces."""
    out = tmp_path_factory.mktemp("no_escape")
    spec = parse_spec(dict(seeds=2, optimizer="sgd", m=[8, 16], n=8, sigma=[0.01, 0.1],
                           basis="coherent", max_steps=3, trace_stride=1))
    rep = run_sweep(spec, out)
    assert rep.ran == 8 and rep.escaped == 0
    return out


@pytest.mark.parametrize("args", [
    ["sweep", "{spec}", "--out", ""],
    ["sweep", "{spec}", "--out", "   "],
    ["reproduce", "--out", ""],
])
def test_empty_out_is_an_error_not_the_current_directory(tmp_path, args):
    spec = tmp_path / "s.toml"
    spec.write_text("m = 8\nn = 8\nseeds = 1\nmax_steps = 10\n")
    r = subprocess.run([sys.executable, "-m", "saddle", *[a.format(spec=spec) for a in args]],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    _one_line_error(r, "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # nothing written here


@pytest.mark.parametrize("output, why", [
    ("", "--output"),
    ("{tmp}/missing/dir/fig.png", "does not exist"),
    ("{tmp}/file.txt/fig.png", "does not exist"),
    ("{tmp}/fig.pdf", "--output"),
    ("{tmp}", "--output"),
])
def test_plot_output_into_a_bad_place_is_one_line(no_escape, tmp_path, output, why):
    (tmp_path / "file.txt").write_text("x")
    r = _cli("plot", no_escape, "--kind", "dimension", "--output", output.format(tmp=tmp_path))
    _one_line_error(r, why)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc (Linux)")
def test_plot_output_into_an_unwritable_folder_is_one_line(no_escape):
    # /proc accepts no new files, for root too (a chmod-ed folder does not stop root)
    _one_line_error(_cli("plot", no_escape, "--kind", "dimension", "--output",
                         "/proc/fig.png"), "not writable")


def test_plots_of_a_store_where_nothing_escaped(no_escape, tmp_path):
    """Every kind draws what it can: censored medians become lower bounds at the budget.
    One ``saddle plot DIR`` draws every kind the store supports (two D, two sigmas, traces:
    all four; gap's x is sigma, the first varying field), on a copy (the store is shared by
    the module), in one process: a kind that fails is a warning on stderr, so stderr must be
    empty. ``--kind K --output F`` is covered by the bad-place tests above."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(no_escape, store)
    r = _cli("plot", store)
    assert r.returncode == 0 and not r.stderr, r.stderr
    for kind in ("dimension", "phase", "trajectory", "gap"):
        assert (store / "plots" / f"{kind}.png").stat().st_size > 0, kind


def test_results_and_plot_go_on_past_a_damaged_part(no_escape, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(no_escape, out)
    (out / "runs" / "part-garbage.parquet").write_bytes(b"PAR1 not really")
    victim = sorted((out / "runs").glob("part-*~*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    r = _cli("results", out, "--json")
    assert r.returncode == 0, r.stderr
    warns = r.stderr.strip().splitlines()
    assert len(warns) == 2 and all(w.startswith("saddle: warning: runs/part-") for w in warns)
    assert {p.name for p in (out / "quarantine" / "runs").iterdir()} == {
        "part-garbage.parquet", victim.name}
    r = _cli("plot", out, "--kind", "phase")  # default output: DIR/plots/phase.png
    assert r.returncode == 0 and not r.stderr, r.stderr
    assert (out / "plots" / "phase.png").exists()


def test_results_on_a_store_of_only_foreign_files_is_one_line(tmp_path):
    import pandas as pd

    (tmp_path / "runs").mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "runs" / "part-a.parquet")
    r = _cli("results", tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 2, r.stderr
    assert lines[0].startswith("saddle: warning:") and "no column run_id" in lines[0]
    assert lines[1].startswith("saddle: error:") and "no finished runs" in lines[1]


@pytest.mark.parametrize("argv, code, stream", [
    (["results", "MISSING_DIR"], 2, "stderr"),
    (["--version"], 0, "stdout"),
])
def test_the_program_exits_with_mains_code_and_skips_native_teardown(tmp_path, argv, code, stream):
    """The program leaves by os._exit (pyarrow's thread pools can abort at interpreter
    teardown), yet with main's exit code and every line it printed: an atexit hook, which
    only an ordinary teardown runs, stays silent."""
    script = ("import atexit, sys\n"
              "atexit.register(lambda: print('TEARDOWN', file=sys.stderr))\n"
              f"sys.argv = ['saddle', *{argv!r}]\n"
              "from saddle.cli import entry\n"
              "entry()\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == code, r.stderr
    assert "TEARDOWN" not in r.stderr
    out = getattr(r, stream)
    assert ("MISSING_DIR" in out) if code else out.startswith("saddle ")
