"""Fault injection for the results store: damaged part files, foreign files, full and
read-only disks at every write step, stale temporaries and concurrent claims.

After every fault a resumed sweep must end with the rows of an uninterrupted sweep (timings
aside). The tests count the faults they inject and the rows that were lost after resuming
(always 0) and print them (``pytest -s`` shows the counts).
"""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saddle.sweep import Store, load_spec, parse_spec, run_sweep
from saddle.sweep import store as store_mod
from saddle.sweep.store import SCHEMA_VERSION, StoreError

TINY = dict(seeds=3, optimizer=["sgd", "adamw"], m=8, n=8, basis="coherent", max_steps=200,
            noise="isotropic", sigma=0.01, learning_rate=0.05, trace_stride=50, batch_runs=2)
TOTALS = {"faults": 0, "rows_quarantined": 0, "rows_unwritten": 0, "rows_lost": 0}


def _toml() -> str:
    """TINY as a spec file (named like the in-process sweeps, whose rows name it)."""
    return 'name = "sweep"\n' + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items())


def _spec():
    return parse_spec(dict(TINY))


def _rows(out) -> pd.DataFrame:
    return Store(out).runs().drop(columns=["wall_s"])


def _traces(out) -> pd.DataFrame:
    return Store(out).traces().sort_values(["run_id", "t"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted sweep of the tiny spec: 6 runs in 4 batches, with traces."""
    out = tmp_path_factory.mktemp("reference")
    rep = run_sweep(_spec(), out)
    assert rep.ran == 6 and rep.escaped and rep.censored  # both kinds of row are present
    return out


@pytest.fixture(scope="module", autouse=True)
def _print_counts():
    yield
    print(f"\nstore faults: {TOTALS['faults']} injected; {TOTALS['rows_quarantined']} rows "
          f"moved to quarantine and {TOTALS['rows_unwritten']} rows not written at a failed "
          f"write, all recomputed on resume; {TOTALS['rows_lost']} rows lost")


def _check_resumes_to_reference(out, reference) -> int:
    """Resume the sweep in ``out``; returns the rows that differ from the reference."""
    run_sweep(_spec(), out)
    got, want = _rows(out), _rows(reference)
    lost = len(set(want["run_id"]) - set(got["run_id"]))
    TOTALS["rows_lost"] += lost
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(_traces(out), _traces(reference))
    return lost


# --- damaged and foreign part files -----------------------------------------------------------


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _corrupt(p: Path) -> None:
    # Overwrite the middle (the column chunks) with noise: the footer still parses.
    data = bytearray(p.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid - 200 : mid + 200] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(data))


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _random_bytes(p: Path) -> None:
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _foreign(p: Path) -> None:
    # A valid Parquet file of someone else's: no run_id, no status.
    pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}).to_parquet(p, index=False)


DAMAGE = {"truncate": _truncate, "corrupt": _corrupt, "empty": _empty,
          "random_bytes": _random_bytes, "foreign": _foreign}


@pytest.mark.parametrize("kind", ["runs", "traces"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_part_is_quarantined_and_resume_recomputes(reference, tmp_path, caplog,
                                                           kind, damage):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    victim = sorted((out / kind).glob("part-*.parquet"))[1]
    base = store_mod._split_name(victim.name)[0]
    runs_file = next(p for p in (out / "runs").iterdir() if p.name.startswith(base + "~"))
    held = pd.read_parquet(runs_file)["run_id"].tolist()
    DAMAGE[damage](victim)
    TOTALS["faults"] += 1
    with caplog.at_level(logging.WARNING, logger="saddle.store"):
        s = Store(out)
        ids = s.finished_ids()
        rows = s.runs()
        s.traces()
    assert not set(held) & ids and len(rows) == 6 - len(held)
    assert (out / "quarantine" / kind / victim.name).exists() and not victim.exists()
    msgs = [r.getMessage() for r in caplog.records if r.name == "saddle.store"]
    assert msgs and f"{kind}/{victim.name}" in msgs[0] and "quarantine" in msgs[0]
    assert all("\n" not in m for m in msgs)
    TOTALS["rows_quarantined"] += len(held)
    assert _check_resumes_to_reference(out, reference) == 0


def test_foreign_file_next_to_valid_parts_is_moved_aside(reference, tmp_path, caplog):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    for sub in ("runs", "traces"):
        _foreign(out / sub / "part-zzz-foreign.parquet")
        TOTALS["faults"] += 1
    with caplog.at_level(logging.WARNING, logger="saddle.store"):
        pd.testing.assert_frame_equal(_rows(out), _rows(reference))
        pd.testing.assert_frame_equal(_traces(out), _traces(reference))
    assert sorted(p.name for p in (out / "quarantine").rglob("*.parquet")) == [
        "part-zzz-foreign.parquet"] * 2
    assert run_sweep(_spec(), out).ran == 0


def test_unreadable_part_on_a_read_only_store_is_skipped(reference, tmp_path, caplog,
                                                        monkeypatch):
    """Reading must work where nothing can be moved: the bad part is skipped with a warning."""
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    victim = sorted((out / "runs").glob("part-*.parquet"))[0]
    _truncate(victim)
    TOTALS["faults"] += 1

    def refuse(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(src))

    monkeypatch.setattr(store_mod, "_replace", refuse)
    with caplog.at_level(logging.WARNING, logger="saddle.store"):
        assert 0 < len(Store(out).runs()) < 6
    assert victim.exists() and "cannot move it" in caplog.records[0].getMessage()


# --- schema versions ------------------------------------------------------------------------


def test_parts_record_the_schema_version(reference):
    import pyarrow.parquet as pq

    for sub in ("runs", "traces"):
        for p in (reference / sub).glob("part-*.parquet"):
            meta = pq.read_schema(p).metadata
            assert meta[b"saddle.schema_version"] == str(SCHEMA_VERSION).encode()


def test_version_1_parts_are_migrated(reference, tmp_path):
    """A part written before versions (no metadata, no D or aspect column) reads as today's."""
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    for p in (out / "runs").glob("part-*.parquet"):
        old = p.with_name(store_mod._split_name(p.name)[0] + ".parquet")  # no digest then
        pd.read_parquet(p).drop(columns=["D", "aspect"]).to_parquet(old, index=False)
        p.unlink()
    got = _rows(out)
    pd.testing.assert_frame_equal(got[_rows(reference).columns], _rows(reference))
    assert run_sweep(_spec(), out).ran == 0


def test_newer_schema_is_refused_in_one_line(reference, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    shutil.copytree(reference, out)
    p = sorted((out / "runs").glob("part-*.parquet"))[0]
    t = pq.read_table(p)
    meta = {**t.schema.metadata, b"saddle.schema_version": b"99"}
    sink = pa.BufferOutputStream()
    pq.write_table(t.replace_schema_metadata(meta), sink)
    data = sink.getvalue().to_pybytes()
    p.unlink()
    p = p.with_name(store_mod._part_name(store_mod._split_name(p.name)[0], data))
    p.write_bytes(data)
    with pytest.raises(StoreError) as e:
        Store(out).runs()
    msg = str(e.value)
    assert "\n" not in msg and "schema version 99" in msg and p.name in msg
    assert p.exists()  # refused, not quarantined: it is valid, just newer


# --- full, read-only and forbidden disks at every write step --------------------------------

STEPS = ("_open_tmp", "_write_all", "_fsync", "_replace")
# 4 batches, each a traces file then a runs file: 8 atomic writes per sweep.
WRITES = 8


@pytest.mark.parametrize("step", STEPS)
def test_enospc_at_every_write_step_leaves_a_resumable_store(reference, tmp_path,
                                                             monkeypatch, caplog, step):
    real = getattr(store_mod, step)
    for nth in range(WRITES):
        out = tmp_path / f"{step}-{nth}"
        calls = {"n": 0}

        def failing(*a, _nth=nth, _real=real, _calls=calls):
            _calls["n"] += 1
            if _calls["n"] == _nth + 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return _real(*a)

        monkeypatch.setattr(store_mod, step, failing)
        with pytest.raises(StoreError) as e:
            run_sweep(_spec(), out)
        monkeypatch.setattr(store_mod, step, real)
        TOTALS["faults"] += 1
        msg = str(e.value)
        assert "\n" not in msg and "ENOSPC" in msg and e.value.__suppress_context__
        # Nothing partial under a part name, no temporary left behind, nothing to quarantine.
        with caplog.at_level(logging.WARNING, logger="saddle.store"):
            Store(out).runs()
            Store(out).traces()
        assert not caplog.records and not (out / "quarantine").exists()
        TOTALS["rows_unwritten"] += 6 - len(Store(out).runs())
        assert not [p for p in out.rglob(".tmp*")]
        assert _check_resumes_to_reference(out, reference) == 0


@pytest.mark.parametrize("err", [errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_read_only_or_forbidden_disk_is_one_line(tmp_path, monkeypatch, err):
    def refuse(path):
        raise OSError(err, os.strerror(err), str(path))

    monkeypatch.setattr(store_mod, "_open_tmp", refuse)
    with pytest.raises(StoreError) as e:
        run_sweep(_spec(), tmp_path)
    TOTALS["faults"] += 1
    assert errno.errorcode[err] in str(e.value) and "\n" not in str(e.value)


def test_write_spec_is_atomic_and_repairs_an_empty_copy(tmp_path, monkeypatch):
    s = Store(tmp_path).create()
    (tmp_path / "spec.toml").write_bytes(b"")  # what a non-atomic copy left on a full disk
    real = store_mod._write_all

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod, "_write_all", full)
    with pytest.raises(StoreError):
        s.write_spec(b"m = 8\n")
    TOTALS["faults"] += 1
    assert (tmp_path / "spec.toml").read_bytes() == b""  # unchanged, not half-written
    monkeypatch.setattr(store_mod, "_write_all", real)
    assert s.write_spec(b"m = 8\n") and (tmp_path / "spec.toml").read_bytes() == b"m = 8\n"
    assert not s.write_spec(b"m = 16\n")  # the first sweep's spec is kept
    assert not list(tmp_path.glob(".tmp*"))


def test_unreadable_edge_cache_is_recomputed(tmp_path):
    s = Store(tmp_path).create()
    (s.edges_dir / "abc.json").write_bytes(b"\xff\xfe{not json")
    assert s.read_json("abc") is None
    s.write_json("abc", {"edge_lr": 0.1})
    assert s.read_json("abc") == {"edge_lr": 0.1}


# --- temporaries ------------------------------------------------------------------------------


def test_temp_names_carry_host_pid_and_token(tmp_path):
    name = store_mod.temp_name("part-x.parquet")
    assert store_mod._parse_temp(name) == (store_mod._HOST, os.getpid())
    assert name != store_mod.temp_name("part-x.parquet")


def test_stale_temporaries_only_of_dead_local_writers_or_old(tmp_path):
    s = Store(tmp_path).create()
    dead = _dead_pid()
    host = store_mod._HOST
    files = {
        "mine_dead": f".tmp~{host}~{dead}~aaaa~part-1.parquet",
        "mine_live": f".tmp~{host}~{os.getpid()}~bbbb~part-2.parquet",
        "other_host": f".tmp~elsewhere.example~{dead}~cccc~part-3.parquet",
        "other_host_old": f".tmp~elsewhere.example~{dead}~dddd~part-4.parquet",
        "legacy_dead": f".tmp-{dead}-1234abcd-part-5.parquet",
        "spec": f".tmp~{host}~{dead}~eeee~spec.toml",
    }
    for key, name in files.items():
        where = tmp_path if key == "spec" else s.runs_dir
        (where / name).write_bytes(b"partial")
    old = time.time() - 2 * store_mod.TEMP_MAX_AGE_S
    os.utime(s.runs_dir / files["other_host_old"], (old, old))
    assert s.clean_stale_temporaries() == 4
    left = {p.name for p in s.runs_dir.iterdir()} | {p.name for p in tmp_path.glob(".tmp*")}
    assert left == {files["mine_live"], files["other_host"]}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# --- claims -----------------------------------------------------------------------------------


def test_claim_release_and_takeover(tmp_path):
    a, b = Store(tmp_path).create(), Store(tmp_path).create()
    assert a.claim("batch-1") and not b.claim("batch-1")  # held by a live process (us)
    a.release("batch-1")
    assert b.claim("batch-1")
    b.release("batch-1")
    host = store_mod._HOST
    # A dead local process's claim is taken over at once.
    path = a.claims_dir / "batch-2.claim"
    path.write_text(json.dumps(dict(host=host, pid=_dead_pid(), token="t", time=0)))
    assert a.claim("batch-2")
    # Another host's claim: live until it is older than the timeout with no heartbeat.
    path = a.claims_dir / "batch-3.claim"
    path.write_text(json.dumps(dict(host="elsewhere.example", pid=1, token="u", time=0)))
    assert not a.claim("batch-3")
    old = time.time() - 2 * store_mod.CLAIM_STALE_S
    os.utime(path, (old, old))
    assert a.claim("batch-3")
    # Our heartbeat keeps our own claims fresh.
    os.utime(path, (old, old))
    a.heartbeat()
    assert not b.claim("batch-3")
    assert a.held_claims() == ["batch-2", "batch-3"]
    a.release_all()
    assert not list(a.claims_dir.iterdir())
    with pytest.raises(ValueError):
        a.claim("../escape")


def _race(root: str, keys: list[str], start, out: str, hold: bool) -> None:
    """One racer: claim every key it can. ``hold``: keep the claims (each key must be won
    exactly once); otherwise do the runner's cycle of claim, check done, work, store,
    release (each key must be *worked* exactly once)."""
    s = Store(root)
    start.wait()  # a barrier: both racers are imported and start together
    won = []
    for k in keys:
        if not s.claim(k):
            continue
        done = Path(root) / "done" / k
        if hold:
            won.append(k)
            continue
        if not done.exists():
            won.append(k)
            time.sleep(0.001)  # the work
            done.write_text("x")  # the stored batch
        s.release(k)
    Path(out).write_text(json.dumps(won))


@pytest.mark.parametrize("case", ["hold", "hold_stale", "cycle"])
def test_racing_processes_claim_each_key_exactly_once(tmp_path, case):
    """Two processes race over the same 200 keys in the same order. hold: fresh claims;
    hold_stale: every key starts with a dead process's claim, so both race to take it over;
    cycle: claim, work, release, as the runner does."""
    ctx = multiprocessing.get_context("spawn")
    root = tmp_path / "store"
    s = Store(root).create()
    (root / "done").mkdir()
    keys = [f"k{i:03d}" for i in range(200)]
    if case == "hold_stale":
        dead = _dead_pid()
        for k in keys:
            (s.claims_dir / f"{k}.claim").write_text(
                json.dumps(dict(host=store_mod._HOST, pid=dead, token=k, time=0)))
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_race, args=(str(root), keys, start, str(tmp_path / f"{i}"),
                                             case != "cycle")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    won = [json.loads((tmp_path / f"{i}").read_text()) for i in range(2)]
    every = won[0] + won[1]
    print(f"\nclaims race ({case}): {len(won[0])} + {len(won[1])} of {len(keys)} keys")
    assert sorted(every) == keys  # every key once: none twice, none missed


def test_concurrent_sweeps_compute_each_run_once(tmp_path):
    """Three sweeps of one spec into one directory at once: every run is in exactly one
    runs part (no run computed twice), and each sweep returns only when all are stored."""
    spec = tmp_path / "s.toml"
    spec.write_text(_toml().replace("seeds = 3", "seeds = 8").replace("batch_runs = 2",
                                                                        "batch_runs = 3"))
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "saddle", "sweep", str(spec), "--out", str(out), "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_o, e) in zip(procs, outs, strict=True):
        assert p.returncode == 0, e.decode()
    reports = [json.loads(o) for o, _ in outs]
    ids = [i for p in (out / "runs").glob("part-*.parquet")
           for i in pd.read_parquet(p, columns=["run_id"])["run_id"]]
    print(f"\nconcurrent sweeps: ran {[r['ran'] for r in reports]} of 16 runs")
    assert len(ids) == len(set(ids)) == 16
    assert sum(r["ran"] for r in reports) == 16
    assert not list((out / "claims").iterdir())


# --- the CLI on a full disk ---------------------------------------------------------------------

_INJECT = textwrap.dedent("""
    import errno, sys
    from saddle.sweep import store
    real, n = store.{step}, {{"calls": 0}}
    def failing(*a):
        n["calls"] += 1
        if n["calls"] == {nth}:
            raise OSError(errno.{err}, "injected")
        return real(*a)
    store.{step} = failing
    from saddle.cli import main, run_program
    run_program(lambda: main(sys.argv[1:]))
""")


def _cli_with_fault(step: str, nth: int, err: str, *args):
    code = _INJECT.format(step=step, nth=nth, err=err)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_cli_sweep_on_a_full_disk_is_one_line_and_resumes(tmp_path, reference):
    spec = tmp_path / "s.toml"
    spec.write_text(_toml())
    out = tmp_path / "out"
    # 1st write: spec.toml; 4th: the second batch's traces file.
    for nth, err in ((1, "ENOSPC"), (4, "ENOSPC"), (6, "EROFS")):
        r = _cli_with_fault("_write_all", nth, err, "sweep", spec, "--out", out, "--quiet")
        TOTALS["faults"] += 1
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert lines[0].startswith("saddle: error:") and err in lines[0]
        assert "Traceback" not in r.stderr
        if nth == 1:
            assert not (out / "spec.toml").exists()  # no 0-byte spec.toml left behind
    r = subprocess.run([sys.executable, "-m", "saddle", "sweep", str(spec), "--out", str(out),
                        "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / "spec.toml").read_text() == spec.read_text()
    pd.testing.assert_frame_equal(_rows(out), _rows(reference))


_FULL_DISK = textwrap.dedent("""
    set -u
    D=$1; T=$2
    mount -t tmpfs -o size=$3 tmpfs "$D" || exit 77
    "$4" -m saddle sweep "$T/s.toml" --out "$D/out" --quiet 2> "$T/err1"; echo $? > "$T/rc1"
    mount -o remount,size=16m "$D" || exit 77
    "$4" -m saddle sweep "$T/s.toml" --out "$D/out" --quiet 2> "$T/err2"; echo $? > "$T/rc2"
    cp -r "$D/out" "$T/out"
""")


@pytest.mark.parametrize("size", ["4k", "40k"])
def test_a_really_full_disk(tmp_path, reference, size):
    """A real tmpfs of 4 or 40 KiB, mounted in a user namespace (no root needed where user
    namespaces are allowed; skipped where they are not): the sweep fails in one line on the
    first write that does not fit, and once there is room it resumes to the full rows."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1)")
    mnt, t = tmp_path / "mnt", tmp_path / "t"
    mnt.mkdir()
    t.mkdir()
    (t / "s.toml").write_text(_toml())
    (t / "full.sh").write_text(_FULL_DISK)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh",
                        str(t / "full.sh"), str(mnt), str(t), size, sys.executable],
                       capture_output=True, text=True, timeout=600, env=env)
    if r.returncode == 77 or not (t / "rc1").exists():
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()[:200]}")
    TOTALS["faults"] += 1
    err = (t / "err1").read_text().strip().splitlines()
    assert (t / "rc1").read_text().strip() == "2" and len(err) == 1, err
    assert "ENOSPC" in err[0] and "Traceback" not in err[0]
    assert (t / "rc2").read_text().strip() == "0", (t / "err2").read_text()
    assert (t / "out" / "spec.toml").read_text() == (t / "s.toml").read_text()
    pd.testing.assert_frame_equal(_rows(t / "out"), _rows(reference))
    pd.testing.assert_frame_equal(_traces(t / "out"), _traces(reference))


def test_cli_resume_over_a_damaged_store_warns_once_per_file(tmp_path, reference):
    spec = tmp_path / "s.toml"
    spec.write_text(_toml())
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    victim = sorted((out / "runs").glob("part-*.parquet"))[0]
    _truncate(victim)
    TOTALS["faults"] += 1
    r = subprocess.run([sys.executable, "-m", "saddle", "sweep", str(spec), "--out", str(out),
                        "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    warns = [ln for ln in r.stderr.splitlines() if ln.startswith("saddle: warning:")]
    assert len(warns) == 1 and victim.name in warns[0] and "quarantine" in warns[0], r.stderr
    assert json.loads(r.stdout)["ran"] > 0
    pd.testing.assert_frame_equal(_rows(out), _rows(reference))
    assert load_spec(spec).name
