"""The random numbers of one run at one step, from its noise key and the step counter."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import prng

__all__ = ["Generator", "generator"]


class Generator:
    """Standard normals (and Student-t draws) for one run at one step.

    ``rng = "pcg3d"``: the counter-based hash of :mod:`saddle.prng`, keyed by a 32-bit run
    key; sub-stream j of the step uses the step counter ``step * 4 + j``.
    ``rng = "threefry"``: ``jax.random`` with ``fold_in(key, step)`` and then ``j``.
    """

    def __init__(self, rng: str, key, step):
        self.rng, self.key, self.step = rng, key, step

    def _jax_key(self, j: int):
        if self.rng == "threefry":
            base = jax.random.fold_in(self.key, self.step)
        else:
            base = jax.random.fold_in(jax.random.key(self.key), self.step)
        return jax.random.fold_in(base, j)

    def normal(self, shape, dtype, j: int = 0) -> jax.Array:
        if self.rng == "pcg3d":
            step = jnp.asarray(self.step).astype(jnp.uint32) * jnp.uint32(4) + jnp.uint32(j)
            return prng.normal(self.key, step, shape, dtype)
        return jax.random.normal(self._jax_key(j), shape, dtype)

    def integers(self, high: int, shape) -> jax.Array:
        """Uniform integers in [0, high) (sub-stream 2; jax.random on both generators, as
        for Student-t: the counter hash has no integer form here)."""
        return jax.random.randint(self._jax_key(2), shape, 0, high)

    def student_t(self, df, shape, dtype) -> jax.Array:
        # Gamma variates have no counter-based form here; both generators use jax.random.
        return jax.random.t(self._jax_key(3), df, shape, dtype)


def generator(rng: str, key, step) -> Generator:
    return Generator(rng, key, step)
