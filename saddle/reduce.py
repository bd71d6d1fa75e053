"""Deterministic pairwise summation.

XLA on the CPU picks how to vectorize a fused reduction from the shape of the whole
computation, batch dimension included, so ``jnp.sum`` over a run's matrix can round
differently when the run shares a ``vmap`` batch with 1, 5 or 64 others. The lab promises
bit-identical results for a seed whatever the batch size, so every reduction on a run's
path goes through :func:`tree_sum`: a fixed binary tree of element-wise adds (zero-padded
to a power of two), which XLA evaluates in exactly that order. Pairwise summation is also
more accurate than a running sum: its rounding error grows like log N, not N.
"""

from __future__ import annotations

from functools import reduce

import jax
import jax.numpy as jnp

__all__ = ["tree_sum", "tree_norm", "tree_dot"]


def tree_sum(x: jax.Array, axis: int | None = None, keepdims: bool = False) -> jax.Array:
    """Sum of ``x`` over ``axis`` (all axes if None) in a fixed pairwise order."""
    if axis is None:
        out = _pairwise(x.reshape(-1), 0)[0]
        return out.reshape((1,) * x.ndim) if keepdims else out
    axis = axis % x.ndim
    out = _pairwise(x, axis)
    return out if keepdims else jnp.squeeze(out, axis)


def tree_norm(x: jax.Array, axis: int | None = None, keepdims: bool = False) -> jax.Array:
    """The Euclidean (Frobenius) norm of ``x`` over ``axis``, via :func:`tree_sum`."""
    return jnp.sqrt(tree_sum(x * x, axis=axis, keepdims=keepdims))


def _pairwise(x: jax.Array, axis: int) -> jax.Array:
    """Halve ``x`` along ``axis`` until one entry is left (kept as a size-1 axis).

    Reducing in place, without moving ``axis`` last, keeps each add a pass over contiguous
    blocks: for a column reduction (axis 0) the halves are blocks of whole rows. Moving the
    axis last instead made XLA's CPU backend transpose at every level (about 10x slower at
    1024 x 1024). The order of the adds, and so every bit of the result, is the same.
    """
    n = x.shape[axis]
    if n == 0:
        shape = list(x.shape)
        shape[axis] = 1
        return jnp.zeros(shape, x.dtype)
    size = 1 << (n - 1).bit_length()
    if size != n:
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, size - n)
        x = jnp.pad(x, pad)
    while size > 1:
        size //= 2
        x = jax.lax.slice_in_dim(x, 0, size, axis=axis) + jax.lax.slice_in_dim(
            x, size, 2 * size, axis=axis)
    return x


def tree_dot(a, b) -> jax.Array:
    """<a, b> over every leaf of two pytrees of the same structure, by :func:`tree_sum`
    per leaf and then leaf by leaf (a single array is just ``tree_sum(a * b)``)."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return reduce(jnp.add, [tree_sum(x * y) for x, y in zip(la, lb, strict=True)])
