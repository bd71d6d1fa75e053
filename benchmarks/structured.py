"""Structured bases against the FFT floor, the dense Haar basis and the coherent step.

Run ``python -m benchmarks.structured`` (options: ``--sizes``, ``--repeats``, ``--markdown
PATH`` to write the table). Float32, on whatever JAX device is the default (the CPU here).
Everything in one table is timed side by side in one process, round-robin: each repeat runs
every candidate once, so a load spike from other processes on a shared machine hits all of
them alike. The table gives the median over repeats (and the minimum, the least-disturbed
run); ratios are of medians.

Rows, for an (n, n) float32 array:

- rotation (C = P^T X Q, then X = P C Q^T) with
  ``structured dct`` / ``structured hadamard``: the library (:mod:`saddle.landscapes.structured`);
  ``jax.scipy dctn``: the same basis through ``jax.scipy.fft.dctn``/``idctn`` (a complex FFT of
  real data) plus the same gathers; ``hadamard kron``: Walsh-Hadamard as two small dense
  matmuls per axis (H_n = H_a kron H_b); ``scipy (numpy)``: ``scipy.fft.dctn``/``idctn`` plus
  NumPy gathers, outside JAX; ``dense haar``: two float32 matmuls each way.
- floors: ``rfft2 + irfft2`` (JAX, the least FFT work for a real 2-D transform each way) and
  ``scipy dctn + idctn`` (pocketfft's own DCT, both axes, each way).
- steps: an AdamW step (moments, bias correction, update) on f = 1/2 sum Lambda C^2 with
  the coherent basis (grad = Lambda * X), the structured one (grad = P (Lambda * C) Q^T)
  and the dense Haar one.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft
import scipy.linalg

from saddle.landscapes.spectra import haar_orthogonal
from saddle.landscapes.structured import StructuredBasis, structured_basis

_HI = jax.lax.Precision.HIGHEST


def time_round_robin(cands: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Median and min seconds of each candidate, run in turn ``repeats`` times (after one
    warm-up call each, which also compiles)."""
    for f in cands.values():
        jax.block_until_ready(f())
    times: dict[str, list[float]] = {k: [] for k in cands}
    for _ in range(repeats):
        for k, f in cands.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f())
            times[k].append(time.perf_counter() - t0)
    return {k: dict(median_s=statistics.median(v), min_s=min(v)) for k, v in times.items()}


# --- alternative implementations of the same rotation -----------------------------------------


def _gather_both(x, rows, cols, srows, scols):
    x = jnp.take(jnp.take(x, rows, axis=0, mode="clip"), cols, axis=1, mode="clip")
    return x * (srows.astype(x.dtype)[:, None] * scols.astype(x.dtype)[None, :])


def _jax_scipy_rotation(B: StructuredBasis):
    """DCT basis through jax.scipy.fft.dctn/idctn: C = (T^T X T)[g^-1] * s s^T and back."""
    P, Q = B.P, B.Q

    def to(X):
        Y = jax.scipy.fft.idctn(X, norm="ortho")
        ip, iq = P.inv_perm[0], Q.inv_perm[0]
        return _gather_both(Y, ip, iq, P.signs[0][ip], Q.signs[0][iq])

    def back(C):
        Y = _gather_both(C, P.perm[0], Q.perm[0], P.signs[0], Q.signs[0])
        return jax.scipy.fft.dctn(Y, norm="ortho")

    return to, back


