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

import jax
import jax.numpy as jnp

__all__ = ["tree_sum", "tree_norm"]


def tree_sum(x: jax.Array, axis: int | None = None, keepdims: bool = False) -> jax.Array:
    """Sum of ``x`` over ``axis`` (all axes if None) in a fixed pairwise order."""
    if axis is None:
        out = _pairwise_last(x.reshape(-1))
        return out.reshape((1,) * x.ndim) if keepdims else out
    axis = axis % x.ndim
    moved = jnp.moveaxis(x, axis, -1)
    out = _pairwise_last(moved)
    return jnp.expand_dims(out, axis) if keepdims else out


def tree_norm(x: jax.Array, axis: int | None = None, keepdims: bool = False) -> jax.Array:
    """The Euclidean (Frobenius) norm of ``x`` over ``axis``, via :func:`tree_sum`."""
    return jnp.sqrt(tree_sum(x * x, axis=axis, keepdims=keepdims))


def _pairwise_last(x: jax.Array) -> jax.Array:
    n = x.shape[-1]
    if n == 0:
        return jnp.zeros(x.shape[:-1], x.dtype)
    size = 1 << (n - 1).bit_length()
    if size != n:
        pad = [(0, 0)] * (x.ndim - 1) + [(0, size - n)]
        x = jnp.pad(x, pad)
    while size > 1:
        size //= 2
        x = x[..., :size] + x[..., size:]
    return x[..., 0]
