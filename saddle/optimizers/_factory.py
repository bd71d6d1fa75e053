"""Build the optimizer a config names."""

from __future__ import annotations

import optax

from ._adamw import adamw
from ._baselines import normalized_gd, sgd, sign_descent
from ._mano import mano
from ._muon import muon

__all__ = ["from_config"]


def from_config(config) -> optax.GradientTransformation:
    """The optimizer of a :class:`saddle.config.Config`, with its normalized fields."""
    c = config
    lr, wd = c.learning_rate, c.weight_decay
    if c.optimizer == "adamw":
        return adamw(lr, b1=c.b1, b2=c.b2, eps=c.eps, weight_decay=wd)
    if c.optimizer == "muon":
        return muon(
            lr,
            momentum=c.momentum,
            nesterov=c.nesterov,
            ns_steps=c.ns_steps,
            orthogonalizer=c.orthogonalizer,
            scaling=c.scaling,
            eps=c.eps,
            weight_decay=wd,
        )
    if c.optimizer == "mano":
        return mano(lr, c.momentum, variant=c.variant, nesterov=c.nesterov, eps=c.eps,
                    weight_decay=wd)
    if c.optimizer == "sgd":
        return sgd(lr, c.momentum, nesterov=c.nesterov, weight_decay=wd)
    if c.optimizer == "sign_descent":
        return sign_descent(lr, c.momentum, weight_decay=wd)
    if c.optimizer == "normalized_gd":
        return normalized_gd(lr, c.momentum, eps=c.eps, weight_decay=wd)
    raise ValueError(f"optimizer: got {c.optimizer!r}")
