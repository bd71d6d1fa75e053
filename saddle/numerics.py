"""Numerical settings. Nothing here runs on import, and nothing flips a setting as a side
effect: call :func:`enable_x64` explicitly (the CLI does, once, before it computes; the test
suite's ``conftest.py`` does for the session)."""

from __future__ import annotations

__all__ = ["enable_x64", "x64_enabled", "dtype_of"]


def enable_x64(enabled: bool = True) -> None:
    """Allow float64 arrays in JAX (off by default in JAX).

    Call it once, before the first computation: it is process-wide, and it also decides the
    precision of the Gram eigendecomposition inside float32 exact-polar Muon
    (:func:`saddle.optimizers.polar_factor`). float32 runs otherwise stay float32 with it
    on: every array the lab creates has an explicit dtype.
    """
    import jax

    jax.config.update("jax_enable_x64", enabled)


def x64_enabled() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


def dtype_of(name: str):
    """The JAX dtype for a config's ``dtype`` field.

    float64 needs x64 mode: without it JAX would silently compute in float32, so this
    raises instead of switching the process-wide setting behind the caller's back.
    """
    import jax.numpy as jnp

    if name == "float64":
        if not x64_enabled():
            raise ValueError("dtype: 'float64' needs JAX's x64 mode, which is off; call "
                             "saddle.enable_x64() before the first computation (the saddle "
                             "CLI does)")
        return jnp.float64
    if name == "float32":
        return jnp.float32
    raise ValueError(f"dtype: got {name!r}; allowed: float32, float64")
