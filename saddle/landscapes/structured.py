r"""Fast structured orthogonal bases: randomized DCT-II and Walsh-Hadamard transforms.

A dense Haar basis costs O(mn(m + n)) per rotation C = P^T X Q. A *structured* basis uses,
along each axis, an orthogonal matrix that is applied in O(n log n) without ever being formed:

.. math::

    P = (T D_R \Pi_R) \cdots (T D_1 \Pi_1)

with T the orthonormal DCT-II (any n) or the orthonormal Walsh-Hadamard transform (n a power
of two, Sylvester order), D_r a random +-1 diagonal and Pi_r a random permutation; R is the
number of *rounds* (1 by default). Every factor is orthogonal, so P is. On the (m, n) array,
C = P^T X Q applies P^T along axis 0 and Q^T along axis 1, so one rotation costs
O(mn log(mn)).

Conventions. One round acts on a vector x as ``P x = T (s * x[g])`` where ``s`` is the sign
vector and ``g`` the gather index of the permutation (so Pi is the matrix with
``(Pi x)_k = x_{g(k)}``), and its transpose as ``P^T y = (s * T^T y)[g^{-1}]``. Columns of
one round's P are therefore signed, permuted columns of T: ``p_j = s_k t_k`` with
``k = g^{-1}(j)``.

Incoherence. The coherence of an orthogonal n x n matrix is mu = sqrt(n) max_ij |p_ij|
(1 for the best-spread basis, sqrt(n) for the identity).

- Walsh-Hadamard: every entry of T is +-1/sqrt(n) exactly, so mu_T = 1.
- DCT-II: T_kj = sqrt(c_k / n) cos(pi k (2j + 1) / (2n)) with c_0 = 1, c_k = 2, so
  |T_kj| <= sqrt(2/n) and mu_T <= sqrt(2) (mu_T = 1 for n = 1).

*Why the signs and the permutation keep the bound (one round).* For P = T D Pi,
``P_ij = sum_k T_ik s_k Pi_kj``; Pi has exactly one 1 in column j, at row k = g^{-1}(j),
so ``P_ij = s_k T_ik`` and ``|P_ij| = |T_ik|``. Every entry of P is, up to sign, an entry of
T, hence max|P| = max|T| and mu_P = mu_T, whatever D and Pi are: the randomization changes
*which* columns of T become the escape directions and their signs, never their sizes. An
escape direction p_i q_j^T then has entries |P_ai| |Q_bj| <= (mu_P / sqrt(m)) (mu_Q /
sqrt(n)) = mu_P mu_Q / sqrt(mn), i.e. at most 2 / sqrt(mn) for DCT x DCT and exactly
1 / sqrt(mn) for Hadamard x Hadamard. A Haar-random basis has largest entry about
sqrt(2 ln(n^2) / n) instead: sqrt(4 ln n) times Hadamard's, sqrt(2 ln n) times the DCT's
bound.

*More rounds.* For R >= 2 the deterministic bound is lost: P = T D_R Pi_R M with M the
previous rounds (orthogonal), and ``P_ij = sum_k T_ik s_k (Pi_R M)_kj`` is a Rademacher sum
with squared coefficients summing to at most mu_T^2 / n. Hoeffding and a union bound over the
n^2 entries give, with probability at least 1 - delta, max|P| <= mu_T sqrt(2 ln(2 n^2 /
delta) / n): Haar-like delocalization (every column looks random) at the price of a log
factor in the coherence. :meth:`AxisTransform.coherence_bound` returns the deterministic
bound for one round and the trivial bound sqrt(n) otherwise; measure the actual value with
:meth:`AxisTransform.coherence` at small n.

Implementation (measurements in ``benchmarks/STRUCTURED.md``, made by
``python -m benchmarks.structured``):

- DCT-II goes through a *real* FFT (Makhoul's even/odd reordering, then one complex
  twiddle), which does half the work of ``jax.scipy.fft.dct`` (a complex FFT of real data).
  On the (m, n) array both axes go through one ``rfft2`` (or ``irfft2`` for the transpose):
  the column DCT is a real matrix, so it acts on the complex row spectrum directly, and no
  transpose is ever formed (XLA's transposes cost about as much as an FFT on the CPU).
  This was the fastest of the variants timed: 3-6x faster than
  ``jax.scipy.fft.dctn``/``idctn`` with the same gathers, and 1.4-1.9x the bare
  ``rfft2 + irfft2`` floor (256^2 to 1024^2, float32, CPU).
- The even/odd reordering is itself a permutation, so it is folded into the random
  permutation's gather: one gather per round for both axes, signs fused in.
- Walsh-Hadamard is radix-4 butterflies written with reshapes: additions and subtractions
  in a fixed order, so results are bit-identical for a seed whatever the batch (the DCT
  path is too, in the tests, though there it rests on XLA's FFT). Small dense matmuls
  (H_n = H_a kron H_b) were 15-33% faster in one run, but their summation order belongs to
  the BLAS kernel (and float32 matmuls on a GPU default to TF32); the default DCT is as
  fast as they are, so the butterflies stay.
- :func:`structured_basis` defaults to ``kind="dct"``: it works for every size and was the
  faster library kind; ``"hadamard"`` halves the escape-entry bound (mu = 1) for powers of
  two.

Everything runs in float32 or float64 (the dtype of the input); the sign vectors are stored
as int8 and the twiddles are computed in float64 and rounded once to the input's precision.
For checks there is a float64 NumPy reference built on ``scipy.fft`` (:func:`apply_np`,
:func:`apply_transpose_np`, :meth:`StructuredBasis.to_eigenbasis_np`) and :meth:`dense`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft

__all__ = [
    "AxisTransform",
    "StructuredBasis",
    "make_axis_transform",
    "structured_basis",
    "apply",
    "apply_transpose",
    "rotate_to",
    "rotate_from",
    "apply_np",
    "apply_transpose_np",
    "KINDS",
]

KINDS = ("dct", "hadamard")
_DENSE_MAX = 4096


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _resolve_kind(kind: str, n: int) -> str:
    if kind == "auto":
        return "hadamard" if _is_power_of_two(n) else "dct"
    if kind not in KINDS:
        raise ValueError(f"kind: got {kind!r}; allowed: auto, dct, hadamard")
    if kind == "hadamard" and not _is_power_of_two(n):
        raise ValueError(f"kind: 'hadamard' needs a power-of-two size; got n = {n}")
    return kind


def _interleave_index(n: int) -> np.ndarray:
    """Makhoul's reordering v = x[I]: even entries in order, then odd entries reversed."""
    return np.concatenate([np.arange(0, n, 2), np.arange(1, n, 2)[::-1]]).astype(np.int32)


