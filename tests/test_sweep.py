"""Sweeps: spec expansion, the results store, resume, crash safety, executors, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saddle.errors import SaddleInputError
from saddle.sweep import Store, load_spec, parse_spec, plan_runs, run_sweep

SMALL = dict(seeds=4, basis="coherent", max_steps=400, noise="isotropic", sigma=0.01)


def _rows(out) -> pd.DataFrame:
    """Stored rows without the timing column (timings differ between runs by nature)."""
    return Store(out).runs().drop(columns=["wall_s"])


# --- spec ----------------------------------------------------------------------------------


def test_product_zip_exclude_and_variants():
    spec = parse_spec(dict(
        SMALL, optimizer=["adamw", "sgd"], m=[8, 16], n=[8, 16], zip=[["m", "n"]],
        exclude=[dict(optimizer="sgd", m=16)],
    ))
    got = sorted((p.config.optimizer, p.config.m, p.config.n) for p in spec.points)
    assert got == [("adamw", 8, 8), ("adamw", 16, 16), ("sgd", 8, 8)]
    spec = parse_spec(dict(SMALL, m=8, n=8, variants=[
        dict(optimizer="muon", orthogonalizer="polar"),
        dict(optimizer="muon", orthogonalizer="newton_schulz"), dict(optimizer="adamw")]))
    assert sorted((p.config.optimizer, p.config.orthogonalizer) for p in spec.points) == [
        ("adamw", None), ("muon", "newton_schulz"), ("muon", "polar")]


def test_fields_that_do_not_apply_collapse():
    # orthogonalizer does not apply to AdamW: two axis values give one AdamW condition.
    spec = parse_spec(dict(SMALL, m=8, n=8, optimizer=["adamw", "muon"],
                           orthogonalizer=["polar", "newton_schulz"]))
    assert len(spec.points) == 3


def test_exclude_any_of_list():
    spec = parse_spec(dict(SMALL, m=8, n=8, sigma=[0.1, 0.2, 0.3],
                           exclude=[dict(sigma=[0.1, 0.3])]))
    assert [p.config.sigma for p in spec.points] == [0.2]


@pytest.mark.parametrize("bad, field", [
    (dict(m=[]), "m"),
    (dict(zip=[["m", "n"]], m=[8, 16], n=[8]), "zip"),
    (dict(zip=[["m", "x"]], m=[8, 16]), "x"),
    (dict(zip="m"), "zip"),
    (dict(lr_protocol="tunned"), "lr_protocol"),
    (dict(optimizr="adamw"), "optimizer"),
    (dict(seeds=[1, 2]), "seeds"),
    (dict(exclude=[{}]), "exclude"),
    (dict(exclude=[dict(m=8)], m=8), "exclude"),
    (dict(variants=[dict(optimizer=["a"])]), "variants.optimizer"),
    (dict(lr_grid=[1, -1]), "lr_grid"),
    (dict(trace_stride=0), "trace_stride"),
    (dict(m=[8, 8]), "m"),
    (dict(m={"a": 1}), "m"),
    (dict(m=[8, 0]), "m"),
    (dict(name=3), "name"),
    (dict(zip=[[["m"], "n"]], m=[8, 16], n=[8, 16]), "zip"),
    (dict(zip=[[{"m": 1}, "n"]], m=[8, 16], n=[8, 16]), "zip"),
])
def test_bad_specs_name_the_field(bad, field):
    with pytest.raises(SaddleInputError) as e:
        parse_spec(dict(SMALL, **bad))
    msg = str(e.value)
    assert field in msg and "\n" not in msg


def test_a_zip_group_of_non_names_is_a_one_line_error():
    with pytest.raises(SaddleInputError, match=r"^spec: zip: got \['m'\]; allowed: names of "
                       r"list-valued fields in this spec \(axes\)$"):
        parse_spec(dict(SMALL, zip=[[["m"], "n"]], m=[8, 16], n=[8, 16]))


def test_protocols_set_the_learning_rate():
    spec = parse_spec(dict(SMALL, m=16, n=16, optimizer=["adamw", "muon", "mano"],
                           lr_protocol=["fixed", "matched_rms", "tuned"], lr_grid=[0.5, 2],
                           target_rms=1e-3))
    runs = plan_runs(spec)
    by = {}
    for r in runs:
        by.setdefault((r.config.optimizer, r.lr_protocol), set()).add(r.config.learning_rate)
    assert by[("adamw", "fixed")] == {1e-3}
    assert sorted(by[("adamw", "tuned")]) == pytest.approx([5e-4, 2e-3])
    # matched_rms: nominal update RMS 1e-3. Mano's and AdamW's nominal RMS is 0.2 lr.
    (mano_lr,) = by[("mano", "matched_rms")]
    assert mano_lr == pytest.approx(5e-3)
    # Keller-scaled Muon on a square 16x16: RMS = lr / sqrt(16).
    (muon_lr,) = by[("muon", "matched_rms")]
    assert muon_lr == pytest.approx(4e-3)
    assert len({r.run_id for r in runs}) == len(runs) == 4 * (3 * 4)


def test_matched_rms_is_what_the_optimizer_does():
    """The nominal RMS per lr of Muon (full-rank momentum) and Mano is the measured one."""
    import jax
    import jax.numpy as jnp

    from saddle import Config
    from saddle.optimizers import from_config
    from saddle.sweep import update_rms_per_lr

    for opt, kw in (("muon", dict(orthogonalizer="polar")), ("muon", dict(
            orthogonalizer="polar", scaling="moonlight")), ("mano", {})):
        for m, n in ((16, 16), (32, 8), (8, 32)):
            c = Config.from_dict(optimizer=opt, m=m, n=n, learning_rate=1e-2, **kw)
            tx = from_config(c)
            W = jax.random.normal(jax.random.key(0), (m, n), jnp.float64)
            G = jax.random.normal(jax.random.key(1), (m, n), jnp.float64)
            u, _ = tx.update(G, tx.init(W), W)
            rms = float(jnp.sqrt(jnp.mean(u**2)))
            assert rms == pytest.approx(1e-2 * update_rms_per_lr(c), rel=1e-6), (opt, m, n)


# --- store, resume, executors ------------------------------------------------------------------


def test_resume_skips_finished_runs_and_batching_does_not_change_rows(tmp_path):
    spec = parse_spec(dict(SMALL, optimizer=["adamw", "muon"], m=[8, 16], n=8, seeds=6))
    a = run_sweep(spec, tmp_path / "a", batch_runs=4)
    assert (a.ran, a.skipped) == (24, 0)
    again = run_sweep(spec, tmp_path / "a")
    assert (again.ran, again.skipped) == (0, 24)
    run_sweep(spec, tmp_path / "b", batch_runs=1000)
    pd.testing.assert_frame_equal(_rows(tmp_path / "a"), _rows(tmp_path / "b"))
    # More seeds later: only the new ones run.
    more = parse_spec(dict(SMALL, optimizer=["adamw", "muon"], m=[8, 16], n=8, seeds=8))
    r = run_sweep(more, tmp_path / "a")
    assert (r.ran, r.skipped) == (8, 24)


def test_rows_have_every_config_field_and_results(tmp_path):
    from saddle.config import FIELDS

    spec = parse_spec(dict(SMALL, optimizer="sgd", m=8, n=8, max_steps=50, learning_rate=0.01))
    run_sweep(spec, tmp_path)
    df = Store(tmp_path).runs()
    for c in list(FIELDS) + ["escaped", "escape_time", "steps", "diverged", "final_loss",
                             "wall_s", "config_hash", "run_id", "signal_lost"]:
        assert c in df.columns, c
    cens = df[~df["escaped"]]
    assert cens["escape_time"].isna().all() and (cens["steps"] == 50).all()


def test_diverged_runs_are_recorded_not_escaped(tmp_path):
    # SGD far above its stability edge on a quartic-free saddle with a stiff bulk: NaN/overflow.
    spec = parse_spec(dict(SMALL, optimizer="sgd", m=8, n=8, learning_rate=50.0,
                           bulk_scale=10.0, radius=1e6, max_steps=300, dtype="float32"))
    rep = run_sweep(spec, tmp_path)
    df = Store(tmp_path).runs()
    assert rep.diverged == len(df) == 4
    assert (~df["escaped"]).all() and df["escape_time"].isna().all()
    assert (df["steps"] < 300).all()


def test_stability_edge_is_bracketed_and_cached(tmp_path):
    # radius 1e6: no run escapes, so a probe's verdict is about divergence alone (an early
    # escape counts as stable, and above the edge runs escape before they blow up).
    spec = parse_spec(dict(SMALL, optimizer="sgd", m=8, n=8, bulk_scale=1.0, learning_rate=0.1,
                           radius=1e6, lr_protocol="stability_edge",
                           edge_grid=[1, 4, 16, 64, 256]))
    run_sweep(spec, tmp_path)
    df = Store(tmp_path).runs()
    lr = df["learning_rate"].unique()
    assert len(lr) == 1
    assert (df["edge_lr"] == lr[0]).all() and not df["edge_capped"].any()
    (edge,) = [json.loads(p.read_text()) for p in (tmp_path / "edges").glob("*.json")]
    assert edge["edge_hi"] / edge["edge_lr"] <= 1.1 and not edge["capped"]
    # Bracketed: probes at the edge do not diverge, probes at the first diverging rate do.
    from saddle.engine import DIVERGED, run_batch

    c = spec.points[0].config.replace(max_steps=300, seeds=1)
    stable = run_batch([c.replace(learning_rate=lr[0])] * 4, list(range(10**6, 10**6 + 4)))
    above = run_batch([c.replace(learning_rate=edge["edge_hi"])] * 4,
                      list(range(10**6, 10**6 + 4)))
    assert not (stable.status == DIVERGED).any() and (above.status == DIVERGED).any()
    # Plain SGD on a bulk of curvature 1 oscillates without bound once lr > 2 (300-step
    # probes see it from 2.2 on).
    assert 1.9 <= lr[0] <= 2.2
    again = run_sweep(spec, tmp_path)
    assert again.ran == 0


def test_partial_and_temporary_files_are_never_read(tmp_path):
    spec = parse_spec(dict(SMALL, optimizer="adamw", m=8, n=8))
    run_sweep(spec, tmp_path)
    n = len(Store(tmp_path).runs())
    # A killed writer leaves a temporary (possibly truncated) file: it must be ignored.
    (tmp_path / "runs" / ".tmp-999999-x-part-a.parquet").write_bytes(b"PAR1 truncated")
    assert len(Store(tmp_path).runs()) == n
    Store(tmp_path).create()  # cleans temporaries of dead processes
    assert not list((tmp_path / "runs").glob(".tmp-*"))


def test_out_dir_check_is_safe_when_processes_start_at_once(tmp_path):
    """The writability probe of --out must not race with another sweep's probe in the same
    directory (a shared probe name let one process delete the other's and fail)."""
    from concurrent.futures import ThreadPoolExecutor

    from saddle.cli._common import ensure_out_dir

    def many(_):
        for _ in range(300):
            ensure_out_dir(tmp_path)

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(many, range(8)))  # re-raises the first SaddleInputError, if any
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".saddle-write-test")]


