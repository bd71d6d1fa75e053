"""The optimizer spec: what an optimizer module declares besides its update rule.

Fields several optimizers share are declared once here, so that every optimizer that uses,
say, ``momentum`` validates it the same way; an optimizer's own defaults go in its spec's
``defaults``. A field an optimizer does not list in ``defaults`` does not apply to it and
is normalized to None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import optax

from ..fields import bool_field, float_field
from ..registry import OPTIMIZERS, Component

__all__ = [
    "OptimizerSpec",
    "LEARNING_RATE",
    "EPS",
    "WEIGHT_DECAY",
    "MOMENTUM",
    "NESTEROV",
    "register",
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


class OptimizerSpec(Component):
    """An optimizer: its fields, defaults, compile-key fields and how to build it.

    ``static`` fields are Python values the update's structure depends on; ``traced``
    fields are scalars that may be traced (one value per run of a batch).
    """

    # The numba kernels' code for this optimizer (saddle.kernels.elementwise), or None when
    # the kernels do not implement it.
    numba_code: ClassVar[int | None] = None

    def build(
        self, static: Mapping[str, Any], s: Mapping[str, Any]
    ) -> optax.GradientTransformation:
        """The optimizer, from static values and (possibly traced) scalars ``s``."""
        raise NotImplementedError

    def update_rms_per_lr(self, config) -> float:
        """The nominal RMS of one update divided by the learning rate, for the learning-rate
        protocols that match update sizes across optimizers."""
        raise NotImplementedError(f"{self.name}: no nominal update RMS")

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
