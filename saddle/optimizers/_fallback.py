"""The element-wise fallback that Muon and Mano apply to a pytree's non-matrix leaves."""

from __future__ import annotations

from typing import NamedTuple

import optax

from ._adamw import adamw
from ._base import has_leaves, merge_split

__all__ = ["Fallback", "make_fallback"]


class Fallback(NamedTuple):
    """The element-wise optimizer of a matrix method's non-matrix leaves."""

    transform: optax.GradientTransformation

    def init(self, others):
        """Its state over the non-matrix leaves; None when there are none (a tree of
        matrices only keeps the matrix method's state as it was)."""
        return self.transform.init(others) if has_leaves(others) else None

    def update(self, matrix_updates, grad_others, state, param_others):
        """The updates of the whole tree and the fallback's new state."""
        if not has_leaves(grad_others):
            return matrix_updates, state
        ups, state = self.transform.update(grad_others, state, param_others)
        return merge_split(matrix_updates, ups), state


def make_fallback(name: str, fallback, fallback_learning_rate, learning_rate) -> Fallback:
    """The fallback of ``muon``/``mano``: ``fallback`` if given (an optax
    ``GradientTransformation``), else our :func:`~saddle.optimizers.adamw` with
    b1 = 0.9, b2 = 0.999, eps = 1e-8, no weight decay and ``fallback_learning_rate``
    (default: the matrix method's ``learning_rate``, schedule included)."""
    if fallback is None:
        lr = learning_rate if fallback_learning_rate is None else fallback_learning_rate
        return Fallback(adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0))
    if fallback_learning_rate is not None:
        raise ValueError(f"{name}: fallback_learning_rate applies to the default AdamW "
                         "fallback only; give the learning rate to your fallback instead")
    if not (hasattr(fallback, "init") and hasattr(fallback, "update")):
        raise TypeError(f"{name}: fallback: got {type(fallback).__name__}; allowed: None or "
                        "an optax GradientTransformation")
    return Fallback(fallback)
