"""What a compiled program depends on, which engine runs it, and the per-run scalars.

A :class:`Structure` is the compile key: the shape, the chosen components and their static
values, the escape criterion, the dtype, the noise generator and the resolved engine. Two
configs with equal structures (and equal shared landscape arrays) can run in one batch; they
may differ in every per-run scalar (:meth:`Config.traced_fields`) and in ``max_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax

from ..config import CORE_TRACED, Config, numba_unsupported
from ..registry import LANDSCAPES, NOISES, OPTIMIZERS

__all__ = ["Structure", "structure_of", "resolve_backend", "block_size", "scalars_of",
           "shared_arrays_key"]


@dataclass(frozen=True)
class Structure:
    """What the compiled program depends on. Two configs with equal structures share it."""

    m: int
    n: int
    escape_rank: int
    landscape: str
    landscape_static: tuple
    noise: str
    noise_static: tuple
    optimizer: str
    optimizer_static: tuple
    escape: str
    dtype: str
    rng: str
    backend: str  # resolved: "jax" or "numba"

    @property
    def components(self) -> tuple:
        """The (landscape, noise, optimizer) specs."""
        return LANDSCAPES[self.landscape], NOISES[self.noise], OPTIMIZERS[self.optimizer]

    def traced_fields(self) -> tuple[str, ...]:
        names = list(CORE_TRACED)
        for comp in self.components:
            names += [k for k in comp.traced if k not in names]
        return tuple(names)


def resolve_backend(config: Config) -> str:
    """The engine a config runs on. ``auto`` picks numba where the kernels run the structure
    and the benchmark found them faster (element-wise optimizers on the CPU), else JAX."""
    if config.backend != "auto":
        return config.backend
    if numba_unsupported(config.to_dict()) is None and jax.default_backend() == "cpu":
        return "numba"
    return "jax"


def structure_of(config: Config) -> Structure:
    landscape, noise, optimizer = config.components()
    return Structure(
        m=config.m,
        n=config.n,
        escape_rank=config.escape_rank,
        landscape=config.landscape,
        landscape_static=landscape.static_key(config),
        noise=config.noise,
        noise_static=noise.static_key(config),
        optimizer=config.optimizer,
        optimizer_static=optimizer.static_key(config),
        escape=config.escape,
        dtype=config.dtype,
        rng=config.rng,
        backend=resolve_backend(config),
    )


# Elements (runs x m x n) per block: big enough to amortize per-op overhead on a CPU for
# small shapes, and one run per block for large ones, where each op is already large.
_BLOCK_ELEMENTS = 1 << 16
_MAX_BLOCK = 32


def block_size(structure: Structure) -> int:
    """Runs per compiled block: a power of two that depends on the structure alone."""
    per_run = structure.m * structure.n
    k = 1
    while k < _MAX_BLOCK and 2 * k * per_run <= _BLOCK_ELEMENTS:
        k *= 2
    return k


def scalars_of(config: Config) -> dict[str, float]:
    """The per-run scalars of a config; fields that do not apply become harmless zeros."""
    return {k: 0.0 if (v := getattr(config, k)) is None else float(v)
            for k in config.traced_fields()}


def shared_arrays_key(config: Config) -> tuple:
    """The config values the shared arrays (landscape and noise) depend on."""
    landscape, noise, _ = config.components()
    return (config.landscape, landscape.shared_key(config), config.noise,
            noise.shared_key(config), config.dtype)
