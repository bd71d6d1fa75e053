"""Hostile input to every command, in-process: each case ends in exit code 2 with exactly one
stderr line (``saddle: error: ...``) naming the field or flag, and no traceback; or, where
marked, in a clean run. Plus hypothesis fuzzing of ``saddle run``'s flags.

The commands are called through :func:`saddle.cli.main`, which returns the exit code, so the
suite needs no subprocess per case. The tallies (inputs tried, clean, unclean) are printed at
the end of the module (``pytest -s`` shows them).
"""

from __future__ import annotations

import collections
import string
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saddle.cli import main
from saddle.config import FIELDS, MAX_CONFIG_BYTES

TALLY: collections.Counter = collections.Counter()


def _call(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's --help and --version
        rc = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


def _expect_one_line(rc: int, err: str, needle: str) -> bool:
    lines = err.strip().splitlines()
    return (rc == 2 and len(lines) == 1 and lines[0].startswith("saddle: error: ")
            and needle in lines[0] and "Traceback" not in err)


def check_error(capsys, argv, needle):
    TALLY["tried"] += 1
    rc, out, err = _call(capsys, argv)
    ok = _expect_one_line(rc, err, needle)
    TALLY["clean" if ok else "unclean"] += 1
    assert ok, (argv, rc, err)
    assert out == "", out


# --- fixtures: files and a small store --------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    f = {}

    def put(name, content):
        p = d / name
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        f[name] = p

    put("ok.toml", "m = 4\nn = 4\nseeds = 1\nmax_steps = 2\nbasis = 'coherent'\n")
    put("big.toml", "# " + "x" * MAX_CONFIG_BYTES + "\n")
    put("nested.toml", "a = " + "[" * 5000 + "]" * 5000 + "\n")
    put("nan.toml", "sigma = nan\n")
    put("inf.toml", "gamma = inf\n")
    put("list.toml", "m = [1, 2]\n")
    put("table.toml", "[m]\nx = 1\n")
    put("date.toml", "m = 1979-05-27\n")
    put("binary.toml", b"\xff\xfe\x00m")
    put("bad.toml", "m = = 3\n")
    put("unknown.toml", "optimzer = 'muon'\n")
    put("huge_m.toml", "m = 40000\nn = 40000\n")
    put("fullwidth.toml", "m = '１２'\n")
    put("notafile.png", "x")
    # sweep specs
    axis = ",".join(map(str, range(1, 401)))
    put("grid.toml", f"m = [{axis}]\nn = [{axis}]\n")
    put("runs.toml", "seeds = 1000000\nm = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]\n")
    put("huge.toml", "m = 40000\nn = 40000\nseeds = 1\n")
    put("protocol.toml", "m = 4\nn = 4\nlr_protocol = 'best'\n")
    put("stride.toml", "m = 4\nn = 4\ntrace_stride = 0\n")
    put("batchruns.toml", "m = 4\nn = 4\nbatch_runs = 'x'\n")
    put("spec_unknown.toml", "m = 4\nn = 4\nsigmaa = 0.1\n")
    put("exclude_all.toml", "m = 4\nn = 4\nexclude = [{ m = 4 }]\n")
    put("spec_dtype.toml", "m = 4\nn = 4\nsigma = [0.1, 1e300]\n")
    put("spec_fullwidth.toml", "m = ['１２']\nn = 4\n")
    f["dir"] = d
    return f


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small finished sweep: 2 shapes x 2 seeds, 2 steps (nothing escapes)."""
    from saddle.numerics import enable_x64
    from saddle.sweep import parse_spec, run_sweep

    enable_x64()
    out = tmp_path_factory.mktemp("store")
    spec = parse_spec(dict(seeds=2, optimizer="sgd", m=[4, 8], n=4, basis="coherent",
                           max_steps=2))
    run_sweep(spec, out)
    return out


# --- saddle run ---------------------------------------------------------------------------

RUN = [
    # ASCII digits only
    (["--m", "１２"], "m"),
    (["--n", "١٢"], "n"),
    (["--seeds", "２"], "seeds"),
    (["--max-steps", "１０"], "max_steps"),
    (["--sigma", "０.１"], "sigma"),
    (["--m", "1_0"], "m"),
    (["--gamma", "1_0.5"], "gamma"),
    (["--m", ""], "m"),
    (["--m", "  "], "m"),
    (["--m", "0x10"], "m"),
    (["--m", "+"], "m"),
    (["--m", "1e400"], "m"),
    (["--m", "nan"], "m"),
    (["--m", "9" * 5000], "m"),
    (["--sigma", "1e400"], "sigma"),
    (["--sigma", "-inf"], "sigma"),
    (["--sigma", "0.1.2"], "sigma"),
    (["--gamma", "1e"], "gamma"),
    # memory
    (["--m", "40000", "--n", "40000"], "m, n"),
    (["--m", "1000000000", "--n", "1"], "m, n"),
    (["--m", "30000", "--n", "30000", "--basis", "coherent"], "m, n"),
    (["--m", "50000", "--n", "50000"], "m"),  # m*n beyond 2^31 - 1
    # the run's dtype
    (["--bulk-scale", "1e300"], "bulk_scale"),
    (["--init-escape", "1e25"], "init_escape"),
    (["--init-escape", "-1e25"], "init_escape"),
    (["--sigma", "-1e-3"], "sigma"),
    (["--gamma", "-inf"], "gamma"),
    (["--sigma", "1e300"], "sigma"),
    (["--sigma", "1e300", "--dtype", "float64"], "sigma"),
    (["--escape", "loss", "--gamma", "1e200", "--quartic", "1"], "gamma"),
    (["--max-loss", "1e39"], "max_loss"),
    (["--learning-rate", "1e20"], "learning_rate"),
    (["--optimizer", "adamw", "--eps", "1e20"], "eps"),
    (["--noise", "student_t", "--noise-df", "1e20"], "noise_df"),
    (["--radius", "1e20"], "radius"),
    (["--quartic", "1e20"], "quartic"),
    (["--init", "random", "--init-scale", "1e20"], "init_scale"),
    (["--saddle-point", "random", "--saddle-point-scale", "1e20"], "saddle_point_scale"),
    # ranges and choices
    (["--seeds", "1000001"], "seeds"),
    (["--seed", "-1"], "seed"),
    (["--seed", str(2**31)], "seed"),
    (["--landscape-seed", str(2**32)], "landscape_seed"),
    (["--dtype", "float16"], "dtype"),
    (["--rng", "mt19937"], "rng"),
    (["--backend", "numba", "--optimizer", "muon"], "backend"),
    (["--optimizer", "muon", "--ns-steps", "101"], "ns_steps"),
    (["--escape-rank", "0"], "escape_rank"),
    (["--noise", "kronecker", "--noise-zipf", "-1"], "noise_zipf"),
    (["--basis", "partial", "--mixing", "2"], "mixing"),
    (["--optimizer", "Muon"], "optimizer"),
    (["--nesterov", "--optimizer", "adamw", "--b1", "1"], "b1"),
    (["--learning-rte", "0.1"], "--learning-rate"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-1"], "--batch-size"),
    (["--batch-size", "abc"], "--batch-size"),
    (["--batch-size", "１２"], "--batch-size"),
    (["--batch-size", "1e3"], "--batch-size"),
    (["--m"], "--m"),
]


@pytest.mark.parametrize("args, needle", RUN, ids=[" ".join(a)[:40] for a, _ in RUN])
def test_run_hostile_flags(capsys, args, needle):
    check_error(capsys, ["run", *args], needle)


CONFIG_FILES = [
    ("/dev/zero", "not a regular file"),
    ("/dev/null", "not a regular file"),
    ("{dir}", "directory"),
    ("{dir}/missing.toml", "not found"),
    ("big.toml", "bytes"),
    ("nested.toml", "config"),
    ("nan.toml", "sigma"),
    ("inf.toml", "gamma"),
    ("list.toml", "m"),
    ("table.toml", "m"),
    ("date.toml", "m"),
    ("binary.toml", "UTF-8"),
    ("bad.toml", "not valid TOML"),
    ("unknown.toml", "did you mean 'optimizer'"),
    ("huge_m.toml", "m, n"),
    ("fullwidth.toml", "m"),
]


def _file(files, name: str) -> str:
    if name.startswith("/"):
        return name
    if "{dir}" in name:
        return name.format(dir=files["dir"])
    return str(files[name])


@pytest.mark.parametrize("name, needle", CONFIG_FILES, ids=[c[0] for c in CONFIG_FILES])
@pytest.mark.parametrize("command", ["run", "bounds"])
def test_config_files(capsys, files, command, name, needle):
    check_error(capsys, [command, "--config", _file(files, name)], needle)


def test_a_small_run_is_clean(capsys, files):
    TALLY["tried"] += 1
    rc, out, err = _call(capsys, ["run", "--config", files["ok.toml"], "--quiet", "--json"])
    assert rc == 0 and "Traceback" not in err, err
    TALLY["clean"] += 1


def test_plain_progress_lines(capsys):
    """Not a terminal: plain lines with runs done/total, elapsed and ETA."""
    from saddle.cli._common import PlainProgress

    t = [0.0]
    p = PlainProgress("run", every=5, clock=lambda: t[0])
    p.start(100)
    p.update(10)  # too soon: no line
    t[0] = 6.0
    p.update(20)
    t[0] = 7.0
    p.update(30)  # within 5 s of the last line
    t[0] = 12.0
    p.advance(10, dict(escaped=3, censored=1, diverged=0))
    p.finish()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "saddle: run: runs 20/100 (20%), elapsed 0:00:06, ETA 0:00:24"
    assert lines[1].startswith("saddle: run: runs 40/100 (40%), 3 escaped, 1 censored")
    assert len(lines) == 3


def test_progress_bars_fit_80_columns():
    import io
    import re

    from rich.console import Console

    from saddle.cli._common import progress_bar, short_name

    for kind in ("runs", "counts"):
        buf = io.StringIO()
        with progress_bar(kind, Console(file=buf, width=80, force_terminal=True,
                                        color_system=None)) as bar:
            t = bar.add_task(short_name("a_rather_long_sweep_name") + " (+12345)",
                             total=123456, escaped=123456, censored=0, diverged=12345)
            bar.update(t, completed=65432)
            bar.refresh()
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue()).replace("\r", "\n")
        rows = [r for r in text.split("\n") if r.strip()]
        assert rows and all(len(r) <= 80 for r in rows), rows
        assert "65432/123456" in rows[-1]  # nothing truncated


def test_memory_estimate_and_batch_cap():
    from saddle import Config
    from saddle.memory import memory_estimate, runs_that_fit

    small = Config.from_dict(m=64, n=64)
    shared, per_run = memory_estimate(small)
    assert 0 < shared < 2**20 and 0 < per_run < 2**20
    dense = memory_estimate(Config.from_dict(m=1000, n=1000))[0]
    coherent = memory_estimate(Config.from_dict(m=1000, n=1000, basis="coherent"))[0]
    assert dense > coherent  # P and Q
    assert runs_that_fit(small) >= 4096
    traced = memory_estimate(small, trace_stride=1)[1]
    assert traced > per_run


def test_batches_are_capped_by_memory(monkeypatch):
    """make_batches sizes batches so that the shared arrays and the batch's runs fit."""
    from saddle import Config, memory
    from saddle.sweep import parse_spec
    from saddle.sweep.runner import make_batches, plan_runs

    spec = parse_spec(dict(seeds=64, m=32, n=32, basis="coherent", max_steps=2))
    runs = plan_runs(spec)
    assert [len(b) for b in make_batches(runs, 64)] == [64]
    shared, per_run = memory.memory_estimate(Config.from_dict(m=32, n=32, basis="coherent"))
    # room for the shared arrays and 10 runs in half the memory
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * (shared + 10 * per_run))
    assert max(len(b) for b in make_batches(runs, 64)) == 10
    assert sum(len(b) for b in make_batches(runs, 64)) == 64


