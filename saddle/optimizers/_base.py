"""Shared pieces of the optimizer factories."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cast(value, like: jax.Array) -> jax.Array:
    """A hyperparameter (Python number or traced scalar) in the parameter's dtype.

    Keeps float32 parameters float32 even with x64 on and float64 hyperparameters.
    """
    return jnp.asarray(value).astype(like.dtype)


def decayed_step(direction: jax.Array, param: jax.Array, lr, weight_decay) -> jax.Array:
    """-lr * (direction + weight_decay * param): theta <- theta (1 - lr wd) - lr direction."""
    return -cast(lr, param) * (direction + cast(weight_decay, param) * param)


def require_matrices(tree, name: str) -> None:
    for leaf in jax.tree.leaves(tree):
        if leaf.ndim != 2:
            raise ValueError(
                f"{name}: got a parameter of shape {leaf.shape}; allowed: 2-D matrices only"
            )


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
