"""Suite-wide numerics: float64 available everywhere (float32 runs stay float32); a fixture
that pins OpenBLAS to one thread (single_threaded_blas)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu") if os.environ.get("CI") else None

import jax  # noqa: E402
import pytest  # noqa: E402

from saddle.numerics import enable_x64  # noqa: E402

enable_x64()
jax.config.update("jax_numpy_dtype_promotion", "standard")


def _openblas_thread_controls():
    """(get, set) pairs for the OpenBLAS builds numpy and scipy load (wheels bundle their
    own, under numpy.libs and scipy.libs); none where those are not found."""
    import ctypes
    import glob

    import numpy
    import scipy

    controls = []
    for pkg in (numpy, scipy):
        here = os.path.dirname(pkg.__file__)
        for path in glob.glob(os.path.join(here, "..", pkg.__name__ + ".libs", "*openblas*")):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for suffix in ("64_", ""):
                get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
                put = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    controls.append((get, put))
                    break
    return controls


@pytest.fixture
def single_threaded_blas():
    """OpenBLAS pinned to one thread for one test, then restored. On a small shared machine
    its threads oversubscribe the cores: a 300 x 200 SVD then takes ~0.9 s instead of
    ~3 ms (test_noise: 35 s against 1.5 s). The results agree to rounding."""
    controls = _openblas_thread_controls()
    before = [get() for get, _ in controls]
    for _, put in controls:
        put(1)
    yield
    for (_, put), n in zip(controls, before, strict=True):
        put(n)
