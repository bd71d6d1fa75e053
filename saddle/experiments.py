"""Running the reproduction's experiments, in one process or several.

``saddle reproduce`` runs the sweeps of ``simulations/<name>.toml`` into
``DIR/results/<name>/``. With ``jobs > 1``, ``jobs - 1`` helper processes
(``python -m saddle.experiments``) run the same sweeps into the same directories while this
process runs them too. The store's per-run claims (:mod:`saddle.sweep.store`) share the runs
out: every run is computed once, by whichever process claims it first, and each stored row is
the row a one-process run stores (a run's result depends on its config and seed only, not on
its batch or its process). Helpers take the experiments in reverse order, so the processes
meet in one experiment instead of queueing behind each other in every one.

Each sweep returns only once every run of its experiment is stored, so when this process is
through its list the whole reproduction is stored and the helpers are stopped. A helper that
dies leaves claims whose process is gone; the sweep that waits on them takes them over. A
helper whose parent has died stops after its current batch.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["EXPERIMENTS", "NETWORK_EXPERIMENTS", "spec_path", "run_experiments",
           "default_jobs"]

EXPERIMENTS = ("regimes", "dimension", "gap", "coherence", "leakage", "trajectories",
               "ns_vs_polar", "bounds", "bounds_traced", "networks")
# Network experiments: their runs are reported in their own section (not in the spectral
# settings, shapes and verdicts), beside their spectral equivalents, stored under
# results/<name>_equivalent (see saddle.networks).
NETWORK_EXPERIMENTS = ("networks",)

_log = logging.getLogger("saddle.reproduce")

# Memory one process of the quick reproduction peaks at (measured 1.7 GB), with room.
MEMORY_PER_JOB = 2 * 1024**3
MAX_DEFAULT_JOBS = 4
HELPER_STOP_S = 30.0  # how long a finished run waits for its helpers before stopping them


def spec_path(name: str) -> Path:
    from importlib.resources import files

    return Path(str(files("simulations").joinpath(f"{name}.toml")))


def default_jobs() -> int:
    """Processes for ``saddle reproduce``: the usable cores, at most 4, and no more than the
    free memory holds at about 2 GB a process (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        by_memory = max(1, free // MEMORY_PER_JOB)
    except (ValueError, OSError, AttributeError):
        by_memory = cores
    return int(max(1, min(cores, MAX_DEFAULT_JOBS, by_memory)))


def run_experiments(out: Path, quick: bool, names=EXPERIMENTS, progress=None, log=None,
                    jobs: int = 1, spec_files: dict[str, Path] | None = None) -> dict:
    """Run (or resume) every experiment's sweep into ``out/results/<name>``.

    Args:
        progress: ``progress(name) -> (on_start, on_progress)`` per experiment (the
            callbacks of :func:`saddle.sweep.run_sweep`; runs other processes store count
            as progress too).
        jobs: processes in all (this one and ``jobs - 1`` helpers).
        spec_files: spec file per name (default: ``simulations/<name>.toml``).

    Returns, per experiment, the sweep report of this process and its wall time.
    """
    files = {n: Path((spec_files or {}).get(n) or spec_path(n)) for n in names}
    helpers = _start_helpers(out, quick, names, files, jobs - 1)
    try:
        reports = _run_all(out, quick, names, files, progress, log)
    finally:
        _stop_helpers(helpers)
    return reports


def _run_all(out: Path, quick: bool, names, files, progress=None, log=None) -> dict:
    from .sweep import load_spec, run_sweep

    reports = {}
    for name in names:
        spec = load_spec(files[name], quick=quick)
        t0 = time.perf_counter()
        on_start = on_progress = None
        if progress is not None:
            on_start, on_progress = progress(name)
        rep = run_sweep(spec, out / "results" / name, on_start=on_start,
                        on_progress=on_progress, log=log)
        if name in NETWORK_EXPERIMENTS:
            _run_equivalents(spec, out, log)
        reports[name] = dict(rep.as_dict(), wall_s=time.perf_counter() - t0,
                             description=spec.source.get("description", ""))
    return reports


def _run_equivalents(spec, out: Path, log=None) -> None:
    """Run (or resume) the spectral equivalents of a network sweep's points into
    ``out/results/<name>_equivalent``."""
    from .networks import equivalent_points
    from .sweep import run_sweep

    eq = equivalent_points(spec)
    run_sweep(eq, out / "results" / eq.name, log=log)


# --- helper processes ------------------------------------------------------------------------


def _start_helpers(out: Path, quick: bool, names, files, count: int) -> list:
    helpers = []
    for k in range(1, count + 1):
        argv = [sys.executable, "-m", "saddle.experiments", str(out), "--parent",
                str(os.getpid()), *(("--quick",) if quick else ())]
        for name in reversed(names):
            argv += ["--spec", f"{name}={files[name]}"]
        log_path = out / f"helper-{k}.log"
        with open(log_path, "w") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err)
        helpers.append((proc, log_path))
    return helpers


def _stop_helpers(helpers) -> None:
    """Wait briefly for each helper (its experiments are all stored by now, or this process
    is being interrupted), then stop it; say in one line when one had failed."""
    deadline = time.monotonic() + HELPER_STOP_S
    for proc, log_path in helpers:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            continue
        if proc.returncode not in (0, None):
            _log.warning("reproduce helper %d exited with code %d (its log: %s); this process "
                         "computed the runs it left", proc.pid, proc.returncode, log_path)


def _helper_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m saddle.experiments",
                                description="A helper process of saddle reproduce --jobs N.")
    p.add_argument("out")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--spec", action="append", default=[], metavar="NAME=PATH")
    args = p.parse_args(argv)
    from .numerics import enable_x64

    enable_x64()  # the CLI's setting: the rows must be those the parent would compute
    files = dict(s.split("=", 1) for s in args.spec)

    def watch_parent(_name):
        def on_progress(_k, _counts):
            if os.getppid() != args.parent:  # the parent is gone: stop after this batch
                sys.exit(0)

        return None, on_progress

    _run_all(Path(args.out), args.quick, list(files), {n: Path(f) for n, f in files.items()},
             progress=watch_parent)
    return 0


if __name__ == "__main__":
    from .cli import run_program

    run_program(_helper_main)
