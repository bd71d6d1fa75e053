"""Shared pieces of the optimizer factories."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cast(value, like: jax.Array) -> jax.Array:
    """A hyperparameter (Python number or traced scalar) in the parameter's dtype.

    Keeps float32 parameters float32 even with x64 on and float64 hyperparameters.
    """
    return jnp.asarray(value).astype(like.dtype)


def decayed_step(direction: jax.Array, param: jax.Array, lr, weight_decay) -> jax.Array:
    """-lr * (direction + weight_decay * param): theta <- theta (1 - lr wd) - lr direction."""
    return -cast(lr, param) * (direction + cast(weight_decay, param) * param)


def learning_rate_at(learning_rate, count):
    """The learning rate of the update that follows ``count`` updates.

    An optax schedule (any callable) is evaluated at ``count``, so the first update uses
    ``schedule(0)`` as in optax. A float or traced scalar is returned as is: the update then
    runs exactly the operations it ran before schedules were accepted.
    """
    return learning_rate(count) if callable(learning_rate) else learning_rate


def zeros_like_tree(tree):
    return jax.tree.map(jnp.zeros_like, tree)


def map_leaves(fn, tree, *rest):
    """Apply ``fn`` leaf-wise to ``tree`` and matching trees; ``fn`` returns a tuple.

    Returns one tree per tuple element, e.g. (updates, new_moment) for a one-buffer method.
    """
    leaves, treedef = jax.tree.flatten(tree)
    others = [treedef.flatten_up_to(r) for r in rest]
    outs = [fn(*args) for args in zip(leaves, *others, strict=True)]
    return tuple(jax.tree.unflatten(treedef, list(col)) for col in zip(*outs, strict=True))


# --- Matrix leaves and the element-wise fallback (muon, mano) --------------------------


def is_matrix(leaf) -> bool:
    """Whether a leaf gets a matrix method's update: exactly the 2-D leaves."""
    return jnp.ndim(leaf) == 2


def _is_masked(x) -> bool:
    return isinstance(x, optax.MaskedNode)


def split_matrices(tree):
    """``(matrices, others)``: two trees shaped like ``tree``; each keeps its kind of leaf
    and holds ``optax.MaskedNode()`` (a node without leaves) in place of the other kind.

    ``optax.masked`` uses the same placeholder, so any optax transformation can run on
    ``others``. A tree of matrices only gives ``(tree, <no leaves>)`` with the matrices
    themselves, untouched.
    """
    matrices = jax.tree.map(lambda x: x if is_matrix(x) else optax.MaskedNode(), tree)
    others = jax.tree.map(lambda x: optax.MaskedNode() if is_matrix(x) else x, tree)
    return matrices, others


def merge_split(matrices, others):
    """The inverse of :func:`split_matrices`: one tree with the leaves of both."""
    return jax.tree.map(lambda a, b: b if _is_masked(a) else a, matrices, others,
                        is_leaf=_is_masked)


def has_leaves(tree) -> bool:
    return bool(jax.tree.leaves(tree))
