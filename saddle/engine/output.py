"""What a batch returns: per-run outcomes, timings, traces, and which engine ran it."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["BatchOutput", "lost_fraction", "SIGNAL_LOST_FRACTION", "RUNNING", "ESCAPED",
           "DIVERGED", "CENSORED"]

# A run's status, in the JAX loop, the numba kernels and a BatchOutput.
RUNNING, ESCAPED, DIVERGED, CENSORED = 0, 1, 2, 3

# A run whose escape-direction updates were lost to rounding (W + U moved the first escape
# coordinate by less than half, or more than 1.5x, of the update's own component) in at
# least this fraction of its steps is flagged ``signal_lost``: in float32 the iterate's
# entries can be so large next to the update that the escape signal never reaches W.
SIGNAL_LOST_FRACTION = 0.5

class BatchOutput(NamedTuple):
    status: np.ndarray  # (B,) ESCAPED, DIVERGED or CENSORED
    stop_step: np.ndarray  # (B,) escape time, divergence step, or max_steps if censored
    final_loss: np.ndarray  # (B,) f at the last iterate evaluated
    final_distance: np.ndarray  # (B,) ||Pi_esc(W - W*)||_F at the last iterate
    wall_s: float  # execution time of the batch, compile excluded
    compile_s: float  # time to lower and compile (0 when cached)
    traces: list | None = None  # per run: {field: array over recorded steps}, if asked for
    # per run: the fraction of steps whose escape-direction update was lost to rounding (see
    # SIGNAL_LOST_FRACTION)
    lost_fraction: np.ndarray | None = None
    engine: str = "jax"  # the engine that ran the batch: "jax" or "numba"


def lost_fraction(counted, lost) -> np.ndarray:
    counted = np.asarray(counted, np.float64)
    return np.where(counted > 0, np.asarray(lost, np.float64) / np.maximum(counted, 1), 0.0)
