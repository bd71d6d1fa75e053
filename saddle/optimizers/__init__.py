"""Optimizers as optax ``GradientTransformation`` factories.

Each factory returns pure ``init(params)`` and ``update(grads, state, params)`` functions;
``params + updates`` is the new iterate (updates include the learning rate and the
decoupled weight decay). Hyperparameters may be traced scalars, so learning-rate grids can
be ``vmap``-ed; structure switches are keyword-only Python values.

Each optimizer module also registers its spec (fields, defaults, compile-key fields, how to
build it from a config) in :data:`saddle.registry.OPTIMIZERS`.
"""

from ..registry import OPTIMIZERS, import_submodules
from ._adamw import AdamWSpec, AdamWState, adamw
from ._baselines import MomentumState, SGDSpec, normalized_gd, sgd, sign_descent
from ._mano import ManoSpec, ManoState, mano, mano_direction
from ._muon import MuonSpec, MuonState, muon, muon_scale
from ._orthogonalize import (
    NS_COEFFS,
    newton_schulz,
    newton_schulz_range,
    ns_polynomial,
    polar_factor,
)
from ._spec import EPS, LEARNING_RATE, MOMENTUM, NESTEROV, WEIGHT_DECAY, OptimizerSpec

__all__ = [
    "adamw",
    "muon",
    "mano",
    "sgd",
    "sign_descent",
    "normalized_gd",
    "from_config",
    "newton_schulz",
    "polar_factor",
    "newton_schulz_range",
    "ns_polynomial",
    "muon_scale",
    "mano_direction",
    "NS_COEFFS",
    "AdamWState",
    "MuonState",
    "ManoState",
    "MomentumState",
    "OptimizerSpec",
    "AdamWSpec",
    "MuonSpec",
    "ManoSpec",
    "SGDSpec",
    "LEARNING_RATE",
    "EPS",
    "WEIGHT_DECAY",
    "MOMENTUM",
    "NESTEROV",
]


def from_config(config):
    """The optimizer of a :class:`saddle.config.Config`, with its normalized fields."""
    return OPTIMIZERS[config.optimizer].from_config(config)


# Every module of this package registers its optimizers on import: a new one is a new file.
import_submodules(__name__, __path__)
