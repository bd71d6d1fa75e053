"""The batched simulation engine.

One compiled program per :class:`Structure` (shape, components and their static values,
escape criterion, dtype, noise generator, engine). Everything else is data: the per-run
scalars (learning rate, momentum, gamma, sigma, radius, ...), the seeds and the step budget
are traced arrays, so a new seed, a new learning rate or a new ``max_steps`` never
recompiles. The engine calls the components only through their specs and interfaces:

- :mod:`.structure`: the compile key, the engine choice and the per-run scalars;
- :mod:`.problem`: the shared arrays and the landscape, noise and optimizer of a run;
- :mod:`.step`: ``step(key, state, problem) -> (state, info)`` for one run;
- :mod:`.loop`: the ``lax.while_loop`` over a block of runs, with stopping and masking;
- :mod:`.trace`: the per-iterate diagnostics;
- :mod:`.batch`: blocks, compilation cache and :func:`run_batch`;
- :mod:`.numba_adapter`: the same batch on the numba kernels.
"""

from .batch import compile_count, run_batch
from .output import CENSORED, DIVERGED, ESCAPED, RUNNING, SIGNAL_LOST_FRACTION, BatchOutput
from .problem import Problem, build_problem, shared_arrays
from .step import RunState, StepInfo, StepKey, init_state, run_keys, step
from .structure import (
    Structure,
    block_size,
    resolve_backend,
    scalars_of,
    shared_arrays_key,
    structure_of,
)
from .trace import TRACE_FIELDS

__all__ = [
    "Structure",
    "RUNNING",
    "ESCAPED",
    "DIVERGED",
    "CENSORED",
    "BatchOutput",
    "Problem",
    "RunState",
    "StepInfo",
    "StepKey",
    "structure_of",
    "resolve_backend",
    "scalars_of",
    "shared_arrays",
    "shared_arrays_key",
    "build_problem",
    "init_state",
    "step",
    "run_batch",
    "run_keys",
    "block_size",
    "SIGNAL_LOST_FRACTION",
    "compile_count",
    "TRACE_FIELDS",
]
