"""The results store: a directory of immutable Parquet files, written atomically.

Layout of a sweep directory::

    DIR/spec.toml                 the spec of the first sweep written here (for reference)
    DIR/runs/part-*.parquet       one file per finished batch, one row per run
    DIR/traces/part-*.parquet     diagnostic traces (long format: run_id, t, fields)
    DIR/edges/<hash>.json         stability-edge searches (the stability_edge protocol)

Every file is written under a temporary name in the same folder, flushed to disk, and then
renamed into place (``os.replace``), which is atomic on POSIX filesystems. Readers look only
at ``part-*.parquet``, so a file being written, or left behind by a killed process, is
never read. A batch's trace file is renamed before its runs file: a run's row is the commit
marker for its traces. Files never change once in place, so any number of sweeps can write
into one directory at once; a run finished by two sweeps appears in two files with
identical content and is read once (keyed by ``run_id``).
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path

import pandas as pd

__all__ = ["Store"]


def _unique_name(prefix: str, suffix: str) -> str:
    return f"{prefix}-{os.getpid()}-{socket.gethostname()[:16]}-{uuid.uuid4().hex[:12]}{suffix}"


def _atomic_write(path: Path, write) -> None:
    tmp = path.parent / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


class Store:
    """Read and append results in a sweep directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.traces_dir = self.root / "traces"
        self.edges_dir = self.root / "edges"

    def create(self) -> Store:
        for d in (self.runs_dir, self.traces_dir, self.edges_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.clean_stale_temporaries()
        return self

    def clean_stale_temporaries(self) -> int:
        """Remove temporary files left by processes on this host that no longer exist."""
        removed = 0
        for d in (self.runs_dir, self.traces_dir, self.edges_dir):
            for p in d.glob(".tmp-*"):
                try:
                    pid = int(p.name.split("-")[1])
                except (IndexError, ValueError):
                    continue
                if pid != os.getpid() and not _alive(pid):
                    p.unlink(missing_ok=True)
                    removed += 1
        return removed

    # --- writing ------------------------------------------------------------------------
    def write_batch(self, rows: list[dict], trace_rows: pd.DataFrame | None = None) -> Path:
        """Write one batch's rows (and traces) as new immutable files; returns the runs file."""
        if trace_rows is not None and len(trace_rows):
            tpath = self.traces_dir / _unique_name("part", ".parquet")
            _atomic_write(tpath, lambda f: trace_rows.to_parquet(f, index=False))
        df = pd.DataFrame(rows)
        path = self.runs_dir / _unique_name("part", ".parquet")
        _atomic_write(path, lambda f: df.to_parquet(f, index=False))
        return path

    def write_json(self, name: str, obj: dict) -> None:
        path = self.edges_dir / f"{name}.json"
        _atomic_write(path, lambda f: f.write(json.dumps(obj, sort_keys=True).encode()))

    def read_json(self, name: str) -> dict | None:
        path = self.edges_dir / f"{name}.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # --- reading ------------------------------------------------------------------------
    def run_files(self) -> list[Path]:
        return sorted(self.runs_dir.glob("part-*.parquet"))

    def finished_ids(self) -> set[str]:
        ids: set[str] = set()
        for p in self.run_files():
            ids.update(pd.read_parquet(p, columns=["run_id"])["run_id"].tolist())
        return ids

    def runs(self) -> pd.DataFrame:
        """Every stored run, one row per ``run_id``, sorted by ``run_id``."""
        frames = [pd.read_parquet(p) for p in self.run_files()]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True)
        df = df.drop_duplicates("run_id", keep="first")
        return df.sort_values("run_id", kind="stable").reset_index(drop=True)

    def traces(self, run_ids=None) -> pd.DataFrame:
        """Trace rows of finished runs (optionally only ``run_ids``), one copy per run."""
        files = sorted(self.traces_dir.glob("part-*.parquet"))
        if not files:
            return pd.DataFrame()
        frames = []
        seen: set[str] = set()
        wanted = None if run_ids is None else set(run_ids)
        for p in files:
            f = pd.read_parquet(p)
            keep = ~f["run_id"].isin(seen)
            if wanted is not None:
                keep &= f["run_id"].isin(wanted)
            f = f[keep]
            if len(f):
                frames.append(f)
                seen.update(f["run_id"].unique().tolist())
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True)
        done = self.finished_ids()
        return df[df["run_id"].isin(done)].reset_index(drop=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
