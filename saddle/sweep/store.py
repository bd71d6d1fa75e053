"""The results store: a directory of immutable Parquet files, written atomically.

Layout of a sweep directory::

    DIR/spec.toml                 the spec of the first sweep written here (for reference)
    DIR/runs/part-*.parquet       one file per finished batch, one row per run
    DIR/traces/part-*.parquet     diagnostic traces (long format: run_id, t, fields)
    DIR/edges/<hash>.json         stability-edge searches (the stability_edge protocol)
    DIR/claims/<key>.claim        runs a live sweep is computing (see :meth:`Store.claim`)
    DIR/quarantine/{runs,traces}/ part files that could not be read, moved aside

Every file is written under a temporary name in the same folder, flushed to disk, and then
renamed into place (``os.replace``), which is atomic on POSIX filesystems. Readers look only
at ``part-*.parquet``, so a file being written, or left behind by a killed process, is
never read. A batch's trace file is renamed before its runs file: a run's row is the commit
marker for its traces. The two files of a batch share their name's base
(``part-<pid>-<host>-<token>~<digest>.parquet``, the digest a checksum of the file), so a
trace file that turns out unreadable takes its runs file into quarantine too, and a resumed
sweep recomputes both. Files never change once in place, so any number of sweeps can write into one
directory at once; a run finished by two sweeps appears in two files with identical content
and is read once (keyed by ``run_id``).

Reading is tolerant: a part file that is not a readable Parquet file (truncated, empty,
overwritten) or that lacks the store's columns (a foreign file) is moved to DIR/quarantine/
with a one-line warning (logger ``saddle.store``), and reading goes on with the valid files;
a resumed sweep recomputes the runs it held. A part of an older schema is migrated on read;
one of a newer schema is refused in one line.

Writing fails in one line: any ``OSError`` while writing (no space left, read-only
filesystem, permission denied) raises :class:`StoreError` naming the file and the reason.
Nothing partial is left under a ``part-*`` name, so the store stays resumable.

Schema versions (Parquet key-value metadata ``saddle.schema_version`` of each part):

* 1: no version recorded (stores written before versions existed); ``D`` may be missing.
* 2: the version is recorded; run parts always have ``D``. Extra columns (such as the
  resolved ``engine``, which the runner may add) are stored and read as they are.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from pathlib import Path

import pandas as pd

from ..errors import SaddleInputError

__all__ = ["Store", "StoreError", "SCHEMA_VERSION"]

log = logging.getLogger("saddle.store")

SCHEMA_VERSION = 2
_VERSION_KEY = b"saddle.schema_version"
_REQUIRED = {"runs": ("run_id", "status"), "traces": ("run_id", "t")}
TEMP_MAX_AGE_S = 3600.0  # a temporary this old is stale whoever wrote it
CLAIM_STALE_S = 900.0  # a claim not refreshed for this long is stale whoever holds it
HEARTBEAT_S = 60.0  # how often a live process refreshes its claims
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "localhost"


class StoreError(SaddleInputError):
    """The store cannot be written (or a part cannot be understood): one line, no traceback."""


def _errno_text(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, "")
    reason = e.strerror or str(e) or type(e).__name__
    return f"{reason} ({name})" if name else reason


def _write_error(path: Path, e: OSError) -> StoreError:
    return StoreError(f"{path}: cannot write: {_errno_text(e)}; nothing partial was stored, "
                      "re-run the same command to resume once this is fixed")


# --- atomic writes ------------------------------------------------------------------------
# The four steps are module functions so that tests can inject faults (ENOSPC, EROFS) into
# each of them.


def _open_tmp(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync(fd: int) -> None:
    os.fsync(fd)


def _replace(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def temp_name(name: str) -> str:
    """A temporary name for ``name``: host, process id and a random token, so that stale
    temporaries can be told apart from a live writer's (see ``clean_stale_temporaries``)."""
    return f".tmp~{_HOST}~{os.getpid()}~{uuid.uuid4().hex[:12]}~{name}"


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a complete file under that name, or none.

    Raises :class:`StoreError` (one line) on any ``OSError``; the temporary is removed.
    """
    path = Path(path)
    tmp = path.parent / temp_name(path.name)
    fd = None
    try:
        fd = _open_tmp(tmp)
        _write_all(fd, data)
        _fsync(fd)
        os.close(fd)
        fd = None
        _replace(tmp, path)
    except OSError as e:
        raise _write_error(path, e) from None
    finally:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # read-only now, say: a later create() removes it (its pid is dead)
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as Parquet, in memory, with the store's schema version in the metadata.

    Serializing before touching the disk keeps every disk error in :func:`atomic_write`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_VERSION_KEY] = str(SCHEMA_VERSION).encode()
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    # Page checksums (CRC32): damage inside a column chunk is an error on read, not
    # silently different numbers.
    pq.write_table(table, sink, write_page_checksum=True)
    return sink.getvalue().to_pybytes()


def _part_name(base: str, data: bytes) -> str:
    """``<base>~<digest>.parquet``: the digest (SHA-256, 16 hex) checks the whole file on
    read; a batch's runs and traces files share ``base``."""
    return f"{base}~{hashlib.sha256(data).hexdigest()[:16]}.parquet"