def _kron_factors(n: int) -> tuple[np.ndarray, np.ndarray]:
    k = int(math.log2(n))
    a, b = 2 ** (k // 2), 2 ** (k - k // 2)
    return (scipy.linalg.hadamard(a).astype(np.float32),
            scipy.linalg.hadamard(b).astype(np.float32))


def _kron_wht2(X):
    """Orthonormal 2-D Walsh-Hadamard as four small matmuls (H_n = H_a kron H_b per axis)."""
    m, n = X.shape
    Ha, Hb = _kron_factors(n)
    Y = X.reshape(m, Ha.shape[0], Hb.shape[0])
    Y = jnp.einsum("rab,bc->rac", Y, Hb)
    Y = jnp.einsum("rab,ac->rcb", Y, Ha).reshape(m, n)
    Ha, Hb = _kron_factors(m)
    Y = Y.reshape(Ha.shape[0], Hb.shape[0], n)
    Y = jnp.einsum("abr,bc->acr", Y, Hb)
    Y = jnp.einsum("abr,ac->cbr", Y, Ha).reshape(m, n)
    return Y * (1.0 / math.sqrt(m * n))


def _kron_rotation(B: StructuredBasis):
    P, Q = B.P, B.Q

    def to(X):
        ip, iq = P.inv_perm[0], Q.inv_perm[0]
        return _gather_both(_kron_wht2(X), ip, iq, P.signs[0][ip], Q.signs[0][iq])

    def back(C):
        return _kron_wht2(_gather_both(C, P.perm[0], Q.perm[0], P.signs[0], Q.signs[0]))

    return to, back


def _scipy_rotation(B: StructuredBasis, workers: int):
    """The DCT basis in NumPy: scipy.fft.idctn / dctn (float32) and fancy-index gathers."""
    ip, iq = np.asarray(B.P.inv_perm[0]), np.asarray(B.Q.inv_perm[0])
    sp = np.asarray(B.P.signs[0], np.float32)
    sq = np.asarray(B.Q.signs[0], np.float32)
    p, q = np.asarray(B.P.perm[0]), np.asarray(B.Q.perm[0])
    out_signs = np.outer(sp[ip], sq[iq])
    in_signs = np.outer(sp, sq)

    def roundtrip(X):
        C = scipy.fft.idctn(X, norm="ortho", workers=workers)[ip][:, iq] * out_signs
        return scipy.fft.dctn(C[p][:, q] * in_signs, norm="ortho", workers=workers)

    return roundtrip


# --- the AdamW step on f = 1/2 sum Lambda C^2 -------------------------------------------------


def _adamw_step(grad_fn, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    def step(W, m, v, t, w_star):
        g = grad_fn(W - w_star)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1**t)
        vhat = v / (1 - b2**t)
        return W - lr * mhat / (jnp.sqrt(vhat) + eps), m, v

    return jax.jit(step)


# --- one size ---------------------------------------------------------------------------------


def bench_size(n: int, repeats: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    f32 = jnp.float32
    X = jnp.asarray(rng.standard_normal((n, n)), f32)
    Xn = np.asarray(X)
    lam = jnp.asarray(rng.uniform(0.1, 1.0, (n, n)), f32)
    Bd = structured_basis(np.random.default_rng(seed + 1), n, n, "dct")
    Bh = structured_basis(np.random.default_rng(seed + 1), n, n, "hadamard")
    Ph = jnp.asarray(haar_orthogonal(rng, n), f32)
    Qh = jnp.asarray(haar_orthogonal(rng, n), f32)

    def haar_to(X):
        return jnp.matmul(jnp.matmul(Ph.T, X, precision=_HI), Qh, precision=_HI)

    def haar_from(C):
        return jnp.matmul(jnp.matmul(Ph, C, precision=_HI), Qh.T, precision=_HI)

    def roundtrip(to, back):
        f = jax.jit(lambda X: back(to(X)))
        return lambda: f(X)

    js_to, js_back = _jax_scipy_rotation(Bd)
    kr_to, kr_back = _kron_rotation(Bh)
    sc1 = _scipy_rotation(Bd, workers=1)
    sc2 = _scipy_rotation(Bd, workers=2)
    rfft = jax.jit(lambda X: jnp.fft.irfft2(jnp.fft.rfft2(X), s=X.shape))

    rotations = {
        "structured dct": roundtrip(Bd.to_eigenbasis, Bd.from_eigenbasis),
        "structured hadamard": roundtrip(Bh.to_eigenbasis, Bh.from_eigenbasis),
        "jax.scipy dctn": roundtrip(js_to, js_back),
        "hadamard kron": roundtrip(kr_to, kr_back),
        "scipy (numpy), 1 thread": lambda: sc1(Xn),
        "scipy (numpy), 2 threads": lambda: sc2(Xn),
        "dense haar": roundtrip(haar_to, haar_from),
        "floor: rfft2 + irfft2": lambda: rfft(X),
        "floor: scipy dctn + idctn": lambda: scipy.fft.idctn(
            scipy.fft.dctn(Xn, norm="ortho"), norm="ortho"),
    }

    grads = {
        "step: coherent": lambda D: lam * D,
        "step: structured dct": lambda D: Bd.from_eigenbasis(lam * Bd.to_eigenbasis(D)),
        "step: structured hadamard": lambda D: Bh.from_eigenbasis(lam * Bh.to_eigenbasis(D)),
        "step: dense haar": lambda D: haar_from(lam * haar_to(D)),
    }
    W = X
    w_star = jnp.zeros_like(X)
    mom, vel = jnp.zeros_like(X), jnp.full_like(X, 1e-4)
    t = jnp.asarray(3.0, f32)
    def bound(step):
        return lambda: step(W, mom, vel, t, w_star)

    steps = {name: bound(_adamw_step(g)) for name, g in grads.items()}

    # Every rotation variant must return X (they are the same linear map and its inverse),
    # and the alternative DCT path must give the library's C.
    for name, f in rotations.items():
        if not name.startswith("floor"):
            err = float(np.abs(np.asarray(f(), np.float64) - Xn).max())
            assert err < 1e-3, (name, err)
    err = float(np.abs(np.asarray(js_to(X)) - np.asarray(Bd.to_eigenbasis(X))).max())
    assert err < 1e-3, ("jax.scipy dctn vs library", err)

    timed = time_round_robin({**rotations, **steps}, repeats)
    return dict(n=n, timings=timed, ratios=_ratios(timed, "median_s"),
                ratios_min=_ratios(timed, "min_s"))


def _ratios(timed: dict, stat: str) -> dict:
    """The rows' ratios (structured against its floors, against coherent and dense Haar)."""
    t = {k: v[stat] for k, v in timed.items()}
    floor = t["floor: rfft2 + irfft2"]
    return {
        "fastest structured": min(("structured dct", "structured hadamard"), key=t.get),
        "structured dct / rfft floor": t["structured dct"] / floor,
        "structured hadamard / rfft floor": t["structured hadamard"] / floor,
        "structured dct / scipy dctn floor": t["structured dct"]
        / t["floor: scipy dctn + idctn"],
        "dense haar / structured dct (rotation)": t["dense haar"] / t["structured dct"],
        "step structured dct / coherent": t["step: structured dct"] / t["step: coherent"],
        "step structured hadamard / coherent": t["step: structured hadamard"]
        / t["step: coherent"],
        "step dense haar / coherent": t["step: dense haar"] / t["step: coherent"],
        "step dense haar / structured dct": t["step: dense haar"]
        / t["step: structured dct"],
    }


def machine_info() -> dict:
    return dict(
        machine=platform.machine(), processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(), jax_version=jax.__version__, backend=jax.default_backend(),
        device_kind=jax.devices()[0].device_kind, loadavg=os.getloadavg(),
    )


def markdown(results: list[dict], info: dict, repeats: int) -> str:
    lines = [
        f"Machine: {info['processor']}, {info['cpu_count']} cores, JAX {info['jax_version']} "
        f"({info['backend']}), float32, {repeats} round-robin repeats, load average at the "
        f"start {info['loadavg'][0]:.1f}.",
        "",
    ]
    names = list(results[0]["timings"])
    head = "| | " + " | ".join(f"{r['n']}² median ms (min)" for r in results) + " |"
    lines += [head, "|---" * (len(results) + 1) + "|"]
    for k in names:
        cells = [f"{r['timings'][k]['median_s'] * 1e3:.2f} ({r['timings'][k]['min_s'] * 1e3:.2f})"
                 for r in results]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "| ratio: of medians (of minima) | "
              + " | ".join(f"{r['n']}²" for r in results) + " |",
              "|---" * (len(results) + 1) + "|"]

    def cell(a, b):
        return a if isinstance(a, str) else f"{a:.2f} ({b:.2f})"

    for k in results[0]["ratios"]:
        cells = [cell(r["ratios"][k], r["ratios_min"][k]) for r in results]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.structured", description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--markdown", help="also write the tables to this Markdown file")
    args = ap.parse_args(argv)
    info = machine_info()
    results = [bench_size(n, args.repeats) for n in args.sizes]
    text = markdown(results, info, args.repeats)
    info["loadavg_end"] = os.getloadavg()
    text += f"\nLoad average at the end: {info['loadavg_end'][0]:.1f}.\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
