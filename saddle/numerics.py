"""Numerical settings. Nothing here runs on import: call the helpers explicitly."""

from __future__ import annotations

__all__ = ["enable_x64", "dtype_of"]


def enable_x64(enabled: bool = True) -> None:
    """Allow float64 arrays in JAX (off by default in JAX).

    The lab never flips this on import. Runs with ``dtype = "float64"`` turn it on through
    :func:`dtype_of`, and the test suite's ``conftest.py`` turns it on for the whole session.
    float32 runs stay float32 with it on: every array the lab creates has an explicit dtype.
    """
    import jax

    jax.config.update("jax_enable_x64", enabled)


def dtype_of(name: str):
    """The JAX dtype for a config's ``dtype`` field, enabling x64 when float64 is asked for."""
    import jax
    import jax.numpy as jnp

    if name == "float64":
        if not jax.config.jax_enable_x64:
            enable_x64()
        return jnp.float64
    if name == "float32":
        return jnp.float32
    raise ValueError(f"dtype: got {name!r}; allowed: float32, float64")
