r"""The lab's counter-based normal generator for the JAX engine.

Noise is the engine's bottleneck on the CPU: Threefry-2x32-20, JAX's default bit
generator, makes about 90 M words/s here, while the rest of an AdamW step costs a fraction
of that. The lab's default generator (``rng = "pcg3d"``) instead hashes the counter
(element index, step, run key) with the pcg3d hash of Jarzynski & Olano, "Hash Functions
for GPU Rendering", JCGT 9(3), 2020, which passes TestU01's BigCrush as a counter-based
generator in their evaluation. It is a handful of 32-bit multiplies, adds, xors and shifts,
so XLA vectorizes it on the CPU and it is as natural on a GPU. A word becomes a uniform
u in (0, 1) from its top 24 bits (float32) or from 52 bits of two words (float64), and a
normal through the inverse CDF, z = sqrt(2) erfinv(2u - 1), as ``jax.random.normal`` does
with Threefry's bits; the largest |z| is about 5.4 (float32) and 8.3 (float64).

Every draw is a pure function of (run key, step, element), so a run's noise never depends
on its batch or its position in it. ``rng = "threefry"`` selects ``jax.random`` instead.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["pcg3d", "run_key", "normal", "STREAM_INIT", "STREAM_NOISE"]

_U = jnp.uint32
STREAM_INIT, STREAM_NOISE = 1, 2


def pcg3d(x: jax.Array, y: jax.Array, z: jax.Array):
    """The pcg3d hash of three uint32 arrays (Jarzynski & Olano 2020); returns three words."""
    x = x * _U(1664525) + _U(1013904223)
    y = y * _U(1664525) + _U(1013904223)
    z = z * _U(1664525) + _U(1013904223)
    x = x + y * z
    y = y + z * x
    z = z + x * y
    x = x ^ (x >> 16)
    y = y ^ (y >> 16)
    z = z ^ (z >> 16)
    x = x + y * z
    y = y + z * x
    z = z + x * y
    return x, y, z


def run_key(seed: jax.Array, stream: int, condition=None) -> jax.Array:
    """A run's 32-bit key for one stream (init, noise, ...), hashed from its seed and, when
    ``condition`` (a (..., 2) uint32 array: the low and high words of the run's 64-bit
    stream id) is given, from its condition too: the seed is first hashed with both words."""
    seed = jnp.asarray(seed).astype(_U)
    if condition is not None:
        condition = jnp.asarray(condition).astype(_U)
        seed, _, _ = pcg3d(seed, condition[..., 0], condition[..., 1])
    k, _, _ = pcg3d(seed, jnp.full_like(seed, stream), jnp.full_like(seed, 0x9E3779B9))
    return k


def normal(key: jax.Array, step: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
    """Standard normals for one run and one step: element i uses the counter (i, step, key)."""
    size = int(np.prod(shape))
    idx = jnp.arange(size, dtype=_U)
    step = jnp.asarray(step).astype(_U)
    key = jnp.asarray(key).astype(_U)
    a, b, _ = pcg3d(idx, jnp.full_like(idx, step), jnp.full_like(idx, key))
    # x = 2u - 1 is formed exactly from the integer k: x = (2k + 1 - 2^b) / 2^b lies strictly
    # inside (-1, 1). (Forming u first and then 2u - 1 rounds u = 1 - 2^-25 up to 1.0 in
    # float32, and erfinv(1) = inf.)
    if jnp.dtype(dtype) == jnp.float64:
        k = (a >> 6).astype(jnp.int64) * 67108864 + (b >> 6).astype(jnp.int64)  # 52 bits
        x = (2 * k + 1 - 2**52).astype(jnp.float64) * (1.0 / 2**52)
    else:
        k = (a >> 8).astype(jnp.int32)  # 24 bits
        x = (2 * k + 1 - 2**24).astype(jnp.float32) * (1.0 / 2**24)
    z = jnp.sqrt(jnp.asarray(2, dtype)) * jax.lax.erf_inv(x)
    return z.reshape(shape)
