"""A fast per-run normal generator for numba kernels.

xoshiro256** (Blackman & Vigna) gives 64-bit words; its state is seeded from the run's seed
and a stream id by splitmix64. Normals come from the ziggurat method of Marsaglia & Tsang
(2000) with 128 layers. Each run owns its stream, so a run's noise depends only on its seed,
never on how many runs share a kernel call or which thread runs it.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["seed_state", "next_u64", "uniform", "fill_normal", "ZIG_KN", "ZIG_WN", "ZIG_FN"]

_M1 = 2147483648.0  # 2^31
_R = 3.442619855899


def _ziggurat_tables():
    kn = np.zeros(128, np.int64)
    wn = np.zeros(128, np.float64)
    fn = np.zeros(128, np.float64)
    dn = tn = _R
    vn = 9.91256303526217e-3
    q = vn / math.exp(-0.5 * dn * dn)
    kn[0] = int((dn / q) * _M1)
    kn[1] = 0
    wn[0] = q / _M1
    wn[127] = dn / _M1
    fn[0] = 1.0
    fn[127] = math.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * _M1)
        tn = dn
        fn[i] = math.exp(-0.5 * dn * dn)
        wn[i] = dn / _M1
    return kn, wn, fn


ZIG_KN, ZIG_WN, ZIG_FN = _ziggurat_tables()

_U = nb.types.uint64


@nb.njit
def _rotl(x, k):
    return (x << _U(k)) | (x >> _U(64 - k))


@nb.njit
def _splitmix(x):
    x = x + _U(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
    return x, z ^ (z >> _U(31))


@nb.njit
def seed_state(seed, stream):
    """A xoshiro256** state (a 4-tuple of uint64) for (seed, stream), mixed by splitmix64.

    The state is a tuple so that kernels keep it in registers: an array state would be
    reloaded after every store to an output array it might alias.
    """
    x = _U(seed) * _U(0x100000001B3) + _U(stream) * _U(0xD6E8FEB86659FD93)
    x, s0 = _splitmix(x)
    x, s1 = _splitmix(x)
    x, s2 = _splitmix(x)
    x, s3 = _splitmix(x)
    return (s0, s1, s2, s3)


@nb.njit
def next_u64(s):
    """(word, new state)."""
    s0, s1, s2, s3 = s
    result = _rotl(s1 * _U(5), 7) * _U(9)
    t = s1 << _U(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, (s0, s1, s2, s3)


@nb.njit
def uniform(s):
    """(u, new state), u uniform on (0, 1) from 53 random bits, never exactly 0."""
    w, s = next_u64(s)
    return (float(w >> _U(11)) + 0.5) * (1.0 / 9007199254740992.0), s


@nb.njit
def _layer(w):
    u = np.int64(w >> _U(32))
    hz = u - ((u >> 31) << 32)  # the top 32 bits as a signed integer
    return hz, u & 127


@nb.njit
def _normal_tail(s, hz, iz, kn, wn, fn):
    while True:
        x = hz * wn[iz]
        if iz == 0:
            while True:
                u1, s = uniform(s)
                u2, s = uniform(s)
                x = -math.log(u1) * (1.0 / _R)
                y = -math.log(u2)
                if y + y >= x * x:
                    break
            return (_R + x if hz > 0 else -_R - x), s
        u, s = uniform(s)
        if fn[iz] + u * (fn[iz - 1] - fn[iz]) < math.exp(-0.5 * x * x):
            return x, s
        w, s = next_u64(s)
        hz, iz = _layer(w)
        if abs(hz) < kn[iz]:
            return hz * wn[iz], s


@nb.njit
def fill_normal(s, out, scale, kn, wn, fn):
    """Fill the 1-D array ``out`` with ``scale`` times standard normals; returns the state.

    Filling a buffer per call keeps the ziggurat's fast path inlined in one loop (about
    150 M normals/s per core here); a call per draw would pass the tuple state through
    memory and run ten times slower.
    """
    for i in range(out.shape[0]):
        w, s = next_u64(s)
        hz, iz = _layer(w)
        if abs(hz) < kn[iz]:
            out[i] = scale * (hz * wn[iz])
        else:
            z, s = _normal_tail(s, hz, iz, kn, wn, fn)
            out[i] = scale * z
    return s