# --- the description of one axis --------------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class AxisTransform:
    """One axis of a structured basis: P = (T D_R Pi_R) ... (T D_1 Pi_1), never formed.

    Build it with :func:`make_axis_transform`. A JAX pytree: the arrays are leaves (so a batch
    of bases can be ``vmap``-ed or passed through ``jit``), ``kind`` and ``rounds`` are static.

    Attributes:
        signs: (rounds, n) int8, the diagonals of D_r (+-1).
        perm: (rounds, n) int32, the gather index g_r of Pi_r: (Pi_r x)_k = x[g_r(k)].
        inv_perm: (rounds, n) int32, g_r^{-1}.
        kind: ``"dct"`` or ``"hadamard"`` (static).
        rounds: R >= 1 (static).
    """

    signs: jax.Array
    perm: jax.Array
    inv_perm: jax.Array
    kind: str = field(metadata=dict(static=True))
    rounds: int = field(metadata=dict(static=True))

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind: got {self.kind!r}; allowed: {', '.join(KINDS)}")
        shape = getattr(self.signs, "shape", None)
        if shape is not None and len(shape) == 2 and shape[0] != self.rounds:
            raise ValueError(f"signs: shape {shape} does not fit rounds = {self.rounds}")

    @property
    def size(self) -> int:
        return int(self.signs.shape[-1])

    # --- incoherence ---------------------------------------------------------------------
    def coherence_bound(self) -> float:
        """A bound on mu = sqrt(n) max|P_ij| that holds for every draw of signs and perms.

        1 for Hadamard, sqrt(2) for the DCT (1 at n = 1), for one round; sqrt(n) (trivial)
        for more rounds, whose coherence is only bounded with high probability (module
        docstring).
        """
        n = self.size
        if self.rounds > 1:
            return math.sqrt(n)
        if self.kind == "hadamard" or n == 1:
            return 1.0
        return math.sqrt(2.0)

    def coherence(self) -> float:
        """The measured mu = sqrt(n) max|P_ij| (forms P: small n only)."""
        return float(math.sqrt(self.size) * np.abs(self.dense()).max())

    # --- small-n materialization ---------------------------------------------------------
    def dense(self) -> np.ndarray:
        """P as an (n, n) float64 NumPy matrix (columns p_j = P e_j), for n <= 4096."""
        n = self.size
        if n > _DENSE_MAX:
            raise ValueError(f"dense: n = {n} is too large; allowed: n <= {_DENSE_MAX}")
        return apply_np(self, np.eye(n), axis=0)

    def column(self, j: int, dtype=None) -> jax.Array:
        """p_j = P e_j in O(n log n), without forming P."""
        dtype = dtype or jnp.result_type(float)
        e = jnp.zeros((self.size,), dtype).at[j].set(1)
        return apply(self, e, axis=0)