# --- saddle sweep -------------------------------------------------------------------------

_DASK = ["ok.toml", "--out", "{out}", "--executor", "dask"]
SWEEP = [
    (["{missing}", "--out", "{out}"], "not found"),
    (["/dev/zero", "--out", "{out}"], "not a regular file"),
    (["grid.toml", "--out", "{out}"], "grid has 160000 points"),
    (["runs.toml", "--out", "{out}"], "runs per sweep"),
    (["huge.toml", "--out", "{out}"], "m, n"),
    (["protocol.toml", "--out", "{out}"], "lr_protocol"),
    (["stride.toml", "--out", "{out}"], "trace_stride"),
    (["batchruns.toml", "--out", "{out}"], "batch_runs"),
    (["spec_unknown.toml", "--out", "{out}"], "sigmaa"),
    (["exclude_all.toml", "--out", "{out}"], "exclude"),
    (["spec_dtype.toml", "--out", "{out}"], "sigma"),
    (["spec_fullwidth.toml", "--out", "{out}"], "m"),
    (["ok.toml", "--out", ""], "--out"),
    (["ok.toml", "--out", "notafile.png"], "--out"),
    (["ok.toml", "--out", "{out}", "--workers", "0"], "--workers"),
    (["ok.toml", "--out", "{out}", "--workers", "２"], "--workers"),
    (["ok.toml", "--out", "{out}", "--workers", "1.5"], "--workers"),
    (["ok.toml", "--out", "{out}", "--workers", "1000000"], "--workers"),
    (["ok.toml", "--out", "{out}", "--batch-runs", "abc"], "--batch-runs"),
    (["ok.toml", "--out", "{out}", "--batch-runs", "-3"], "--batch-runs"),
    (["ok.toml", "--out", "{out}", "--executor", "ray"], "--executor"),
    (["ok.toml", "--out", "{out}", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler"),
    *[(_DASK + ["--scheduler", address], "--scheduler")
      for address in ("foo", "tcp://", "tcp://host", "tcp://host:0", "tcp://host:70000",
                      "http://host:8786", "tcp://h st:1")],
    (_DASK + ["--scheduler", "tcp://127.0.0.1:1"], "cannot connect"),
    (_DASK + ["--scheduler", "tcp://nonexistent.invalid:8786"], "cannot connect"),
    (["ok.toml", "--out", "{out}", "--unknown-flag"], "--unknown-flag"),
]


@pytest.mark.parametrize("args, needle", SWEEP, ids=[" ".join(a)[:50] for a, _ in SWEEP])
def test_sweep_hostile(capsys, files, tmp_path, args, needle):
    pytest.importorskip("dask.distributed")
    argv = ["sweep"]
    for a in args:
        if a == "{out}":
            a = str(tmp_path / "out")
        elif a == "{missing}":
            a = str(tmp_path / "missing.toml")
        elif a in files:
            a = str(files[a])
        argv.append(a)
    check_error(capsys, argv, needle)


# --- saddle results and plot -------------------------------------------------------------

def test_results_and_plot_hostile(capsys, files, store, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "noruns").mkdir()
    (empty / "runs").mkdir()
    cases = [
        (["results", tmp_path / "missing"], "DIR"),
        (["results", files["notafile.png"]], "DIR"),
        (["results", tmp_path / "noruns"], "runs/"),
        (["results", empty], "no finished runs"),
        (["results", store, "--by", "sigmaa"], "--by"),
        (["results", store, "--by", ","], None),  # no fields: the default grouping
        (["plot", store, "--kind", "histogram"], "--kind"),
        (["plot", store, "--kind", ""], "--kind"),
        (["plot", store, "--kind", "phase", "--metric", "mean"], "--metric"),
        (["plot", store, "--kind", "gap", "--x", "nope"], "--x"),
        (["plot", store, "--kind", "gap", "--threshold", "abc"], "--threshold"),
        (["plot", store, "--kind", "gap", "--threshold", "nan"], "--threshold"),
        (["plot", store, "--kind", "trajectory", "--runs", "0"], "--runs"),
        (["plot", store, "--kind", "trajectory", "--runs", "３"], "--runs"),
        (["plot", store, "--kind", "trajectory"], "trace_stride"),
        (["plot", store, "--kind", "dimension", "--output", tmp_path / "f.pdf"], "--output"),
        (["plot", store, "--kind", "dimension", "--output", tmp_path / "no" / "f.png"],
         "does not exist"),
        (["plot", store, "--output", tmp_path / "f.png"], "--output"),
        (["plot", tmp_path / "missing"], "DIR"),
        (["plot", empty], "no finished runs"),
    ]
    for argv, needle in cases:
        if needle is None:
            TALLY["tried"] += 1
            rc, _, err = _call(capsys, argv)
            assert rc in (0, 2) and "Traceback" not in err, (argv, err)
            TALLY["clean"] += 1
        else:
            check_error(capsys, argv, needle)


def test_plot_without_kind_picks_the_supported_figures(capsys, store):
    TALLY["tried"] += 1
    rc, out, err = _call(capsys, ["plot", store])
    assert rc == 0, err
    written = out.split()
    assert any(p.endswith("dimension.png") for p in written)  # two D: dimension applies
    assert not any("trajectory" in p for p in written)  # no traces stored
    TALLY["clean"] += 1


# --- saddle bounds, reproduce, bench ------------------------------------------------------

OTHERS = [
    (["bounds", "--sigma", "1e300"], "sigma"),
    (["bounds", "--sigma", "1e300", "--dtype", "float64"], "sigma"),
    (["bounds", "--m", "１２"], "m"),
    (["bounds", "--m", "40000", "--n", "40000"], "m, n"),
    (["bounds", "--gamma", "1e200", "--escape", "loss", "--quartic", "1"], "gamma"),
    (["bounds", "--optimizer", "lion"], "optimizer"),
    (["bounds", "--bulk-scale", "1e300"], "bulk_scale"),
    (["bounds", "--latexx"], "--latex"),
    (["reproduce", "--only", ","], "--only"),
    (["reproduce", "--only", ""], "--only"),
    (["reproduce", "--only", " , ,"], "--only"),
    (["reproduce", "--only", "foo"], "--only"),
    (["reproduce", "--only", "dimension,foo"], "--only"),
    (["reproduce", "--out", ""], "--out"),
    (["bench", "--sections", "X"], "--sections"),
    (["bench", "--sections", ""], "--sections"),
    (["bench", "--sections", "E"], "--sections"),
    (["bench", "--sections", "ABQ"], "--sections"),
    (["nonsense"], "nonsense"),
]


@pytest.mark.parametrize("argv, needle", OTHERS, ids=[" ".join(a)[:40] for a, _ in OTHERS])
def test_other_commands_hostile(capsys, argv, needle):
    check_error(capsys, argv, needle)


@pytest.mark.parametrize("args", [
    ["--sigma", "0"],  # a formula that divides by sigma: no value, no traceback
    ["--optimizer", "muon", "--orthogonalizer", "polar", "--gamma", "1", "--bulk-scale",
     "1e-3", "--init-escape", "0.3", "--sigma", "0.002", "--basis", "coherent"],
    ["--sigma", "1e19", "--noise", "kronecker"],
    ["--sigma", "1e150", "--dtype", "float64", "--noise", "student_t"],
])
def test_bounds_extreme_but_valid_configs_are_clean(capsys, args):
    TALLY["tried"] += 1
    rc, out, err = _call(capsys, ["bounds", *args])
    assert rc == 0 and "Traceback" not in err and not err.strip(), err
    assert "\\frac" not in out  # plain text by default; LaTeX behind --latex
    TALLY["clean"] += 1


def test_bounds_readme_example_has_muon_values(capsys):
    import json

    rc, out, err = _call(capsys, [
        "bounds", "--json", "--optimizer", "muon", "--orthogonalizer", "polar", "--gamma",
        "1", "--bulk-scale", "1e-3", "--init-escape", "0.3", "--sigma", "0.002", "--basis",
        "coherent", "--m", "64", "--n", "64"])
    assert rc == 0, err
    by = {r["name"]: r for r in json.loads(out)}
    for name in ("muon_ballistic", "muon_total_escape"):
        assert by[name]["assumptions_hold"] and by[name]["value"] is not None
        assert by[name]["formula"] and by[name]["latex"]


def test_bounds_prints_failing_assumptions_with_their_meaning(capsys):
    rc, out, err = _call(capsys, ["bounds", "--optimizer", "muon", "--m", "16", "--n", "16"])
    assert rc == 0, err
    assert "fails saddle_init: init = saddle with a0 = init_escape > 0" in out
    assert "--init-escape 0.05" in out  # the hint of a nearer config


@pytest.mark.parametrize("argv, bad, good", [
    (["run", "--help"], ["(default: optimizer's default)", "(default: the optimizer's) ("],
     ["muon: learning_rate=0.02"]),
    (["results", "--help"], ["95%%"], ["95% CI"]),
    (["reproduce", "--help"], ["3-10 min", "about 25 min"], ["docs/guide/reproduce.md", "--jobs"]),
    (["bench", "--help"], [], ["A  element-wise", "G  GPU only", "N  network landscapes"]),
])
def test_help_texts(capsys, argv, bad, good):
    rc, out, _ = _call(capsys, argv)
    assert rc == 0
    text = " ".join(out.split())
    for b in bad:
        assert " ".join(b.split()) not in text, b
    for g in good:
        assert " ".join(g.split()) in text, g


# --- fuzzing saddle run's flags -----------------------------------------------------------

# Fields whose fuzzed values could make a valid run long or large stay at the base values.
_FIXED = {"m", "n", "max_steps", "seeds", "backend"}
_FUZZ_FIELDS = sorted(f for f in FIELDS if f not in _FIXED)
values = st.one_of(
    st.sampled_from(["0", "1", "-1", "0.5", "2", "1e19", "1e20", "1e300", "nan", "inf", "",
                     "１", "1_0", "0x1", "true", "none", "muon", "polar", "loss", "float64"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.text(alphabet=string.printable + "١２", max_size=8),
)
FUZZ = collections.Counter()


plausible = st.sampled_from(["0", "0.01", "0.1", "0.5", "0.9", "1", "2", "3", "1e-3"])


@st.composite
def flag_values(draw):
    """A field and a value for it: one of its choices, a plausible number or a hostile
    string, in about equal parts."""
    name = draw(st.sampled_from(_FUZZ_FIELDS))
    spec = FIELDS[name]
    options = [values, plausible]
    if spec.choices:
        options.append(st.sampled_from(spec.choices))
    return name, draw(st.one_of(*options))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(flag_values(), min_size=1, max_size=4))
def test_fuzz_run_flags(capsys, flags):
    argv = ["run", "--quiet", "--json", "--m", "3", "--n", "3", "--max-steps", "2"]
    for name, v in flags:
        flag = "--" + name.replace("_", "-")
        if FIELDS[name].kind == "bool":
            argv.append(flag if v[:1] in "0123456789" else "--no-" + flag[2:])
        else:
            argv.append(f"{flag}={v}")
    FUZZ["tried"] += 1
    try:
        rc, out, err = _call(capsys, argv)
    except Exception as e:  # noqa: BLE001 - counted, then reported by the assertion
        FUZZ["unclean"] += 1
        raise AssertionError(f"{argv}: uncaught {type(e).__name__}: {e}") from e
    lines = err.strip().splitlines()
    clean = (rc == 0 and "Traceback" not in err) or (
        rc == 2 and len(lines) == 1 and lines[0].startswith("saddle: error: "))
    FUZZ["clean" if clean else "unclean"] += 1
    FUZZ["ran" if rc == 0 else "refused"] += 1
    assert clean, (argv, rc, err)


def test_zz_tally():
    """The counts of this module (printed; runs last by name)."""
    total = TALLY + FUZZ
    print(f"\nhostile inputs: tried {TALLY['tried']}, clean {TALLY['clean']}, unclean "
          f"{TALLY['unclean']}; fuzzed run flags: tried {FUZZ['tried']}, clean "
          f"{FUZZ['clean']} ({FUZZ['ran']} ran, {FUZZ['refused']} refused), unclean "
          f"{FUZZ['unclean']}", file=sys.stderr)
    assert total["unclean"] == 0
