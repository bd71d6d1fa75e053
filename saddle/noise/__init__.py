r"""Gradient noise models: the stochastic gradient is G = grad f(W) + Xi, fresh Xi each step.

Each model is one module registering a :class:`NoiseSpec` in
:data:`saddle.registry.NOISES`: :mod:`.gaussian` (``none``, ``isotropic``, ``opnorm``),
:mod:`.lowrank`, :mod:`.kronecker` and :mod:`.student_t`. The module docstrings give each
model's law and the norm facts the theory uses.
"""

from __future__ import annotations

import numpy as np

from ..numerics import dtype_of
from ..registry import NOISES, import_submodules

# Registration order is the order the models are listed in.
from . import gaussian, kronecker, lowrank, student_t  # noqa: F401, I001  # noqa: F401, I001
from ._generator import Generator, generator
from ._spec import SIGMA, NoiseModel, NoiseSpec, ScaledNoise
from .kronecker import kronecker_row_scales

__all__ = ["NoiseModel", "NoiseSpec", "ScaledNoise", "SIGMA", "make_noise",
           "kronecker_row_scales", "Generator", "generator", "noise_model"]


def noise_model(spec: NoiseSpec, static: tuple, scalars: dict, arrays: dict) -> NoiseModel:
    """The pytree the engine samples from: ``scalars`` may be traced, one value per run."""
    return NoiseModel(scalars={k: scalars[k] for k in spec.traced}, arrays=arrays,
                      kind=spec.name, static=static)


def make_noise(config) -> NoiseModel:
    """The noise model a config describes (scales in the config's dtype)."""
    import jax.numpy as jnp

    dtype = dtype_of(config.dtype)
    spec = NOISES[config.noise]
    scalars = {k: jnp.asarray(0.0 if getattr(config, k) is None else getattr(config, k), dtype)
               for k in spec.traced}
    arrays = {k: jnp.asarray(np.asarray(v), dtype) for k, v in spec.shared_arrays(config).items()}
    return noise_model(spec, spec.static_key(config), scalars, arrays)


# Every module of this package registers its models on import: a new one is a new file.
import_submodules(__name__, __path__)