def _sweep_command(tmp_path, out_name: str, spec_text: str):
    """A spec file under ``tmp_path``, an empty output directory and the CLI command that
    sweeps the one into the other."""
    spec = tmp_path / "s.toml"
    spec.write_text(textwrap.dedent(spec_text))
    out = tmp_path / out_name
    out.mkdir()
    return spec, out, [sys.executable, "-m", "saddle", "sweep", str(spec), "--out", str(out),
                       "--quiet"]


def test_concurrent_sweeps_into_one_directory(tmp_path):
    """Two processes writing the same (overlapping) sweep at once: consistent, complete rows."""
    spec, out, cmd = _sweep_command(tmp_path, "out", """
        seeds = 6
        optimizer = ["adamw", "sgd", "sign_descent"]
        m = [8, 16]
        n = 8
        basis = "coherent"
        max_steps = 300
        batch_runs = 3
    """)
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]  # wait for both before asserting
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 0, err.decode()
    ref = tmp_path / "ref"
    run_sweep(load_spec(spec), ref)
    pd.testing.assert_frame_equal(_rows(out), _rows(ref))


@pytest.mark.slow
def test_sigkill_and_resume_gives_the_rows_of_an_uninterrupted_sweep(tmp_path):
    """3 optimizers x 4 shapes x 16 seeds, killed (SIGKILL) at random points and resumed."""
    spec, out, cmd = _sweep_command(tmp_path, "killed", """
        seeds = 16
        optimizer = ["adamw", "muon", "sgd"]
        m = [16, 32, 64, 128]
        n = [16, 32, 64, 128]
        zip = [["m", "n"]]
        basis = "coherent"
        max_steps = 1500
        batch_runs = 8
    """)
    rng = np.random.default_rng(int(time.time()))
    for _attempt in range(3):  # kill at random points, possibly several times
        p = subprocess.Popen(cmd, start_new_session=True)
        deadline = time.time() + 240
        target = int(rng.integers(1, 12))
        while time.time() < deadline and p.poll() is None:
            if len(list((out / "runs").glob("part-*.parquet"))) >= target:
                break
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0, 0.5)))
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    partial = len(Store(out).runs())
    r = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["skipped"] == partial and summary["total"] == 192
    ref = tmp_path / "ref"
    run_sweep(load_spec(spec), ref)
    got, want = _rows(out), _rows(ref)
    assert len(got) == 192
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.slow
def test_dask_executor_gives_identical_rows(tmp_path):
    spec = parse_spec(dict(SMALL, optimizer=["adamw", "muon", "sgd"], m=[8, 16], n=[8, 16],
                           zip=[["m", "n"]], seeds=6, trace_stride=10))
    run_sweep(spec, tmp_path / "local")
    run_sweep(spec, tmp_path / "dask", executor="dask", workers=2)
    pd.testing.assert_frame_equal(_rows(tmp_path / "local"), _rows(tmp_path / "dask"))
    a = Store(tmp_path / "local").traces().sort_values(["run_id", "t"]).reset_index(drop=True)
    b = Store(tmp_path / "dask").traces().sort_values(["run_id", "t"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


# --- results and plots through the CLI ---------------------------------------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("swept")
    spec = parse_spec(dict(SMALL, optimizer=["adamw", "muon"], m=[8, 16], n=[8, 16],
                           zip=[["m", "n"]], sigma=[0.01, 0.1], seeds=8, max_steps=600,
                           trace_stride=20))
    run_sweep(spec, out)
    return out


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "saddle", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_results_json_matches_the_stored_runs(swept):
    from saddle.stats import km_median

    r = _cli("results", swept, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    df = Store(swept).runs()
    assert sum(g["runs"] for g in out["groups"]) == len(df) == 2 * 2 * 2 * 8
    g = next(g for g in out["groups"] if g["optimizer"] == "muon" and g["m"] == 16
             and g["sigma"] == 0.01)
    sub = df[(df.optimizer == "muon") & (df.m == 16) & (df.sigma == 0.01)]
    t = np.where(sub.escaped, sub.escape_time.fillna(0), sub.steps)
    assert g["median"] == km_median(t, sub.escaped.to_numpy()).estimate
    assert g["escaped"] == int(sub.escaped.sum())
    assert {e["optimizer"] for e in out["exponents"]} == {"adamw", "muon"}
    table = _cli("results", swept)
    assert table.returncode == 0 and "KM median" in table.stdout


@pytest.mark.parametrize("kind", ["dimension", "gap", "phase", "trajectory"])
def test_every_plot_kind_writes_png_and_svg(swept, kind, tmp_path):
    target = tmp_path / f"{kind}.png"
    r = _cli("plot", swept, "--kind", kind, "--output", target)
    assert r.returncode == 0, r.stderr
    png = target.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert target.with_suffix(".svg").read_text().lstrip().startswith("<?xml")


def test_gap_plot_draws_one_series_per_optimizer_and_dimension(swept):
    from saddle.plots import plot_gap

    df = Store(swept).runs()
    fig = plot_gap(df, x="sigma")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    # 2 optimizers x 2 shapes: the shapes are separate lines, never pooled into one median
    assert len(labels) == 4 and sum("D=256" in lab for lab in labels) == 2, labels
    assert len(fig.axes[1].get_lines()) == 4


@pytest.mark.parametrize("args, field", [
    (["results", "/nonexistent/dir"], "DIR"),
    (["plot", "{swept}", "--kind", "histogram"], "--kind"),
    (["plot", "{swept}", "--kind", "phase", "--metric", "mean"], "--metric"),
    (["plot", "{swept}", "--kind", "gap", "--x", "sigmaa"], "--x"),
    (["plot", "{swept}", "--kind", "trajectory", "--runs", "0"], "--runs"),
    (["results", "{swept}", "--by", "optimiser"], "--by"),
    (["sweep", "{spec}", "--out", "/nonexistent/parent/dir"], "--out"),
    (["sweep", "{spec}", "--out", "{tmp}/o", "--executor", "slurm"], "--executor"),
    (["sweep", "{spec}", "--out", "{tmp}/o", "--workers", "0"], "--workers"),
    (["sweep", "{tmp}/missing.toml", "--out", "{tmp}/o"], "config"),
    (["sweep", "{badspec}", "--out", "{tmp}/o"], "m"),
])
def test_cli_errors_are_one_line(swept, tmp_path, args, field):
    spec = tmp_path / "s.toml"
    spec.write_text("m = 8\nn = 8\nseeds = 1\nmax_steps = 10\n")
    bad = tmp_path / "bad.toml"
    bad.write_text("m = []\n")
    args = [a.format(swept=swept, spec=spec, tmp=tmp_path, badspec=bad) for a in args]
    r = _cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in r.stderr


def test_unwritable_out_is_rejected(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    spec = tmp_path / "s.toml"
    spec.write_text("m = 8\nn = 8\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = _cli("sweep", spec, "--out", ro)
        assert r.returncode == 2 and "--out" in r.stderr and "not writable" in r.stderr
    finally:
        ro.chmod(0o700)


def test_spec_files_in_simulations_parse():
    for path in sorted(Path(__file__).parent.parent.joinpath("simulations").glob("*.toml")):
        spec = load_spec(path)
        assert spec.points, path


# --- fuzzing the spec parser -----------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from saddle.config import FIELDS  # noqa: E402
from saddle.sweep.spec import SPEC_KEYS  # noqa: E402

_fuzz_keys = st.sampled_from(sorted(set(FIELDS) | set(SPEC_KEYS)) + ["optimiser", "m_"])
_fuzz_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70), st.floats(allow_nan=True),
    st.sampled_from(["adamw", "muon", "sgd", "coherent", "fixed", "tuned", "m", "n", ""]),
)
_fuzz_value = st.one_of(
    _fuzz_scalar,
    st.lists(_fuzz_scalar, max_size=3),
    st.lists(st.lists(st.sampled_from(["m", "n", "sigma", "x"]), max_size=3), max_size=2),
    st.lists(st.dictionaries(_fuzz_keys, _fuzz_scalar, max_size=2), max_size=2),
    st.dictionaries(_fuzz_keys, _fuzz_scalar, max_size=2),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_fuzz_keys, _fuzz_value, max_size=6), st.booleans())
def test_fuzz_spec_parser_accepts_or_names_the_field(data, quick):
    """Any spec table either parses into a plan of valid configs or fails with one line."""
    try:
        spec = parse_spec(dict(data), quick=quick)
        runs = plan_runs(spec) if len(spec.points) * spec.seeds <= 2000 else []
    except SaddleInputError as e:
        assert "\n" not in str(e).strip() and "Traceback" not in str(e)
    else:
        assert spec.seeds >= 1
        assert all(r.config.m >= 1 and r.config.n >= 1 for r in runs)


def test_a_worker_batch_runs_under_the_planners_x64_setting_without_changing_its_own():
    """execute_batch scopes the planner's x64 setting to the batch (a Dask worker is another
    process): the process-wide setting is the same afterwards, and a float32 SGD batch gives
    the same rows either way."""
    from saddle import Config
    from saddle.numerics import x64_enabled
    from saddle.sweep.runner import execute_batch

    before = x64_enabled()
    c = Config.from_dict(dict(m=8, n=8, optimizer="sgd", seeds=2, max_steps=50,
                              dtype="float32", backend="jax"))
    flipped = execute_batch([c, c], [0, 1], None, x64=not before)
    assert flipped["x64"] is (not before)  # the batch saw the planner's setting
    assert x64_enabled() is before  # and the process kept its own
    same = execute_batch([c, c], [0, 1], None, x64=None)
    assert same["x64"] is before
    for key in ("status", "stop_step", "final_loss", "final_distance"):
        np.testing.assert_array_equal(flipped[key], same[key])
