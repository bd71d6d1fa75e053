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
    noise_streams: str = "independent"  # keys from (seed, stream id), or seed alone

    @property
    def components(self) -> tuple:
        """The (landscape, noise, optimizer) specs."""
        return LANDSCAPES[self.landscape], NOISES[self.noise], OPTIMIZERS[self.optimizer]

    def traced_fields(self) -> tuple[str, ...]:
        names = list(CORE_TRACED)
        for comp in self.components:
            names += [k for k in comp.traced if k not in names]
        return (*names, *DERIVED_SCALARS)


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
        noise_streams=config.noise_streams,
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


# Per-run scalars computed from a config rather than read from one field.
DERIVED_SCALARS = ("divergence_scale",)


def divergence_scale(config: Config) -> float:
    """S - |f(W_0) - f(W*)|: the loss scale of a legitimate run, past which (times
    ``divergence_factor``, with the run's own starting loss added) it has diverged.

    The sum of the escape's loss scale (``loss_drop`` for the loss criterion, else the
    landscape's :meth:`~saddle.landscapes.LandscapeSpec.escape_loss_scale`) and the noise's:
    D sigma_e^2 / (2 lambda), the loss of a displacement that balances per-entry gradient
    noise sigma_e against the landscape's curvature scale lambda (SGD's stationary bulk loss
    stays below it at every stable learning rate). A state-dependent noise model has no
    fixed sigma_e and adds nothing; an infinite-variance one turns the relative rule off.
    """
    landscape, noise, _ = config.components()
    if config.escape == "loss":
        esc = float(config.loss_drop)
    else:
        esc = float(landscape.escape_loss_scale(config))
    if noise.state_dependent:
        return esc
    std = float(noise.entry_std(config))
    if std == 0.0:
        return esc
    return esc + config.D * std * std / (2.0 * float(landscape.curvature_scale(config)))


def scalars_of(config: Config) -> dict[str, float]:
    """The per-run scalars of a config; fields that do not apply become harmless zeros."""
    out = {k: 0.0 if (v := getattr(config, k)) is None else float(v)
           for k in config.traced_fields()}
    out["divergence_scale"] = divergence_scale(config)
    return out


def stream_words(config: Config) -> tuple[int, int]:
    """The (low, high) 32-bit words of a config's stream id (0, 0 with common streams)."""
    if config.noise_streams == "common":
        return 0, 0
    sid = config.stream_id()
    return sid & 0xFFFFFFFF, sid >> 32


def numba_seed(config: Config, seed: int) -> int:
    """The 64-bit seed the numba kernels give ``seed_state``: the run's seed xor a splitmix64
    mix of its condition's stream id (independent streams only; numba runs no other)."""
    x = (config.stream_id() + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (int(seed) ^ x ^ (x >> 31)) & _MASK64


_MASK64 = (1 << 64) - 1


def shared_arrays_key(config: Config) -> tuple:
    """The config values the shared arrays (landscape and noise) depend on."""
    landscape, noise, _ = config.components()
    return (config.landscape, landscape.shared_key(config), config.noise,
            noise.shared_key(config), config.dtype)
