"""The optimizer spec: what an optimizer module declares besides its update rule.

Fields several optimizers share are declared once here, so that every optimizer that uses,
say, ``momentum`` validates it the same way; an optimizer's own defaults go in its spec's
``defaults``. A field an optimizer does not list in ``defaults`` does not apply to it and
is normalized to None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import optax

from ..fields import bool_field, float_field
from ..registry import LANDSCAPES, OPTIMIZERS, Component

__all__ = [
    "OptimizerSpec",
    "LEARNING_RATE",
    "EPS",
    "WEIGHT_DECAY",
    "MOMENTUM",
    "NESTEROV",
    "register",
    "incoherent_norms",
]

LEARNING_RATE = float_field("learning_rate", None, "learning rate eta (default: the optimizer's)",
                            "optimizer", lo=0, lo_open=True)
EPS = float_field("eps", None, "epsilon of the update's normalization", "optimizer", lo=0,
                  lo_open=True)
WEIGHT_DECAY = float_field("weight_decay", None,
                           "decoupled weight decay lambda (theta <- theta(1 - eta lambda))",
                           "optimizer", lo=0)
MOMENTUM = float_field("momentum", None, "momentum beta/mu (muon: EMA; others: heavy ball)",
                       "optimizer", lo=0, hi=1, hi_open=True)
NESTEROV = bool_field("nesterov", None, "Nesterov momentum", "optimizer")


def incoherent_norms(rms: float, m: int, n: int) -> dict[str, float]:
    """The nominal norms of a dense, incoherent (m, n) update with entry RMS ``rms``.

    Frobenius = RMS * sqrt(mn) (exact for any matrix); spectral = RMS * (sqrt(m) + sqrt(n)),
    the top singular value of a large random matrix with that entry RMS (Bai-Yin; a random
    sign matrix included). This is the convention for every method that does not
    orthogonalize: at the saddle the gradient is dominated by noise and the bulk's pull on a
    random initialization, so the update is a dense, sign-like matrix without structure. A
    rank-one (fully coherent) update of the same RMS would have spectral = Frobenius =
    RMS * sqrt(mn), larger by sqrt(mn) / (sqrt(m) + sqrt(n)) (16 at 64x64, 256 at 1024x1024).
    """
    return dict(rms=rms, frobenius=rms * math.sqrt(m * n),
                spectral=rms * (math.sqrt(m) + math.sqrt(n)))


class OptimizerSpec(Component):
    """An optimizer: its fields, defaults, compile-key fields and how to build it.

    ``static`` fields are Python values the update's structure depends on; ``traced``
    fields are scalars that may be traced (one value per run of a batch).
    """

    # The numba kernels' code for this optimizer (saddle.kernels.elementwise), or None when
    # the kernels do not implement it.
    numba_code: ClassVar[int | None] = None
    # Whether the update commutes with W -> P W Q^T for orthogonal P, Q (a rotated gradient
    # history gives the rotated update). Then the basis of a landscape cannot change the law
    # of anything basis-free under rotation-invariant noise (see saddle.regimes).
    equivariant: ClassVar[bool] = False
    # Whether each entry's update reads only that entry's gradient history: on a landscape
    # that is a sum of one-entry terms, each coordinate then moves as its own 1-D system.
    elementwise: ClassVar[bool] = False

    def method_label(self, row: Mapping[str, Any]) -> str:
        """The label of this optimizer's runs in tables and verdicts (a row of results)."""
        return self.name

    def build(
        self, static: Mapping[str, Any], s: Mapping[str, Any]
    ) -> optax.GradientTransformation:
        """The optimizer, from static values and (possibly traced) scalars ``s``."""
        raise NotImplementedError

    def update_rms_per_lr(self, config) -> float:
        """The nominal RMS of one update divided by the learning rate, for the learning-rate
        protocols that match update sizes across optimizers (the same on every leaf unless
        the spec overrides :meth:`leaf_norms_per_lr`)."""
        raise NotImplementedError(f"{self.name}: no nominal update RMS")

    def leaf_norms_per_lr(self, config, shape: tuple[int, int]) -> dict[str, float]:
        """The nominal RMS, Frobenius and spectral norms of one update of an (m, n) = ``shape``
        leaf divided by the learning rate: the one table the learning-rate protocols match on.

        Frobenius = RMS * sqrt(mn) always. The spectral norm follows the incoherent
        convention of :func:`incoherent_norms` (RMS * (sqrt(m) + sqrt(n))) unless the spec
        overrides this method (Muon: its orthogonalized update's singular values are 1).

        ==============  ========================  ====================  ========================
        optimizer       RMS / lr                  Frobenius / lr        spectral / lr
        ==============  ========================  ====================  ========================
        adamw           0.2 (Moonlight)           0.2 sqrt(mn)          0.2 (sqrt m + sqrt n)
        mano            0.2 (exact)               0.2 sqrt(mn)          0.2 (sqrt m + sqrt n)
        sign_descent    1 (exact)                 sqrt(mn)              sqrt m + sqrt n
        sgd             g0 (initial grad RMS)     g0 sqrt(mn)           g0 (sqrt m + sqrt n)
        normalized_gd   1/sqrt(mn)                1 (exact, per leaf)   (sqrt m + sqrt n)/sqrt(mn)
        muon            s/sqrt(max(m, n))         s sqrt(min(m, n))     s (exact for polar)
        ==============  ========================  ====================  ========================

        ``s`` is Muon's scaling factor for the leaf (keller: sqrt(max(1, m/n)); moonlight:
        0.2 sqrt(max(m, n)); none: 1). Newton-Schulz Muon gets the polar values: its five
        quintic steps leave the singular values near 1, not at 1. Every optimizer here acts
        on each leaf separately (normalized GD normalizes each leaf to Frobenius eta).
        """
        return incoherent_norms(self.update_rms_per_lr(config), *shape)

    def update_norms_per_lr(self, config) -> dict[str, float]:
        """The nominal norms of one whole update per unit learning rate, over the landscape's
        parameter leaves (:meth:`LandscapeSpec.param_shapes`): RMS over all D parameters,
        Frobenius over all of them, spectral the largest leaf's (each leaf is a matrix of its
        own; Muon orthogonalizes each with its own scale). One leaf: its row of the table in
        :meth:`leaf_norms_per_lr`."""
        shapes = LANDSCAPES[config.landscape].param_shapes(config)
        leaves = [self.leaf_norms_per_lr(config, shape) for shape in shapes]
        if len(leaves) == 1:
            return leaves[0]
        frobenius = math.sqrt(sum(t["frobenius"] ** 2 for t in leaves))
        D = sum(m * n for m, n in shapes)
        return dict(rms=frobenius / math.sqrt(D), frobenius=frobenius,
                    spectral=max(t["spectral"] for t in leaves))

    def from_config(self, config) -> optax.GradientTransformation:
        """The optimizer of a normalized config (Python-number hyperparameters)."""
        return self.build(
            {k: getattr(config, k) for k in self.static},
            {k: getattr(config, k) for k in self.traced},
        )


def register(spec_class: type[OptimizerSpec]) -> type[OptimizerSpec]:
    """Class decorator: register an instance of an optimizer spec."""
    OPTIMIZERS.register(spec_class())
    return spec_class
