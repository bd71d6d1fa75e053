"""Plan a sweep into runs, skip the finished ones, execute batches, store rows.

A run is one (condition, seed, protocol) triple. Its ``run_id`` is a content hash of the
normalized condition (:meth:`Config.config_hash`), the seed, the protocol and the learning
rate multiplier, so the same run gets the same id in every sweep that contains it, and
re-running a sweep (or a larger one) skips what is already stored.

Runs are grouped into batches that share a compiled program (same structure and landscape
arrays), at most ``batch_runs`` runs each. A batch is the unit of work and of storage: its
rows land in one Parquet file, atomically, when it finishes. The engine's results do not
depend on how runs are batched (fixed-size run blocks, deterministic reductions), so a
resumed sweep, a sweep with another batch size and the Dask executor all give the same rows.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config import Config
from ..engine import resolve_backend, run_batch, shared_arrays_key, structure_of
from ..errors import SaddleInputError
from ..memory import runs_that_fit
from ..numerics import x64_enabled
from ..records import batch_arrays, run_records
from .protocols import (
    EDGE_CEILING,
    EDGE_GROWTH,
    EDGE_RESOLUTION,
    MATCHED,
    find_stability_edge,
    matched_lr,
)
from .spec import SweepSpec
from .store import Store

__all__ = ["Run", "PROTOCOL_COLUMNS", "plan_runs", "make_batches", "execute_batch", "run_sweep",
           "SweepReport"]

_BATCH_ELEMENTS = 1 << 24  # most B * m * n per batch by default (memory stays O(B mn))


@dataclass(frozen=True)
class Run:
    run_id: str
    config: Config  # the point's config (seeds: the spec's count)
    seed: int
    lr_protocol: str
    lr_multiplier: float
    # How the protocol chose the rate, stored with the row (see PROTOCOL_COLUMNS).
    info: tuple[tuple[str, Any], ...] = ()
    landscape_draw: int | None = None  # j of the spec's landscape_draws (None: not declared)


# The row columns that say how each run's learning rate was chosen (every row has them):
# lr_norm: the matched norm (rms, frobenius, spectral) for matched_*, "none" otherwise;
# lr_base: the rate lr_multiplier multiplies (tuned: the config's rate; stability_edge: the
# config's rate; fixed and matched_*: the rate itself); lr_grid: the tuned grid
# ("0.25,1,4"), "" otherwise; edge_lr: the stability edge found (NaN off stability_edge);
# edge_capped: True when that search found no divergence up to its ceiling (not an edge).
PROTOCOL_COLUMNS = ("lr_norm", "lr_base", "lr_grid", "edge_lr", "edge_capped")


def _info(lr_base: float, lr_norm: str = "none", lr_grid: str = "",
          edge_lr: float = float("nan"), edge_capped: bool = False) -> tuple:
    return (("lr_norm", lr_norm), ("lr_base", float(lr_base)), ("lr_grid", lr_grid),
            ("edge_lr", float(edge_lr)), ("edge_capped", bool(edge_capped)))


def _hash(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def run_id(config: Config, seed: int, protocol: str, multiplier: float) -> str:
    """The run's identity: its condition, seed and protocol, and what else changes its
    numbers: the engine that will run it and the process's x64 setting."""
    return _hash(dict(c=config.config_hash(), s=int(seed), p=protocol, k=float(multiplier),
                      e=resolve_backend(config), x64=x64_enabled()))


def plan_runs(spec: SweepSpec, store: Store | None = None, log=None) -> list[Run]:
    """Every run of the spec, protocols resolved (stability-edge searches are cached).

    Refuses (one-line :class:`SaddleInputError`) a spec where two single-rate protocols
    (fixed, matched_*, stability_edge) give an optimizer the same run condition: those cells
    would be run and reported twice. The deterministic protocols are checked before any
    stability-edge probe runs. ``tuned`` is a search over its grid and is not checked.
    """
    seen: dict[str, str] = {}
    for point in spec.points:
        if point.lr_protocol in _DETERMINISTIC:
            for cfg, _, _ in _protocol_configs(point.config, point.lr_protocol, spec, None, log):
                _check_distinct(seen, cfg, point.lr_protocol)
    runs: list[Run] = []
    for point in spec.points:
        proto = point.lr_protocol
        for cfg, k, info in _protocol_configs(point.config, proto, spec, store, log,
                                              _first_draw(point)):
            if proto == "stability_edge":
                _check_distinct(seen, cfg, proto)
            for seed in point.config.seed_list:
                runs.append(Run(run_id(cfg, seed, proto, k), cfg, seed, proto, float(k), info,
                                point.landscape_draw))
    # Duplicates (e.g. the same condition listed twice) collapse to one run.
    unique: dict[str, Run] = {}
    for r in runs:
        unique.setdefault(r.run_id, r)
    return list(unique.values())