def _split_name(name: str) -> tuple[str, str | None]:
    """(base, digest) of a part's name; parts written before digests have none."""
    m = re.fullmatch(r"(.+)~([0-9a-f]{16})\.parquet", name)
    if m:
        return m.group(1), m.group(2)
    return name.removesuffix(".parquet"), None


def _parse_temp(name: str) -> tuple[str, int] | None:
    """(host, pid) of a temporary's name; old names (``.tmp-<pid>-...``) are this host's."""
    if name.startswith(".tmp~"):
        parts = name.split("~", 4)
        if len(parts) == 5 and parts[2].isdigit():
            return parts[1], int(parts[2])
        return None
    m = re.match(r"\.tmp-(\d+)-", name)
    return (_HOST, int(m.group(1))) if m else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """Read and append results in a sweep directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.traces_dir = self.root / "traces"
        self.edges_dir = self.root / "edges"
        self.claims_dir = self.root / "claims"
        self.quarantine_dir = self.root / "quarantine"
        self._cache: dict[tuple, pd.DataFrame | None] = {}
        self._checked: set[tuple] = set()
        self._held: dict[str, str] = {}  # claim key -> our token
        self._lock = threading.Lock()
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()

    def create(self) -> Store:
        try:
            for d in (self.runs_dir, self.traces_dir, self.edges_dir, self.claims_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.root}: cannot create the store: {_errno_text(e)}") from None
        self.clean_stale_temporaries()
        return self

    def clean_stale_temporaries(self, max_age_s: float = TEMP_MAX_AGE_S) -> int:
        """Remove temporaries whose writer is gone: this host's of dead processes, and any
        older than ``max_age_s`` (a write takes seconds). Another host's fresh temporary may
        be a live writer's, so it is left alone. Returns the number removed."""
        removed = 0
        now = time.time()
        for d in (self.root, self.runs_dir, self.traces_dir, self.edges_dir, self.claims_dir):
            try:
                candidates = list(d.glob(".tmp[-~]*"))
            except OSError:
                continue
            for p in candidates:
                owner = _parse_temp(p.name)
                try:
                    age = now - p.stat().st_mtime
                except OSError:
                    continue
                dead = (owner is not None and owner[0] == _HOST and owner[1] != os.getpid()
                        and not _alive(owner[1]))
                if dead or age > max_age_s:
                    try:
                        p.unlink(missing_ok=True)
                        removed += 1
                    except OSError:
                        pass  # read-only store: nothing to clean, reading still works
        return removed

    # --- writing ------------------------------------------------------------------------
    def write_batch(self, rows: list[dict], trace_rows: pd.DataFrame | None = None) -> Path:
        """Write one batch's rows (and traces) as new immutable files; returns the runs file.

        The traces file goes first and has the same name: the runs file commits both."""
        base = f"part-{os.getpid()}-{_HOST[:16]}-{uuid.uuid4().hex[:12]}"
        data = _parquet_bytes(pd.DataFrame(rows))
        if trace_rows is not None and len(trace_rows):
            tdata = _parquet_bytes(trace_rows)
            atomic_write(self.traces_dir / _part_name(base, tdata), tdata)
        path = self.runs_dir / _part_name(base, data)
        atomic_write(path, data)
        return path

    def write_json(self, name: str, obj: dict) -> None:
        path = self.edges_dir / f"{name}.json"
        atomic_write(path, json.dumps(obj, sort_keys=True).encode())

    def read_json(self, name: str) -> dict | None:
        path = self.edges_dir / f"{name}.json"
        try:
            obj = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None  # missing or unreadable: the search runs again and rewrites it
        return obj if isinstance(obj, dict) else None

    def write_spec(self, text: bytes) -> bool:
        """Keep a copy of the sweep's spec as DIR/spec.toml, atomically.

        Only the first sweep's spec is kept; an empty spec.toml (left by a sweep started on
        a full disk before writes were atomic) is rewritten. Returns whether it wrote."""
        path = self.root / "spec.toml"
        try:
            if path.stat().st_size > 0:
                return False
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreError(f"{path}: cannot read: {_errno_text(e)}") from None
        atomic_write(path, text)
        return True

    # --- reading ------------------------------------------------------------------------
    def run_files(self) -> list[Path]:
        return sorted(self.runs_dir.glob("part-*.parquet"))

    def trace_files(self) -> list[Path]:
        return sorted(self.traces_dir.glob("part-*.parquet"))

    def _read_part(self, path: Path, kind: str) -> pd.DataFrame | None:
        """One part as a DataFrame (migrated to the current schema), or None when it is
        unreadable or foreign (then it has been moved to quarantine) or gone."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None  # quarantined by a concurrent reader
        except OSError as e:
            raise StoreError(f"{path}: cannot read: {_errno_text(e)}") from None
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key in self._cache:
            return self._cache[key]
        df = self._load_part(path, kind)
        self._cache[key] = df
        return df

    def _load_part(self, path: Path, kind: str) -> pd.DataFrame | None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"{path}: cannot read: {_errno_text(e)}") from None
        digest = _split_name(path.name)[1]
        if digest is not None and hashlib.sha256(data).hexdigest()[:16] != digest:
            # Most of a small part is its footer (schema, statistics), which Parquet does
            # not checksum: the name's digest catches damage anywhere in the file.
            self._quarantine(path, kind, "content does not match the checksum in its name")
            return None
        try:
            table = pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
        except (OSError, pa.ArrowException, ValueError) as e:
            self._quarantine(path, kind, f"not a readable Parquet file: {_one_line(e)}")
            return None
        meta = table.schema.metadata or {}
        try:
            version = int(meta.get(_VERSION_KEY, b"1"))
        except ValueError:
            version = -1
        if version > SCHEMA_VERSION or version < 1:
            raise StoreError(
                f"{path}: schema version {meta.get(_VERSION_KEY, b'?').decode(errors='replace')}"
                f"; allowed: 1 to {SCHEMA_VERSION} (written by another saddle version; "
                "upgrade saddle or move the file out of the store)")
        try:
            df = table.to_pandas()
        except (pa.ArrowException, ValueError, TypeError) as e:
            self._quarantine(path, kind, f"not readable as a table: {_one_line(e)}")
            return None
        missing = [c for c in _REQUIRED[kind] if c not in df.columns]
        if missing:
            self._quarantine(path, kind, f"not a saddle {kind} file: no column "
                             + ", ".join(missing))
            return None
        if kind == "runs":
            df = self._migrate_runs(df, path)
        return df

    def _migrate_runs(self, df: pd.DataFrame, path: Path) -> pd.DataFrame | None:
        """Bring a version-1 runs part to the current columns (D and aspect from m, n)."""
        if "D" not in df.columns or "aspect" not in df.columns:
            if not {"m", "n"} <= set(df.columns):
                self._quarantine(path, "runs", "not a saddle runs file: no D and no m, n")
                return None
            df = df.copy()
            if "D" not in df.columns:
                df["D"] = df["m"].astype("int64") * df["n"].astype("int64")
            if "aspect" not in df.columns:
                df["aspect"] = df["m"] / df["n"]
        return df

    def _quarantine(self, path: Path, kind: str, reason: str) -> None:
        """Move a bad part (and, for traces, the runs file that commits it) aside."""
        self._move_aside(path, kind, reason)
        if kind == "traces":
            # Its runs part says these runs are finished, and a resume would then never
            # rewrite their traces: move it aside too, so that they are recomputed.
            base = _split_name(path.name)[0]
            for partner in self.run_files():
                if _split_name(partner.name)[0] == base:
                    self._move_aside(partner, "runs", f"its traces file {kind}/{path.name} "
                                     "was moved aside; its runs will be recomputed")

    def _move_aside(self, path: Path, kind: str, reason: str) -> bool:
        rel = f"{kind}/{path.name}"
        dest_dir = self.quarantine_dir / kind
        dest = dest_dir / path.name
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            if dest.exists():
                dest = dest_dir / f"{path.stem}-{uuid.uuid4().hex[:8]}{path.suffix}"
            _replace(path, dest)
        except FileNotFoundError:
            return False  # another reader moved it first (and warned)
        except OSError as e:
            log.warning("%s: %s; skipped (cannot move it to quarantine/: %s)", rel, reason,
                        _errno_text(e))
            return False
        log.warning("%s: %s; moved to quarantine/%s/%s", rel, reason, kind, dest.name)
        return True

    def _run_frames(self) -> list[pd.DataFrame]:
        frames = []
        for p in self.run_files():
            df = self._read_part(p, "runs")
            if df is not None and len(df):
                frames.append(df)
        return frames

    def check_traces(self) -> None:
        """Read every trace part not checked yet by this Store; a bad one is quarantined
        with its runs part, so that its runs count as unfinished and are recomputed.
        (Trace parts are not kept in memory: only the verdict is.)"""
        for p in self.trace_files():
            try:
                st = p.stat()
            except OSError:
                continue
            key = (str(p), st.st_size, st.st_mtime_ns)
            if key not in self._checked:
                self._load_part(p, "traces")
                self._checked.add(key)

    def finished_ids(self) -> set[str]:
        """Run ids of every readable runs part (every column read: a part that is
        unreadable anywhere does not count as finished, and is quarantined; so is a runs
        part whose traces part is unreadable)."""
        self.check_traces()
        ids: set[str] = set()
        for df in self._run_frames():
            ids.update(df["run_id"].dropna().astype(str).tolist())
        return ids

    def runs(self) -> pd.DataFrame:
        """Every stored run, one row per ``run_id``, sorted by ``run_id``."""
        frames = self._run_frames()
        if not frames:
            return pd.DataFrame()
        df = _concat(frames)
        df = df.drop_duplicates("run_id", keep="first")
        return df.sort_values("run_id", kind="stable").reset_index(drop=True)

    def traces(self, run_ids=None) -> pd.DataFrame:
        """Trace rows of finished runs (optionally only ``run_ids``), one copy per run."""
        frames = []
        seen: set[str] = set()
        wanted = None if run_ids is None else set(run_ids)
        for p in self.trace_files():
            f = self._read_part(p, "traces")
            if f is None:
                continue
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

    # --- claims ---------------------------------------------------------------------------
    # A sweep claims a unit of work (a batch, a run) before computing it, so that sweeps
    # running into one directory at once never compute the same run twice. A claim is a
    # file created with O_CREAT | O_EXCL (atomic on local filesystems and NFSv3+) holding
    # host, pid, token and time. A live process refreshes its claims' mtime every
    # HEARTBEAT_S seconds; a claim is stale when its process is dead (same host) or its
    # mtime is older than CLAIM_STALE_S (any host), and a stale claim may be taken over.

    def _claim_path(self, key: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", key) or key.startswith("."):
            raise ValueError(f"claim key: got {key!r}; allowed: letters, digits, . _ -")
        return self.claims_dir / f"{key}.claim"

    def claim(self, key: str, stale_after_s: float = CLAIM_STALE_S) -> bool:
        """Claim ``key`` for this process: True when it is ours now (call :meth:`release`
        when the work is stored), False when a live process holds it."""
        path = self._claim_path(key)
        token = uuid.uuid4().hex
        body = json.dumps(dict(host=_HOST, pid=os.getpid(), token=token,
                               time=time.time())).encode()
        for _ in range(3):
            if self._create_claim(path, body):
                with self._lock:
                    self._held[key] = token
                self._start_heartbeat()
                return True
            if not self._take_over_if_stale(path, stale_after_s):
                return False
        return False

    def claim_many(self, keys, stale_after_s: float = CLAIM_STALE_S) -> list[str]:
        """Claim each of ``keys``; returns those now held by this process."""
        return [k for k in keys if self.claim(k, stale_after_s)]

    def release(self, key: str) -> None:
        """Give up a claim of this process (after its work is stored, or on failure)."""
        path = self._claim_path(key)
        with self._lock:
            token = self._held.pop(key, None)
        if token is not None and _claim_info(path).get("token") == token:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # read-only now: stale once this process exits
        if not self._held:
            self._stop_heartbeat()

    def release_many(self, keys) -> None:
        for key in keys:
            self.release(key)

    def release_all(self) -> None:
        for key in list(self._held):
            self.release(key)

    def held_claims(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def heartbeat(self) -> None:
        """Refresh the mtime of this process's claims (done every HEARTBEAT_S seconds by a
        background thread while any is held)."""
        with self._lock:
            keys = list(self._held)
        for key in keys:
            try:
                os.utime(self._claim_path(key))
            except OSError:
                pass

    def _create_claim(self, path: Path, body: bytes) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except FileNotFoundError:
            try:
                self.claims_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise _write_error(path, e) from None
            return self._create_claim(path, body)
        except OSError as e:
            raise _write_error(path, e) from None
        try:
            _write_all(fd, body)
        except OSError as e:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise _write_error(path, e) from None
        os.close(fd)
        return True

    def _take_over_if_stale(self, path: Path, stale_after_s: float) -> bool:
        """Remove ``path`` if its claim is stale; True when the caller should retry.

        Two processes may find one claim stale at once; a lock file (itself an O_EXCL file)
        lets one of them re-check and remove it, so a fresh claim is never removed."""
        info = _claim_info(path)
        if info is None:
            return True  # released meanwhile
        if not _stale(info, stale_after_s):
            return False
        lock = path.with_name(path.name + ".takeover")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            # Someone is taking it over now; a lock left by a process that died in that
            # instant is removed once it is clearly old.
            try:
                if time.time() - lock.stat().st_mtime > 60:
                    lock.unlink(missing_ok=True)
            except OSError:
                pass
            return False
        except OSError as e:
            raise _write_error(lock, e) from None
        os.close(fd)
        try:
            again = _claim_info(path)
            if again is None:
                return True
            if again.get("token") != info.get("token") or not _stale(again, stale_after_s):
                return False
            path.unlink(missing_ok=True)
            return True
        finally:
            lock.unlink(missing_ok=True)

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._beat is not None and self._beat.is_alive():
                return
            self._stop = threading.Event()
            stop = self._stop

            def beat():
                while not stop.wait(HEARTBEAT_S):
                    self.heartbeat()

            self._beat = threading.Thread(target=beat, name="saddle-claims", daemon=True)
            self._beat.start()

    def _stop_heartbeat(self) -> None:
        with self._lock:
            if self._beat is not None:
                self._stop.set()
                self._beat = None


def _claim_info(path: Path) -> dict | None:
    """The claim's content plus its mtime, or None when there is no claim file. A claim
    being written (empty or partial) reads as a fresh claim of an unknown process."""
    try:
        st = path.stat()
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return {"mtime": time.time()}
    try:
        info = json.loads(text)
        if not isinstance(info, dict):
            info = {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        info = {}
    info["mtime"] = st.st_mtime
    return info


def _stale(info: dict, stale_after_s: float) -> bool:
    if time.time() - info["mtime"] > stale_after_s:
        return True
    pid = info.get("pid")
    return (info.get("host") == _HOST and isinstance(pid, int) and pid != os.getpid()
            and not _alive(pid))


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Row-wise concatenation where a column that is all missing in one part (a protocol
    column NaN off its protocol) takes its dtype from the parts that hold values."""
    if len(frames) == 1:
        return frames[0].copy()
    cols = list(dict.fromkeys(c for f in frames for c in f.columns))
    kept = [f.dropna(axis=1, how="all") for f in frames]
    return pd.concat(kept, ignore_index=True).reindex(columns=cols)
