"""Suite-wide numerics: float64 available everywhere (float32 runs stay float32)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu") if os.environ.get("CI") else None

import jax  # noqa: E402

from saddle.numerics import enable_x64  # noqa: E402

enable_x64()
jax.config.update("jax_numpy_dtype_promotion", "standard")
