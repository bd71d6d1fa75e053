"""The noise-model spec, the noise pytree the engine samples from, and the shared field."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import jax
import numpy as np

from ..fields import float_field
from ..registry import NOISES, Component

__all__ = ["NoiseSpec", "ScaledNoise", "NoiseModel", "SIGMA", "register"]

SIGMA = float_field("sigma", 0.01, "noise scale (isotropic, kronecker, student_t: per-entry std; "
                    "opnorm, lowrank: operator norm)", "noise", lo=0)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class NoiseModel:
    """One noise model as a pytree: the kind and its static values are static, the scalars
    (one value per run under ``vmap``) and shared arrays are data."""

    scalars: dict[str, jax.Array]
    arrays: dict[str, jax.Array]
    kind: str = field(metadata=dict(static=True))
    static: tuple = field(default=(), metadata=dict(static=True))

    def sample(self, gen, shape: tuple[int, int], dtype) -> jax.Array:
        """One draw of Xi with the given shape and dtype from a run's step generator."""
        return NOISES[self.kind].sample(self, gen, shape, dtype)

    @property
    def state_dependent(self) -> bool:
        """Whether the engine calls :meth:`gradient_noise` (which sees the landscape and the
        iterate) rather than :meth:`sample`: see :meth:`NoiseSpec.uses_landscape`."""
        return NOISES[self.kind].uses_landscape(dict(self.static))

    def gradient_noise(self, gen, landscape, params, grad):
        """One step's Xi (a pytree like ``params``) of a state-dependent model."""
        return NOISES[self.kind].gradient_noise(self, gen, landscape, params, grad)


class NoiseSpec(Component):
    """A gradient-noise model: Xi in G = grad f(W) + Xi, a fresh draw every step.

    Besides sampling, a spec states the facts the theory's bounds use (``e_variance``,
    ``typical_spectral_norm``, ``spectral_bound``, ``frobenius_bound``), each for a
    momentum-filtered sum sum_k w_k Xi_k of independent draws where it applies.
    """

    # <Xi, E> is exactly Gaussian for every fixed unit direction E.
    gaussian_along_e: ClassVar[bool] = True
    # Sub-Gaussian tail bounds on the norms exist.
    has_tail_bound: ClassVar[bool] = True
    # The numba kernels draw this model (Gaussian entries with a per-row scale).
    numba: ClassVar[bool] = False
    # Whether the law of Xi is invariant under Xi -> P Xi Q^T for orthogonal P, Q, or turns
    # with the landscape's escape vectors (then a rotated landscape has the rotated law).
    rotation_invariant: ClassVar[bool] = False
    # Whether each entry's marginal law is the same at every shape (m, n).
    shape_free_entries: ClassVar[bool] = False
    # Whether the model draws random numbers at all (the numba kernels skip drawing if not).
    draws: ClassVar[bool] = True
    # Xi depends on the iterate: the engine calls gradient_noise, not sample, once per step.
    state_dependent: ClassVar[bool] = False

    # --- the engine -------------------------------------------------------------------
    def shared_key(self, config) -> tuple:
        """The config values the shared arrays depend on."""
        return ()

    def shared_arrays(self, config) -> dict[str, np.ndarray]:
        """Float64 arrays shared by every run of a batch (e.g. row scales)."""
        return {}

    def uses_landscape(self, static: dict) -> bool:
        """Whether a draw needs the landscape or the iterate, given the model's static
        values: then the engine calls :meth:`gradient_noise`, not :meth:`sample`. True for
        every state-dependent model; a model may also need only the landscape's escape
        vectors for some static values (lowrank with ``noise_coherence`` > 0)."""
        return self.state_dependent

    def sample(self, model: NoiseModel, gen, shape, dtype) -> jax.Array:
        raise NotImplementedError

    def gradient_noise(self, model: NoiseModel, gen, landscape, params, grad):
        """Xi (a pytree like ``params``) at the iterate ``params``, whose full gradient is
        ``grad``, drawn from the step's generator ``gen`` (state-dependent models only)."""
        raise NotImplementedError

    def numba_scale(self, config) -> float:
        """The numba kernels' per-entry scale of the standard normal draw."""
        return float(config.sigma or 0.0)

    def numba_row_scales(self, arrays: dict) -> jax.Array | None:
        """The numba kernels' per-row multipliers of that scale (None: all 1)."""
        return None

    # --- facts for the theory --------------------------------------------------------
    def entry_std(self, config) -> float:
        """The root-mean-square per-entry standard deviation of Xi."""
        return float(config.sigma or 0.0)

    def row_scales(self, config) -> np.ndarray | None:
        """Per-row standard-deviation multipliers of Xi's entries (None: all rows alike)."""
        return None

    def e_variance(self, config, row_weights: tuple[float, ...]) -> tuple[float, ...]:
        """Var <Xi, E_i> for each escape direction; ``row_weights[i]`` is
        sum_k s_k^2 p_ik^2 with s the row scales (1 when the rows are alike)."""
        return (square(self.entry_std(config)),) * config.escape_rank

    def typical_spectral_norm(self, f) -> float:
        """The large-(m, n) spectral norm of one draw (``f``: the config's NoiseFacts)."""
        raise NotImplementedError

    def spectral_bound(self, f, wnorm: float, wsum: float, wmax: float, u: float) -> float:
        """||sum_k w_k Xi_k||_2 <= this, except with probability events * exp(-u^2/2)."""
        return 0.0 if wsum == 0 else math.inf

    def frobenius_bound(self, f, wnorm: float, wsum: float, wmax: float, u: float) -> float:
        """||sum_k w_k Xi_k||_F <= this, except with probability events * exp(-u^2/2)."""
        return 0.0 if wsum == 0 else math.inf


class ScaledNoise(NoiseSpec):
    """A noise model whose size is set by ``sigma`` (a per-run scalar)."""

    fields = (SIGMA,)
    traced = ("sigma",)


def register(spec_class: type[NoiseSpec]) -> type[NoiseSpec]:
    """Class decorator: register an instance of a noise spec."""
    NOISES.register(spec_class())
    return spec_class


def scalar(model: NoiseModel, name: str, dtype) -> jax.Array:
    return model.scalars[name].astype(dtype)


def square(x: float) -> float:
    """x**2, or inf where it overflows a float (float ** raises OverflowError; the facts
    of a noise model with a huge sigma are infinite, not an error)."""
    try:
        return x**2
    except OverflowError:
        return math.inf


def sqrt_mn(m: int, n: int) -> float:
    return math.sqrt(m) + math.sqrt(n)
