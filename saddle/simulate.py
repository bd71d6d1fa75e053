"""Run one configuration for one or many seeds and collect per-run results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import engine
from .config import Config
from .numerics import x64_enabled
from .records import batch_arrays, run_records
from .stats import km_median, success_rate

__all__ = ["RunResult", "SimulationResult", "simulate"]


@dataclass(frozen=True)
class RunResult:
    """One run's outcome.

    ``escape_time`` is None unless the run escaped; ``steps`` is the number of optimizer
    steps taken (the escape time, the divergence step, or ``max_steps`` if censored).
    ``wall_s`` is the run's share of its batch's execution time (compile excluded).
    ``signal_lost`` is True when, in at least half of its steps, rounding W + U lost the
    update's escape component (see :data:`saddle.engine.SIGNAL_LOST_FRACTION`): the run's
    escape time (or its censoring) then says more about float32 than about the dynamics.
    """

    seed: int
    escaped: bool
    escape_time: int | None
    steps: int
    diverged: bool
    final_loss: float | None
    wall_s: float
    signal_lost: bool = False

    @property
    def status(self) -> str:
        return "escaped" if self.escaped else ("diverged" if self.diverged else "censored")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, seed: int, record: dict) -> RunResult:
        """The result of the run with ``seed`` from its :func:`saddle.records.run_records`
        record."""
        fields = ("escaped", "escape_time", "steps", "diverged", "final_loss", "wall_s",
                  "signal_lost")
        return cls(seed=int(seed), **{k: record[k] for k in fields})


@dataclass
class SimulationResult:
    config: Config
    runs: list[RunResult]
    compile_s: float = 0.0
    traces: list[dict] | None = None  # per run, if a trace stride was given
    extras: dict = field(default_factory=dict)
    engine: str | None = None  # the engine that ran: jax or numba
    x64: bool | None = None  # JAX's 64-bit setting of the process that ran it

    def summary(self) -> dict:
        esc = np.array([r.escaped for r in self.runs])
        times = np.array([r.escape_time if r.escaped else self.config.max_steps for r in self.runs])
        med = km_median(times, esc)
        return dict(
            runs=len(self.runs),
            escaped=int(esc.sum()),
            censored=int(sum(r.status == "censored" for r in self.runs)),
            diverged=int(sum(r.diverged for r in self.runs)),
            signal_lost=int(sum(r.signal_lost for r in self.runs)),
            success_rate=success_rate(esc),
            median_escape_time=med.as_dict()["estimate"],
            median_escape_time_ci=[med.as_dict()["low"], med.as_dict()["high"]],
        )

    def to_json_dict(self) -> dict:
        return dict(
            config=self.config.to_dict(),
            config_hash=self.config.config_hash(),
            engine=self.engine,
            x64=self.x64,
            runs=[r.as_dict() for r in self.runs],
            summary=self.summary(),
        )


def _results(out: engine.BatchOutput, seeds) -> list[RunResult]:
    return [RunResult.from_record(seed, rec)
            for seed, rec in zip(seeds, run_records(batch_arrays(out)), strict=True)]


def simulate(
    config: Config,
    *,
    batch_size: int | None = None,
    progress=None,
    trace_stride: int | None = None,
) -> SimulationResult:
    """Run ``config`` for its seeds ``seed, seed+1, ...``.

    Args:
        config: a validated :class:`~saddle.config.Config`.
        batch_size: seeds per engine call (default: all). Results do not depend on it.
        progress: optional callable ``progress(done, total)``, called as blocks finish.
        trace_stride: record the diagnostics of every k-th iterate
            (:data:`saddle.engine.TRACE_FIELDS`) into ``SimulationResult.traces``.
    """
    seeds = config.seed_list
    bs = batch_size or len(seeds)
    runs: list[RunResult] = []
    traces: list[dict] | None = [] if trace_stride else None
    compile_s = 0.0
    shared = engine.shared_arrays(config)
    for start in range(0, len(seeds), bs):
        chunk = seeds[start : start + bs]
        tick = None
        if progress is not None:
            tick = lambda k, base=start: progress(base + k, len(seeds))
        out = engine.run_batch(
            [config] * len(chunk), chunk, shared=shared, on_block=tick, trace_stride=trace_stride
        )
        compile_s += out.compile_s
        runs.extend(_results(out, chunk))
        if traces is not None:
            traces.extend(out.traces)
    return SimulationResult(config=config, runs=runs, compile_s=compile_s, traces=traces,
                            engine=out.engine, x64=x64_enabled())
