"""Run one configuration for one or many seeds and collect per-run results."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import engine
from .config import Config
from .stats import km_median, success_rate

__all__ = ["RunResult", "SimulationResult", "simulate", "run_many", "default_batch_size"]

_STATUS_NAMES = {
    engine.ESCAPED: "escaped",
    engine.DIVERGED: "diverged",
    engine.CENSORED: "censored",
}


@dataclass(frozen=True)
class RunResult:
    """One run's outcome.

    ``escape_time`` is None unless the run escaped; ``steps`` is the number of optimizer
    steps taken (the escape time, the divergence step, or ``max_steps`` if censored).
    ``wall_s`` is the run's share of its batch's execution time (compile excluded).
    """

    seed: int
    escaped: bool
    escape_time: int | None
    steps: int
    diverged: bool
    final_loss: float | None
    wall_s: float

    @property
    def status(self) -> str:
        return "escaped" if self.escaped else ("diverged" if self.diverged else "censored")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SimulationResult:
    config: Config
    runs: list[RunResult]
    compile_s: float = 0.0
    extras: dict = field(default_factory=dict)

    def summary(self) -> dict:
        esc = np.array([r.escaped for r in self.runs])
        times = np.array([r.escape_time if r.escaped else self.config.max_steps for r in self.runs])
        med = km_median(times, esc)
        return dict(
            runs=len(self.runs),
            escaped=int(esc.sum()),
            censored=int(sum(r.status == "censored" for r in self.runs)),
            diverged=int(sum(r.diverged for r in self.runs)),
            success_rate=success_rate(esc),
            median_escape_time=med.as_dict()["estimate"],
            median_escape_time_ci=[med.as_dict()["low"], med.as_dict()["high"]],
        )

    def to_json_dict(self) -> dict:
        return dict(
            config=self.config.to_dict(),
            config_hash=self.config.config_hash(),
            runs=[r.as_dict() for r in self.runs],
            summary=self.summary(),
        )


def default_batch_size(config: Config, budget_bytes: float = 1.5e9) -> int:
    """How many seeds to run in one batch: all of them, unless memory says fewer.

    About 12 m*n-sized buffers live per run (iterate, optimizer state, gradient, noise and
    matmul temporaries); the batch is capped so that they fit in ``budget_bytes``.
    """
    itemsize = 8 if config.dtype == "float64" else 4
    per_run = 12 * config.m * config.n * itemsize
    return max(1, min(config.seeds, int(budget_bytes // per_run)))


def _results(out: engine.BatchOutput, seeds) -> list[RunResult]:
    per = out.wall_s / len(seeds)
    results = []
    for b, seed in enumerate(seeds):
        st = int(out.status[b])
        loss = float(out.final_loss[b])
        results.append(
            RunResult(
                seed=int(seed),
                escaped=st == engine.ESCAPED,
                escape_time=int(out.stop_step[b]) if st == engine.ESCAPED else None,
                steps=int(out.stop_step[b]),
                diverged=st == engine.DIVERGED,
                final_loss=loss if math.isfinite(loss) else None,
                wall_s=per,
            )
        )
    return results


def run_many(
    pairs: list[tuple[Config, int]], *, batch_size: int | None = None, progress=None
) -> list[RunResult]:
    """Run many (config, seed) pairs, batching those that can share a compiled program.

    Pairs are grouped by structure and shared landscape arrays; each group runs in batches
    of at most ``batch_size`` (default: by memory). Results come back in the input order,
    and each is identical to what running its pair alone gives.
    """
    groups: dict[tuple, list[int]] = {}
    for idx, (config, _) in enumerate(pairs):
        key = (engine.structure_of(config), engine.shared_arrays_key(config))
        groups.setdefault(key, []).append(idx)
    results: list[RunResult | None] = [None] * len(pairs)
    done = 0
    for members in groups.values():
        first = pairs[members[0]][0]
        shared = engine.shared_arrays(first)
        bs = batch_size or default_batch_size(first.replace(seeds=len(members)))
        for start in range(0, len(members), bs):
            chunk = members[start : start + bs]
            configs = [pairs[i][0] for i in chunk]
            seeds = [pairs[i][1] for i in chunk]
            out = engine.run_batch(configs, seeds, shared=shared)
            for i, r in zip(chunk, _results(out, seeds), strict=True):
                results[i] = r
            done += len(chunk)
            if progress is not None:
                progress(done, len(pairs))
    return results  # type: ignore[return-value]


def simulate(config: Config, *, batch_size: int | None = None, progress=None) -> SimulationResult:
    """Run ``config`` for its seeds ``seed, seed+1, ...``; batches share one compiled program.

    Args:
        config: a validated :class:`~saddle.config.Config`.
        batch_size: seeds per batch (default: :func:`default_batch_size`).
        progress: optional callable ``progress(done, total)`` called after each batch.
    """
    seeds = config.seed_list
    bs = batch_size or default_batch_size(config)
    runs: list[RunResult] = []
    compile_s = 0.0
    shared = engine.shared_arrays(config)
    for start in range(0, len(seeds), bs):
        chunk = seeds[start : start + bs]
        out = engine.run_batch([config] * len(chunk), chunk, shared=shared)
        compile_s += out.compile_s
        runs.extend(_results(out, chunk))
        if progress is not None:
            progress(len(runs), len(seeds))
    return SimulationResult(config=config, runs=runs, compile_s=compile_s)