def make_axis_transform(
    rng: np.random.Generator, n: int, kind: str = "dct", rounds: int = 1
) -> AxisTransform:
    """A random structured orthogonal n x n transform, deterministic given ``rng``'s state.

    Args:
        rng: NumPy Generator; each round draws n signs, then a permutation of n.
        n: size (>= 1).
        kind: ``"dct"`` (any n; the default, the fastest), ``"hadamard"`` (n a power of
            two; mu = 1), or ``"auto"`` (Hadamard for powers of two, else DCT).
        rounds: R >= 1 factors T D Pi composed.
    """
    if n < 1:
        raise ValueError(f"n: got {n}; allowed: n >= 1")
    if rounds < 1:
        raise ValueError(f"rounds: got {rounds}; allowed: rounds >= 1")
    kind = _resolve_kind(kind, n)
    signs = np.empty((rounds, n), np.int8)
    perm = np.empty((rounds, n), np.int32)
    for r in range(rounds):
        signs[r] = 2 * rng.integers(0, 2, size=n, dtype=np.int8) - 1
        perm[r] = rng.permutation(n)
    inv_perm = np.argsort(perm, axis=1).astype(np.int32)
    return AxisTransform(
        signs=jnp.asarray(signs), perm=jnp.asarray(perm), inv_perm=jnp.asarray(inv_perm),
        kind=kind, rounds=rounds,
    )


# --- JAX kernels ----------------------------------------------------------------------------