_DETERMINISTIC = ("fixed", *MATCHED)


def _check_distinct(seen: dict[str, str], cfg: Config, proto: str) -> None:
    """Record that ``proto`` runs the condition ``cfg``; refuse a second protocol on it.

    Learning rates are compared to 12 significant digits (target / norm may round)."""
    key = cfg.replace(learning_rate=float(f"{cfg.learning_rate:.12g}")).config_hash()
    other = seen.setdefault(key, proto)
    if other != proto:
        raise SaddleInputError(
            f"spec: lr_protocol: {other} and {proto} give {cfg.optimizer} the same runs at "
            f"{cfg.m}x{cfg.n} (learning_rate {cfg.learning_rate:.4g}); allowed: protocols "
            f"that give each optimizer distinct rates (drop one, or exclude = [{{ optimizer "
            f'= "{cfg.optimizer}", lr_protocol = "{proto}" }}])')


def _first_draw(point) -> Config:
    """The point's config on the first of its landscape draws (itself without draws)."""
    c = point.config
    if point.landscape_draw is None:
        return c
    return c.replace(landscape_seed=c.landscape_seed - point.landscape_draw)


def _protocol_configs(c: Config, proto: str, spec: SweepSpec, store: Store | None,
                      log, edge_config: Config | None = None
                      ) -> list[tuple[Config, float, tuple]]:
    """The (config, learning-rate multiplier, row info) triples that ``proto`` runs for the
    point ``c``. A protocol sets the rate per condition and D, not per landscape draw: the
    stability edge is searched on ``edge_config`` (the point's first draw) and used by every
    draw, as ``tuned`` keeps one rate for all draws."""
    if proto == "fixed":
        return [(c, 1.0, _info(c.learning_rate))]
    if proto in MATCHED:
        norm = MATCHED[proto]
        lr = matched_lr(c, norm, spec.target(norm))
        return [(c.replace(learning_rate=lr), 1.0, _info(lr, lr_norm=norm))]
    if proto == "tuned":
        grid = ",".join(f"{k:g}" for k in spec.lr_grid)
        return [(c.replace(learning_rate=c.learning_rate * k), k,
                 _info(c.learning_rate, lr_grid=grid)) for k in spec.lr_grid]
    # stability_edge
    probe = edge_config or c
    key = _hash(dict(c=probe.config_hash(), grid=list(spec.edge_grid), search=_EDGE_SEARCH))
    edge = store.read_json(key) if store is not None else None
    if edge is None:
        if log is not None:
            log(f"stability edge: {c.optimizer} {c.m}x{c.n}")
        edge = find_stability_edge(probe, spec.edge_grid)
        if store is not None:
            store.write_json(key, edge)
    if edge["edge_lr"] is None:
        return []  # diverges at every grid value: nothing to run (reported by results)
    info = _info(c.learning_rate, edge_lr=edge["edge_lr"], edge_capped=edge["capped"])
    return [(c.replace(learning_rate=edge["edge_lr"]), edge["multiplier"], info)]


# The search rule, part of the edge cache's key: an edge stored by an older rule (capped at
# the top of its grid) is searched again.
_EDGE_SEARCH = dict(growth=EDGE_GROWTH, ceiling=EDGE_CEILING, resolution=EDGE_RESOLUTION)