def _fwht(x: jax.Array, axis: int = -1) -> jax.Array:
    """Orthonormal Walsh-Hadamard transform along ``axis`` (Sylvester order, symmetric).

    H_n is the Kronecker product of H_2 over the bits of the index, so it is applied as
    radix-4 butterflies (H_4 = H_2 kron H_2 on two bits per pass, the axis viewed as
    (blocks, 4, h)) plus one radix-2 pass when log2(n) is odd: additions and subtractions
    only, in a fixed order, then one scaling by 1/sqrt(n). Along a leading axis each
    butterfly combines whole contiguous rows, so no transpose is needed.
    """
    axis = axis % x.ndim
    n = x.shape[axis]
    pre, post = x.shape[:axis], x.shape[axis + 1:]
    h = 1
    while h < n:
        radix = 4 if 4 * h <= n else 2
        y = x.reshape(pre + (n // (radix * h), radix, h) + post)
        parts = [jax.lax.index_in_dim(y, k, axis + 1, keepdims=False) for k in range(radix)]
        if radix == 4:
            a, b, c, d = parts
            s1, d1, s2, d2 = a + b, a - b, c + d, c - d
            out = [s1 + s2, d1 + d2, s1 - s2, d1 - d2]
        else:
            a, b = parts
            out = [a + b, a - b]
        x = jnp.stack(out, axis=axis + 1).reshape(x.shape)
        h *= radix
    return x * jnp.asarray(1.0 / math.sqrt(n), x.dtype)


def _twiddle(n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(w, scale): w_k = exp(-i pi k / 2n) for k <= n//2 (complex, rounded once from float64)
    and the orthonormal DCT-II scale f_k = 1/sqrt(4n) (k = 0), 1/sqrt(2n) (k > 0)."""
    k = np.arange(n // 2 + 1)
    w = np.exp(-0.5j * np.pi * k / n)
    scale = np.full(n, 1.0 / math.sqrt(2.0 * n))
    scale[0] = 1.0 / math.sqrt(4.0 * n)
    real = jnp.dtype(dtype)
    cplx = jnp.complex64 if real == jnp.float32 else jnp.complex128
    return w.astype(cplx), scale.astype(real)


def _dct_post(v: jax.Array) -> jax.Array:
    """Orthonormal DCT-II of x along the last axis, given v = x[interleave], via one real FFT.

    With Z_k = exp(-i pi k / 2n) rfft(v)_k (k <= n//2), the unnormalized DCT-II is
    y_k = 2 Re Z_k for k <= n//2 and y_{n-k} = -2 Im Z_k for 1 <= k <= (n-1)//2 (the
    conjugate symmetry of the FFT of a real sequence gives the upper half).
    """
    n = v.shape[-1]
    if n == 1:
        return v
    w, scale = _twiddle(n, v.dtype)
    Z = jnp.fft.rfft(v, axis=-1) * w
    hi = jnp.flip(jnp.imag(Z)[..., 1:(n + 1) // 2], axis=-1)
    y = jnp.concatenate([jnp.real(Z), -hi], axis=-1)
    return y * jnp.asarray(2 * scale, v.dtype)


def _dct_pre(y: jax.Array) -> jax.Array:
    """The transpose of :func:`_dct_post` (DCT-III) along the last axis: returns v such that
    T^T y = v[deinterleave]. Inverts the relations of :func:`_dct_post` for Z, then one
    inverse real FFT."""
    n = y.shape[-1]
    if n == 1:
        return y
    w, scale = _twiddle(n, y.dtype)
    y = y / jnp.asarray(2 * scale, y.dtype)
    # Re Z_k = y_k, Im Z_k = -y_{n-k} for 1 <= k <= n//2, Im Z_0 = 0.
    tail = jnp.flip(y[..., n - n // 2:], axis=-1)
    im = jnp.concatenate([jnp.zeros_like(y[..., :1]), -tail], axis=-1)
    Z = jax.lax.complex(y[..., : n // 2 + 1], im)
    return jnp.fft.irfft(Z * np.conj(w), n=n, axis=-1)


def _synthesis_kernel(kind: str, v: jax.Array) -> jax.Array:
    """T applied along the last axis to v = (s * x[g])[I] (I = interleave for the DCT)."""
    return _dct_post(v) if kind == "dct" else _fwht(v)


def _analysis_kernel(kind: str, y: jax.Array) -> jax.Array:
    """T^T along the last axis, up to the reordering J = I^-1 folded into the next gather."""
    return _dct_pre(y) if kind == "dct" else _fwht(y)


def _synthesis_index(t: AxisTransform, r: int) -> tuple[jax.Array, jax.Array]:
    """(index, signs) with T D Pi x = T_kernel(signs * x[index]) for round r.

    For the DCT, T(s * x[g]) = post(rfft((s * x[g])[I])) = post(rfft(s[I] * x[g[I]])): the
    even/odd reordering I rides on the permutation's gather.
    """
    g, s = t.perm[r], t.signs[r]
    if t.kind == "dct":
        I = _interleave_index(t.size)
        return g[I], s[I]
    return g, s


def _analysis_index(t: AxisTransform, r: int) -> tuple[jax.Array, jax.Array]:
    """(index, signs) with (T D Pi)^T y = signs * kernel(y)[index] for round r:
    (s * T^T y)[g^-1] and T^T y = v[J], so the index is J[g^-1] and the signs s[g^-1]."""
    ginv, s = t.inv_perm[r], t.signs[r]
    if t.kind == "dct":
        J = np.argsort(_interleave_index(t.size)).astype(np.int32)
        return jnp.asarray(J)[ginv], s[ginv]
    return ginv, s[ginv]


def _gather(x: jax.Array, idx: jax.Array, axis: int) -> jax.Array:
    return jnp.take(x, idx, axis=axis, mode="clip", unique_indices=True)


def _check_axis(t: AxisTransform, x: jax.Array, axis: int, name: str) -> int:
    axis = axis % x.ndim
    if x.shape[axis] != t.size:
        raise ValueError(f"{name}: axis {axis} has length {x.shape[axis]}; the transform "
                         f"has {t.size}")
    return axis


def apply(t: AxisTransform, x: jax.Array, axis: int = 0) -> jax.Array:
    """P x along ``axis`` of x (synthesis: X = P C along axis 0), in O(size log n)."""
    axis = _check_axis(t, x, axis, "apply")
    x = jnp.swapaxes(x, axis, -1)
    for r in range(t.rounds):
        idx, s = _synthesis_index(t, r)
        x = _synthesis_kernel(t.kind, _gather(x, idx, -1) * s.astype(x.dtype))
    return jnp.swapaxes(x, axis, -1)


def apply_transpose(t: AxisTransform, y: jax.Array, axis: int = 0) -> jax.Array:
    """P^T y along ``axis`` of y (analysis: C = P^T X along axis 0), in O(size log n)."""
    axis = _check_axis(t, y, axis, "apply_transpose")
    y = jnp.swapaxes(y, axis, -1)
    for r in reversed(range(t.rounds)):
        idx, s = _analysis_index(t, r)
        y = _gather(_analysis_kernel(t.kind, y), idx, -1) * s.astype(y.dtype)
    return jnp.swapaxes(y, axis, -1)


def _gather2(x: jax.Array, rows, cols, srows, scols) -> jax.Array:
    """x[rows][:, cols] * outer(srows, scols) on the last two axes: one fused pass."""
    x = _gather(_gather(x, rows, -2), cols, -1)
    return x * (srows.astype(x.dtype)[:, None] * scols.astype(x.dtype)[None, :])


def _twiddle_full(n: int, dtype) -> np.ndarray:
    """W_k = exp(-i pi k / 2n) for all k < n (complex, rounded once from float64)."""
    cplx = jnp.complex64 if jnp.dtype(dtype) == jnp.float32 else jnp.complex128
    return np.exp(-0.5j * np.pi * np.arange(n) / n).astype(cplx)


def _neg_rows(Z: jax.Array) -> jax.Array:
    """Z[(-k) mod m] along axis -2: row 0 stays, the others reverse (whole rows move)."""
    return jnp.concatenate([Z[..., :1, :], jnp.flip(Z[..., 1:, :], axis=-2)], axis=-2)


def _dct2_post(v: jax.Array) -> jax.Array:
    """Orthonormal 2-D DCT-II of x, given v = x interleaved along both axes, via one rfft2.

    Along the rows the 1-D relations of :func:`_dct_post` hold with Z1 = w2 * R, R = rfft2(v)
    (the row DCT is 2 Re Z1, -2 Im Z1 reversed). Along the columns the DCT is a real matrix,
    so it commutes with Re and Im and may act on the complex Z1 directly: for a complex
    column c with V = fft(c interleaved), DCT(c)_k = W_k V_k + conj(W_k) V_{-k}. Hence
    D = W1 * Z1 + conj(W1) * Z1[-k1] and y = [2 Re D, -2 Im D reversed]. No transpose.
    """
    m, n = v.shape[-2:]
    w2, s2 = _twiddle(n, v.dtype)
    _, s1 = _twiddle(m, v.dtype)
    W1 = _twiddle_full(m, v.dtype)[:, None]
    Z = jnp.fft.rfft2(v) * w2
    D = W1 * Z + np.conj(W1) * _neg_rows(Z)
    hi = jnp.flip(jnp.imag(D)[..., 1:(n + 1) // 2], axis=-1)
    y = jnp.concatenate([jnp.real(D), -hi], axis=-1)
    return y * jnp.asarray(2 * np.outer(s1, s2), v.dtype)


def _dct2_pre(y: jax.Array) -> jax.Array:
    """The transpose of :func:`_dct2_post`: v with T_m^T y T_n = v deinterleaved on both axes.

    Along the rows, as in :func:`_dct_pre`, G = conj(w2) (y_k - i y_{n-k}) / 2. Along the
    columns the 1-D inverse V_k = conj(W_k) (a_k - i a_{m-k}) / 2 (a_m = 0) is complex-linear
    in a, so it applies to the complex G: V = conj(W1) (G - i G[m - k1]) / 2, and one irfft2
    (ifft down the columns, irfft along the rows) returns v.
    """
    m, n = y.shape[-2:]
    w2, s2 = _twiddle(n, y.dtype)
    _, s1 = _twiddle(m, y.dtype)
    W1 = _twiddle_full(m, y.dtype)[:, None]
    y = y * jnp.asarray(1.0 / np.outer(2 * s1, 2 * s2), y.dtype)
    tail = jnp.flip(y[..., n - n // 2:], axis=-1)
    im = jnp.concatenate([jnp.zeros_like(y[..., :1]), -tail], axis=-1)
    G = jax.lax.complex(y[..., : n // 2 + 1], im) * np.conj(w2)
    Grev = _neg_rows(G)
    Grev = jnp.concatenate([jnp.zeros_like(Grev[..., :1, :]), Grev[..., 1:, :]], axis=-2)
    V = np.conj(W1) * (G - 1j * Grev)
    # The 1/2 of each axis is already in the 1/(2 s1 2 s2) scaling above: 2 (s1 s2) is the
    # unnormalized-to-ortho factor per axis, and Z = y_unnormalized / 2 per axis.
    return jnp.fft.irfft2(V, s=(m, n))


def _kernel2(kP: str, kQ: str, x: jax.Array, synthesis: bool) -> jax.Array:
    """T along both trailing axes (synthesis) or T^T (analysis), on reordered data."""
    if kP == kQ == "dct":
        return _dct2_post(x) if synthesis else _dct2_pre(x)
    one = _synthesis_kernel if synthesis else _analysis_kernel
    x = one(kQ, x)  # rows
    if kP == "hadamard":
        return _fwht(x, axis=-2)
    return jnp.swapaxes(one(kP, jnp.swapaxes(x, -1, -2)), -1, -2)


def rotate_to(P: AxisTransform, Q: AxisTransform, X: jax.Array) -> jax.Array:
    """C = P^T X Q for X of shape (..., m, n) (P and Q with the same number of rounds).

    Per round: T^T along both axes in one 2-D pass (one irfft2 for DCT x DCT, butterflies
    for Hadamard), then one gather that applies both axes' permutations (with the DCT's
    even/odd reordering folded in) and signs.
    """
    for r in reversed(range(P.rounds)):
        ip, sp = _analysis_index(P, r)
        iq, sq = _analysis_index(Q, r)
        X = _gather2(_kernel2(P.kind, Q.kind, X, synthesis=False), ip, iq, sp, sq)
    return X


def rotate_from(P: AxisTransform, Q: AxisTransform, C: jax.Array) -> jax.Array:
    """X = P C Q^T for C of shape (..., m, n); the mirror of :func:`rotate_to`."""
    for r in range(P.rounds):
        ip, sp = _synthesis_index(P, r)
        iq, sq = _synthesis_index(Q, r)
        C = _kernel2(P.kind, Q.kind, _gather2(C, ip, iq, sp, sq), synthesis=True)
    return C


# --- NumPy reference (float64, scipy.fft) -----------------------------------------------------


def _fwht_np(x: np.ndarray, axis: int) -> np.ndarray:
    n = x.shape[axis]
    x = np.moveaxis(np.array(x, dtype=np.result_type(x, np.float64)), axis, 0)
    h = 1
    while h < n:
        y = x.reshape((n // (2 * h), 2, h) + x.shape[1:])
        x = np.stack([y[:, 0] + y[:, 1], y[:, 0] - y[:, 1]], axis=1).reshape(x.shape)
        h *= 2
    return np.moveaxis(x / math.sqrt(n), 0, axis)


def _bshape_np(t: AxisTransform, ndim: int, axis: int) -> tuple[int, ...]:
    """Shape that broadcasts an (n,) vector along ``axis`` of an ndim array."""
    return tuple(t.size if a == axis else 1 for a in range(ndim))


def apply_np(t: AxisTransform, x: np.ndarray, axis: int = 0) -> np.ndarray:
    """NumPy reference of :func:`apply` (float64; scipy.fft.dct for the DCT)."""
    x = np.asarray(x, np.float64)
    axis = axis % x.ndim
    signs, perm = np.asarray(t.signs, np.float64), np.asarray(t.perm)
    bs = _bshape_np(t, x.ndim, axis)
    for r in range(t.rounds):
        x = np.take(x, perm[r], axis=axis) * signs[r].reshape(bs)
        if t.kind == "hadamard":
            x = _fwht_np(x, axis)
        else:
            x = scipy.fft.dct(x, type=2, norm="ortho", axis=axis)
    return x


def apply_transpose_np(t: AxisTransform, y: np.ndarray, axis: int = 0) -> np.ndarray:
    """NumPy reference of :func:`apply_transpose` (float64)."""
    y = np.asarray(y, np.float64)
    axis = axis % y.ndim
    signs, inv_perm = np.asarray(t.signs, np.float64), np.asarray(t.inv_perm)
    bs = _bshape_np(t, y.ndim, axis)
    for r in reversed(range(t.rounds)):
        if t.kind == "hadamard":
            y = _fwht_np(y, axis)
        else:
            y = scipy.fft.idct(y, type=2, norm="ortho", axis=axis)
        y = np.take(y * signs[r].reshape(bs), inv_perm[r], axis=axis)
    return y


# --- the pair (P, Q) --------------------------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class StructuredBasis:
    """The eigenbasis pair of a spectral saddle: P (m x m) along axis 0, Q (n x n) along
    axis 1, both structured. Build it with :func:`structured_basis`.

    The methods mirror :class:`saddle.landscapes.spectral.SpectralSaddle`'s
    (``to_eigenbasis``, ``from_eigenbasis``, ``escape_direction``,
    ``direction_coordinates``, ``escape_projection``), so a spectral saddle can hold one in
    place of its dense P and Q: the value and gradient are unchanged in form,
    ``grad = from_eigenbasis(Lambda * to_eigenbasis(W - W*)) + quartic term``, at
    O(mn log(mn)) per step instead of O(mn(m + n)). Works on (..., m, n) arrays.
    """

    P: AxisTransform
    Q: AxisTransform

    def __post_init__(self):
        if self.P.rounds != self.Q.rounds:
            raise ValueError(f"rounds: P has {self.P.rounds}, Q has {self.Q.rounds}; "
                             "they must match")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.P.size, self.Q.size)

    def to_eigenbasis(self, X: jax.Array) -> jax.Array:
        """C = P^T X Q: P^T along axis 0, Q^T along axis 1 (the two commute)."""
        return rotate_to(self.P, self.Q, X)

    def from_eigenbasis(self, C: jax.Array) -> jax.Array:
        """X = P C Q^T: P along axis 0, Q along axis 1."""
        return rotate_from(self.P, self.Q, C)

    def to_eigenbasis_np(self, X: np.ndarray) -> np.ndarray:
        return apply_transpose_np(self.Q, apply_transpose_np(self.P, X, axis=-2), axis=-1)

    def from_eigenbasis_np(self, C: np.ndarray) -> np.ndarray:
        return apply_np(self.Q, apply_np(self.P, C, axis=-2), axis=-1)

    def escape_direction(self, i: int, j: int | None = None, dtype=None) -> jax.Array:
        """p_i q_j^T (j = i by default) as an (m, n) array, from two O(n log n) columns."""
        j = i if j is None else j
        return jnp.outer(self.P.column(i, dtype), self.Q.column(j, dtype))

    def direction_coordinates(self, X: jax.Array, r: int) -> jax.Array:
        """<p_i q_i^T, X> = C_ii for i < r (one forward rotation)."""
        C = self.to_eigenbasis(X)
        idx = jnp.arange(r)
        return C[..., idx, idx]

    def escape_projection(self, X: jax.Array, r: int) -> jax.Array:
        """sum_{i<r} <p_i q_i^T, X> p_i q_i^T: X projected on the escape subspace."""
        idx = jnp.arange(r)
        a = self.direction_coordinates(X, r)
        C = jnp.zeros(X.shape, X.dtype).at[..., idx, idx].set(a)
        return self.from_eigenbasis(C)

    def escape_entry_bound(self) -> float:
        """mu_P mu_Q / sqrt(mn): no entry of any p_i q_j^T exceeds it (one round)."""
        m, n = self.shape
        return self.P.coherence_bound() * self.Q.coherence_bound() / math.sqrt(m * n)

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(P, Q) as float64 NumPy matrices, for small sizes."""
        return self.P.dense(), self.Q.dense()


def structured_basis(
    rng: np.random.Generator, m: int, n: int, kind: str = "dct", rounds: int = 1
) -> StructuredBasis:
    """A random structured basis for (m, n) arrays: P drawn first, then Q, from ``rng``.

    ``kind`` as in :func:`make_axis_transform`, for both axes (``"auto"`` may mix Hadamard on
    a power-of-two axis with the DCT on the other).
    """
    P = make_axis_transform(rng, m, kind, rounds)
    Q = make_axis_transform(rng, n, kind, rounds)
    return StructuredBasis(P=P, Q=Q)