def make_batches(runs: list[Run], batch_runs: int | None = None,
                 trace_stride: int | None = None) -> list[list[Run]]:
    """Group runs that share a compiled program; cut groups into batches."""
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        groups.setdefault((structure_of(r.config), shared_arrays_key(r.config)), []).append(r)
    batches = []
    for members in groups.values():
        D = members[0].config.D
        size = batch_runs or max(1, min(256, _BATCH_ELEMENTS // D))
        # Memory-aware cap: the shared arrays and the batch's runs (with their trace rows)
        # within half of this machine's memory (saddle.memory.memory_estimate).
        size = min(size, runs_that_fit(members[0].config, trace_stride))
        for i in range(0, len(members), size):
            batches.append(members[i : i + size])
    return batches


def execute_batch(configs: list[Config], seeds: list[int], trace_stride: int | None,
                  x64: bool | None = None) -> dict:
    """Run one batch in this process; returns plain arrays (picklable, for Dask).

    ``x64``: the numerical setting of the process that planned the sweep. A Dask worker is
    another process, so the batch runs under the same setting, scoped to this call
    (``jax.enable_x64`` as a context): the two executors give the same rows, and the
    worker's process-wide setting is never changed behind its back.
    """
    if x64 is None or x64 == x64_enabled():
        return batch_arrays(run_batch(configs, seeds, trace_stride=trace_stride))
    import jax

    with jax.enable_x64(x64):
        return batch_arrays(run_batch(configs, seeds, trace_stride=trace_stride))


def batch_rows(
    batch: list[Run], result: dict, sweep: str
) -> tuple[list[dict], pd.DataFrame | None]:
    """Result rows (one per run) and the long-format trace rows of one batch."""
    rows = []
    for r, record in zip(batch, run_records(result), strict=True):
        c = r.config
        row = dict(run_id=r.run_id, config_hash=c.config_hash(), sweep=sweep,
                   lr_protocol=r.lr_protocol, lr_multiplier=r.lr_multiplier,
                   **dict(r.info or _info(c.learning_rate)), D=c.D, aspect=c.m / c.n, **record)
        if r.landscape_draw is not None:
            row["landscape_draw"] = r.landscape_draw
        rows.append({**c.to_dict(), "seed": r.seed, **row})
    traces = None
    if result.get("traces"):
        frames = []
        for r, tr in zip(batch, result["traces"], strict=True):
            cols = {"run_id": r.run_id, "t": tr["t"]}
            for k, v in tr.items():
                if k == "t":
                    continue
                v = np.asarray(v)
                if v.ndim == 2:
                    for i in range(v.shape[1]):
                        cols[f"escape_coordinate_{i}"] = v[:, i]
                else:
                    cols[k] = v
            frames.append(pd.DataFrame(cols))
        traces = pd.concat(frames, ignore_index=True) if frames else None
    return rows, traces


@dataclass
class SweepReport:
    total: int
    skipped: int
    ran: int
    escaped: int
    censored: int
    diverged: int
    batches: int
    wall_s: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


ProgressFn = Callable[[int, dict], None]  # (runs just finished, counts so far)


def run_sweep(
    spec: SweepSpec,
    out,
    *,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    batch_runs: int | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: ProgressFn | None = None,
    log: Callable[[str], None] | None = None,
) -> SweepReport:
    """Run every unfinished run of ``spec`` and store the rows under ``out``.

    Args:
        executor: ``local`` (batched engine in this process) or ``dask``.
        scheduler: a Dask scheduler address; None starts a ``LocalCluster`` of ``workers``
            single-threaded worker processes.
        on_start: called once with (runs to do, runs already stored).
        on_progress: called with (runs finished since last call, running counts).
    """
    t0 = time.perf_counter()
    store = Store(out).create()
    runs = plan_runs(spec, store, log=log)
    done = store.finished_ids()
    todo = [r for r in runs if r.run_id not in done]
    skipped = len(runs) - len(todo)
    if on_start is not None:
        on_start(len(todo), skipped)
    batches = make_batches(todo, batch_runs or spec.batch_runs, spec.trace_stride)
    counts = dict(escaped=0, censored=0, diverged=0, done=0)  # runs this sweep stored
    theirs = dict.fromkeys(counts, 0)  # runs other sweeps on this directory stored

    def commit(batch, result):
        rows, traces = batch_rows(batch, result, spec.name)
        store.write_batch(rows, traces)
        for row in rows:
            counts[row["status"]] += 1
        counts["done"] += len(rows)
        if on_progress is not None:
            on_progress(len(rows), {k: counts[k] + theirs[k] for k in counts})

    def stored_by_others(ids):
        if on_progress is None:
            return
        rows = store.runs()
        for status in rows.loc[rows["run_id"].isin(ids), "status"]:
            theirs[status] += 1
        theirs["done"] += len(ids)
        on_progress(len(ids), {k: counts[k] + theirs[k] for k in counts})

    if executor not in ("local", "dask"):
        raise ValueError(f"executor: got {executor!r}; allowed: local, dask")
    try:
        _run_claimed(store, batches, commit, executor, spec, scheduler, workers, batch_runs,
                     stored_by_others)
    finally:
        store.release_all()
    return SweepReport(total=len(runs), skipped=skipped, ran=counts["done"],
                       escaped=counts["escaped"], censored=counts["censored"],
                       diverged=counts["diverged"], batches=len(batches),
                       wall_s=time.perf_counter() - t0)


def _run_claimed(store: Store, batches, commit, executor, spec, scheduler, workers,
                 batch_runs, stored_by_others=None) -> None:
    """Compute the runs of ``batches`` that this process can claim, then wait for those that
    other sweeps on the same directory hold, taking them over if their claims go stale.

    Claims are per run (batches differ between sweeps started at different times), so two
    sweeps into one directory never compute the same run; each returns once every run is
    stored. ``stored_by_others(ids)`` hears of the runs other sweeps stored meanwhile.
    """
    others: list[Run] = []  # runs another live sweep is computing

    def claimed(batch: list[Run]) -> list[Run]:
        """The runs of ``batch`` this process now holds and nobody has stored yet."""
        mine = [r for r in batch if store.claim(r.run_id)]
        held = {r.run_id for r in mine}
        others.extend(r for r in batch if r.run_id not in held)
        if not mine:
            return []
        done = store.finished_ids()  # re-read: another sweep may have stored them meanwhile
        theirs = [r.run_id for r in mine if r.run_id in done]
        store.release_many(theirs)
        if theirs and stored_by_others is not None:
            stored_by_others(theirs)
        return [r for r in mine if r.run_id not in done]

    def commit_and_release(batch, result):
        try:
            commit(batch, result)
        finally:
            store.release_many(r.run_id for r in batch)

    pending = batches
    while pending:
        if executor == "local":
            for batch in pending:
                batch = claimed(batch)
                if batch:
                    commit_and_release(batch, execute_batch(
                        [r.config for r in batch], [r.seed for r in batch], spec.trace_stride))
        else:
            mine = [b for b in (claimed(b) for b in pending) if b]
            if mine:
                _run_dask(mine, spec, scheduler, workers, commit_and_release)
        if not others:
            break
        done = store.finished_ids()
        waiting = [r for r in others if r.run_id not in done]
        theirs = [r.run_id for r in others if r.run_id in done]
        if theirs and stored_by_others is not None:
            stored_by_others(theirs)
        others.clear()
        if waiting:
            time.sleep(0.5)
        pending = make_batches(waiting, batch_runs or spec.batch_runs, spec.trace_stride)


# Seconds to wait for a Dask scheduler given by address before giving up with one line.
SCHEDULER_TIMEOUT = 3.0
_SCHEDULER_ADDRESS = re.compile(
    r"(?P<proto>tcp|tls)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})",
    re.ASCII)


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Refuse, in one line, a scheduler address that is not ``tcp://HOST:PORT`` (or
    ``tls://``) or where nothing accepts a connection within ``timeout`` seconds."""
    match = _SCHEDULER_ADDRESS.fullmatch(address.strip()) if isinstance(address, str) else None
    port = int(match["port"]) if match else 0
    if not match or not 1 <= port <= 65535:
        raise SaddleInputError(f"--scheduler: got {address!r}; allowed: a Dask scheduler "
                               "address tcp://HOST:PORT (port 1-65535)")
    host = match["host"].strip("[]")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise SaddleInputError(f"--scheduler: cannot connect to {address!r} within {timeout:g} "
                               f"s ({why}); allowed: the address of a running Dask scheduler, "
                               "or no --scheduler (a local cluster)") from None


def _run_dask(batches, spec, scheduler, workers, commit) -> None:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        check_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT:g}s")
        except (OSError, TimeoutError) as e:  # it answered the probe, then not Dask
            raise SaddleInputError(f"--scheduler: {scheduler!r} did not answer as a Dask "
                                   f"scheduler within {SCHEDULER_TIMEOUT:g} s ({e})") from None

    try:
        futures = {}
        x64 = x64_enabled()
        for i, batch in enumerate(batches):
            fut = client.submit(execute_batch, [r.config for r in batch],
                                [r.seed for r in batch], spec.trace_stride, x64, pure=False,
                                key=f"saddle-batch-{i}-{batch[0].run_id}")
            futures[fut] = batch
        for fut in as_completed(list(futures)):
            commit(futures[fut], fut.result())
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
