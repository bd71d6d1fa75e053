"""numba kernels for element-wise optimizers on coherent spectral saddles.

With the coherent basis the gradient is element-wise, Lambda * X + kappa ||X||^2 X, so a
whole optimizer step (noise, gradient, update, and the next iterate's loss, norm and escape
coordinates) fuses into one pass over the matrix: one read and one write of each buffer, no
temporaries. Runs are independent and spread over cores with ``prange``; each run draws its
noise from its own xoshiro256** stream (:mod:`saddle.kernels.rng`), so a run's result
depends only on its config and seed.

Supported: AdamW, SGD (heavy ball, Nesterov), sign descent, normalized GD (two passes per
step) and Mano v1/v2 (three passes), with Gaussian noise scaled per row (``none``,
``isotropic``, ``opnorm``, ``kronecker``). The component specs decide what comes here: an
optimizer spec's ``numba_code`` is one of the codes below, a noise spec sets ``numba``.
Anything else runs on the JAX engine.

The step semantics match the JAX engine exactly: iteration t checks the criteria on W_t
(escape only for t >= 1), then takes step t + 1. The random streams differ from JAX's, so
the two backends agree in distribution (and, without noise, to rounding), not per seed.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ..engine.output import CENSORED, DIVERGED, ESCAPED, RUNNING
from .rng import ZIG_FN, ZIG_KN, ZIG_WN, fill_normal, seed_state

__all__ = ["ADAMW", "SGD", "SIGN_DESCENT", "NORMALIZED_GD", "MANO", "SCALARS", "run_block",
           "compiled"]

# The optimizer codes run_block takes (an optimizer spec's numba_code).
ADAMW, SGD, SIGN_DESCENT, NORMALIZED_GD, MANO = 0, 1, 2, 3, 4
# Columns of the per-run scalar table.
SCALARS = (
    "learning_rate",
    "b1",
    "b2",
    "eps",
    "weight_decay",
    "momentum",
    "gamma",
    "bulk_scale",
    "quartic",
    "noise_scale",
    "init_scale",
    "init_escape",
    "radius",
    "loss_drop",
    "max_loss",
    "divergence_factor",
    "divergence_scale",
)
_STREAM_INIT, _STREAM_NOISE = 1, 2


@nb.njit(cache=True)
def _stats(W, w_star, lam, quartic, r):
    """(loss, ||X||^2, escape distance) of an iterate, accumulated in float64."""
    m, n = W.shape
    half = 0.0
    sq = 0.0
    for i in range(m):
        for j in range(n):
            x = float(W[i, j]) - float(w_star[i, j])
            half += 0.5 * float(lam[i, j]) * x * x
            sq += x * x
    d2 = 0.0
    for i in range(r):
        x = float(W[i, i]) - float(w_star[i, i])
        d2 += x * x
    return half + 0.25 * quartic * sq * sq, sq, math.sqrt(d2)


@nb.njit(cache=True)
def _record(row, W_old, W, w_star, M, r, loss, sq, dist):
    """The trace row of iterate W_old (see saddle.engine.TRACE_FIELDS); W is the next one."""
    m, n = W.shape
    for i in range(r):
        row[i] = float(W_old[i, i]) - float(w_star[i, i])
    sgn = -1.0 if row[0] < 0 else 1.0
    delta = np.empty((m, n))
    fro = 0.0
    for i in range(m):
        for j in range(n):
            d = float(W[i, j]) - float(W_old[i, j])
            delta[i, j] = d
            fro += d * d
    fro = math.sqrt(fro)
    spec = np.linalg.norm(delta, 2) if fro > 0 else 0.0
    # ||dW_perp||^2: every entry of the step but the escape diagonal (coherent basis).
    perp = 0.0
    for i in range(m):
        for j in range(n):
            if not (i == j and i < r):
                perp += delta[i, j] * delta[i, j]
    perp = math.sqrt(perp)
    Mr = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            Mr[i, j] = float(M[i, j])
    # The momentum's top singular pair against (e_0, e_0): |U[0, 0] Vt[0, 0]|.
    U, S, Vt = np.linalg.svd(Mr)
    align = abs(U[0, 0] * Vt[0, 0]) if S[0] > 0 else np.nan
    signal = abs(Mr[0, 0])
    Mr[0, 0] = 0.0
    row[r + 0] = dist
    row[r + 1] = math.sqrt(max(sq - dist * dist, 0.0))
    row[r + 2] = loss
    if fro > 0:
        row[r + 3] = fro
        row[r + 4] = spec
        row[r + 5] = delta[0, 0] * sgn / spec
    else:
        row[r + 3] = np.nan
        row[r + 4] = np.nan
        row[r + 5] = np.nan
    row[r + 6] = signal
    row[r + 7] = np.linalg.norm(Mr, 2)
    row[r + 8] = perp if fro > 0 else np.nan
    row[r + 9] = perp / fro if fro > 0 else np.nan
    row[r + 10] = align
    # ||X_perp||_2: the displacement W_old - W* without its escape diagonal.
    Xp = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            Xp[i, j] = float(W_old[i, j]) - float(w_star[i, j])
    for i in range(r):
        Xp[i, i] = 0.0
    row[r + 11] = np.linalg.norm(Xp, 2)


# Row kernels. Each is a loop with no reduction and no early exit, so LLVM vectorizes it
# (square root and divide included). Two things blocked that inside the big kernel:
# numba's Python error model puts a ZeroDivisionError branch on every divide (an early
# exit), and numba's merged variables kept the loop's temporaries live after the loop.
_ROW = dict(cache=True, fastmath={"contract"}, error_model="numpy")


@nb.njit(**_ROW)
def _adamw_row(W, w_star, lam, m1, m2, noise, rm, qsq, b1, b2, bc1, bc2, eps, lr, wd):
    # 1 - b1 with an integer 1 is float64 in numba, and it dragged the whole row into
    # float64 (4x slower); the optimizer's arithmetic is in W's dtype, as in optax.
    one = W.dtype.type(1)
    c1 = one - b1
    c2 = one - b2
    for j in range(W.shape[0]):
        x = W[j] - w_star[j]
        g = lam[j] * x + qsq * x + rm * noise[j]
        a = b1 * m1[j] + c1 * g
        b = b2 * m2[j] + c2 * g * g
        m1[j] = a
        m2[j] = b
        W[j] = W[j] - lr * ((a / bc1) / (np.sqrt(b / bc2) + eps) + wd * W[j])


@nb.njit(**_ROW)
def _momentum_row(W, w_star, lam, m1, noise, rm, qsq, mom, lr, wd, nesterov, sign):
    """SGD (heavy ball or Nesterov) or sign descent, one row in place."""
    for j in range(W.shape[0]):
        x = W[j] - w_star[j]
        g = lam[j] * x + qsq * x + rm * noise[j]
        M = mom * m1[j] + g
        m1[j] = M
        if sign:
            d = W.dtype.type(np.sign(M))
        elif nesterov:
            d = g + mom * M
        else:
            d = M
        W[j] = W[j] - lr * (d + wd * W[j])


@nb.njit(**_ROW)
def _scaled_row(W, D, scale, lr, wd):
    """W <- W - lr (scale * D + wd W): normalized GD's step."""
    for j in range(W.shape[0]):
        W[j] = W[j] - lr * (D[j] * scale + wd * W[j])


@nb.njit(**_ROW)
def _mano_row(W, v, nk, col_scale, lr, wd):
    """W <- W - lr (nk v col_scale + wd W), a per-column scale (Mano's column step)."""
    for j in range(W.shape[0]):
        W[j] = W[j] - lr * (nk * v[j] * col_scale[j] + wd * W[j])


@nb.njit(**_ROW)
def _mano_row_const(W, v, nk, scale, lr, wd):
    """The same with one scale for the whole row (Mano's row step)."""
    for j in range(W.shape[0]):
        W[j] = W[j] - lr * (nk * v[j] * scale + wd * W[j])


@nb.njit(**_ROW)
def _mano_momentum_row(W, w_star, lam, m1, noise, rm, qsq, mom, nesterov, v):
    """Mano's momentum for one row: m1 <- mom m1 + g, v <- V (Nesterov or not)."""
    for j in range(W.shape[0]):
        x = W[j] - w_star[j]
        g = lam[j] * x + qsq * x + rm * noise[j]
        M = mom * m1[j] + g
        m1[j] = M
        v[j] = g + mom * M if nesterov else M


@nb.njit(**_ROW)
def _column_sums(W, v, sa, sb):
    """Add this row's theta^2 and V theta to the per-column sums (float64)."""
    for j in range(W.shape[0]):
        th = float(W[j])
        sa[j] += th * th
        sb[j] += float(v[j]) * th


@nb.njit(**_ROW)
def _row_sums(W, v):
    """(sum theta^2, sum V theta) over one row, float64, in order."""
    a = 0.0
    b = 0.0
    for j in range(W.shape[0]):
        th = float(W[j])
        a += th * th
        b += float(v[j]) * th
    return a, b


@nb.njit(**_ROW)
def _tangent_columns(v, W, coef, sq):
    """v <- v - coef[col] theta, adding the new v^2 to the per-column sums."""
    dt = W.dtype.type
    for j in range(W.shape[0]):
        vv = v[j] - dt(coef[j]) * W[j]
        v[j] = vv
        sq[j] += float(vv) * float(vv)


@nb.njit(**_ROW)
def _tangent_row(v, W, coef):
    """v <- v - coef theta over one row; returns sum v^2 (float64, in order)."""
    total = 0.0
    for j in range(W.shape[0]):
        vv = v[j] - coef * W[j]
        v[j] = vv
        total += float(vv) * float(vv)
    return total


@nb.njit(**_ROW)
def _row_stats(W, w_star, lam, half, nsq):
    """(half + sum(lam x^2), nsq + sum(x^2)) for x = W - W*, in float64, added in order."""
    for j in range(W.shape[0]):
        x = float(W[j]) - float(w_star[j])
        half += float(lam[j]) * x * x
        nsq += x * x
    return half, nsq


# The optimizer steps. Each takes W_t to W_{t+1} in place, given this step's noise in
# ``noise`` (flat, row-major) and qsq = kappa ||X_t||^2 in W's dtype, and returns
# (u00, half, nsq): the update's escape component -(W_{t+1} - W_t)[0, 0] as the optimizer
# computed it, and sum(lam x^2) and ||x||^2 of the new iterate (x = W_{t+1} - W*), float64.
# The scalars come from the run's row of SCALARS (float64) and are cast to W's dtype here.


@nb.njit(**_ROW)
def _adamw_step(W, w_star, lam, m1, m2, noise, row_mult, qsq, sc, count):
    m, n = W.shape
    dt = W.dtype.type
    b1, b2 = sc[1], sc[2]
    lr, b1_, b2_, eps, wd = dt(sc[0]), dt(b1), dt(b2), dt(sc[3]), dt(sc[4])
    bc1 = dt(1.0 - b1**count)
    bc2 = dt(1.0 - b2**count)
    w00 = W[0, 0]
    half = 0.0
    nsq = 0.0
    for i in range(m):
        _adamw_row(W[i], w_star[i], lam[i], m1[i], m2[i], noise[i * n:(i + 1) * n],
                   row_mult[i], qsq, b1_, b2_, bc1, bc2, eps, lr, wd)
        half, nsq = _row_stats(W[i], w_star[i], lam[i], half, nsq)
    u00 = lr * ((m1[0, 0] / bc1) / (np.sqrt(m2[0, 0] / bc2) + eps) + wd * w00)
    return u00, half, nsq


@nb.njit(**_ROW)
def _momentum_step(W, w_star, lam, m1, noise, row_mult, qsq, sc, nesterov, sign):
    """SGD (heavy ball or Nesterov), or sign descent when ``sign``."""
    m, n = W.shape
    dt = W.dtype.type
    lr, wd, mom = dt(sc[0]), dt(sc[4]), dt(sc[5])
    w00 = W[0, 0]
    half = 0.0
    nsq = 0.0
    for i in range(m):
        _momentum_row(W[i], w_star[i], lam[i], m1[i], noise[i * n:(i + 1) * n],
                      row_mult[i], qsq, mom, lr, wd, nesterov, sign)
        half, nsq = _row_stats(W[i], w_star[i], lam[i], half, nsq)
    M0 = m1[0, 0]
    if not sign:
        x0 = w00 - w_star[0, 0]
        g0 = lam[0, 0] * x0 + qsq * x0 + row_mult[0] * noise[0]
        d0 = g0 + mom * M0 if nesterov else M0
    else:
        d0 = dt(np.sign(M0))
    return lr * (d0 + wd * w00), half, nsq


@nb.njit(**_ROW)
def _normalized_step(W, w_star, lam, m1, noise, row_mult, qsq, sc):
    """Normalized GD: the momentum's norm needs a pass of its own before the update."""
    m, n = W.shape
    dt = W.dtype.type
    lr, wd, mom = dt(sc[0]), dt(sc[4]), dt(sc[5])
    eps = sc[3]
    w00 = W[0, 0]
    nrm = 0.0
    for i in range(m):
        rm = row_mult[i]
        for j in range(n):
            x = W[i, j] - w_star[i, j]
            g = lam[i, j] * x + qsq * x + rm * noise[i * n + j]
            M = mom * m1[i, j] + g
            m1[i, j] = M
            nrm += float(M) * float(M)
    inv = dt(1.0 / max(math.sqrt(nrm), eps))
    half = 0.0
    nsq = 0.0
    for i in range(m):
        _scaled_row(W[i], m1[i], inv, lr, wd)
        half, nsq = _row_stats(W[i], w_star[i], lam[i], half, nsq)
    return lr * (m1[0, 0] * inv + wd * w00), half, nsq


@nb.njit(**_ROW)
def _mano_direction(W, w_star, lam, m1, v, noise, row_mult, qsq, mom, nesterov, variant2,
                    eps, k, slice_a, slice_b):
    """Mano's direction: v <- the momentum's tangent part, one slice (column for k = 0,
    row for k = 1) at a time; slice_b[q] <- the scale of slice q's step, float64."""
    m, n = W.shape
    dt = W.dtype.type
    slice_a[:] = 0.0  # ||theta||^2 per slice
    slice_b[:] = 0.0  # <V, theta> per slice
    for i in range(m):
        _mano_momentum_row(W[i], w_star[i], lam[i], m1[i], noise[i * n:(i + 1) * n],
                           row_mult[i], qsq, mom, nesterov, v[i])
        if k == 0:
            _column_sums(W[i], v[i], slice_a, slice_b)
        else:
            slice_a[i], slice_b[i] = _row_sums(W[i], v[i])
    nslices = n if k == 0 else m
    for q in range(nslices):
        if variant2:
            slice_a[q] = slice_b[q]  # coefficient of theta: <V, theta>
        else:
            nt = max(math.sqrt(slice_a[q]), eps)
            slice_a[q] = slice_b[q] / (nt * nt)  # <V, th_hat> / max(||th||, eps)
        slice_b[q] = 0.0
    for i in range(m):
        if k == 0:
            _tangent_columns(v[i], W[i], slice_a, slice_b)
        else:
            slice_b[i] = _tangent_row(v[i], W[i], dt(slice_a[i]))
    for q in range(nslices):
        nv = math.sqrt(slice_b[q])
        slice_b[q] = 1.0 / (nv + eps) if variant2 else 1.0 / max(nv, eps)


@nb.njit(**_ROW)
def _mano_step(W, w_star, lam, m1, v, noise, row_mult, qsq, sc, nesterov, variant2, t,
               slice_a, slice_b, scale_row):
    """Mano: momentum and slice sums, then the tangent direction, then the update; even
    steps normalize columns, odd steps rows."""
    m, n = W.shape
    dt = W.dtype.type
    lr, wd, mom = dt(sc[0]), dt(sc[4]), dt(sc[5])
    eps = sc[3]
    w00 = W[0, 0]
    k = t % 2
    nk = dt(0.2 * math.sqrt(m if k == 0 else n))
    _mano_direction(W, w_star, lam, m1, v, noise, row_mult, qsq, mom, nesterov, variant2,
                    eps, k, slice_a, slice_b)
    if k == 0:
        for j in range(n):
            scale_row[j] = dt(slice_b[j])
    half = 0.0
    nsq = 0.0
    for i in range(m):
        if k == 0:
            _mano_row(W[i], v[i], nk, scale_row, lr, wd)
        else:
            _mano_row_const(W[i], v[i], nk, dt(slice_b[i]), lr, wd)
        half, nsq = _row_stats(W[i], w_star[i], lam[i], half, nsq)
    return lr * (nk * v[0, 0] * dt(slice_b[0]) + wd * w00), half, nsq


@nb.njit(**_ROW)
def _init_iterate(W, w_star, buf, seed, init_scale, init_escape):
    """W <- W* + init_scale Z + a0 e_0 e_0^T, Z from the run's initialization stream."""
    m, n = W.shape
    dt = W.dtype.type
    s = seed_state(seed, _STREAM_INIT)
    s = fill_normal(s, buf, dt(init_scale), ZIG_KN, ZIG_WN, ZIG_FN)
    for i in range(m):
        for j in range(n):
            W[i, j] = w_star[i, j] + buf[i * n + j]
    W[0, 0] += dt(init_escape)


@nb.njit(**_ROW)
def _escape_distance(W, w_star, r):
    """||Pi_esc(W - W*)||_F, accumulated in float64."""
    d2 = 0.0
    for i in range(r):
        x = float(W[i, i]) - float(w_star[i, i])
        d2 += x * x
    return math.sqrt(d2)


@nb.njit(**_ROW)
def _stop_status(t, loss, sq, dist, crit, sc, max_steps, loss0):
    """DIVERGED, ESCAPED (criterion met at t >= 1) or CENSORED at iterate t; else RUNNING.

    Diverged (checked first, as saddle.engine.loop.diverged_at): the loss or ||X||^2 is
    non-finite, or loss > divergence_factor * (|loss0| + divergence_scale), or loss >
    max_loss; loss0 = f(W_0) and f(W*) = 0. (Here in float64, like the kernels' loss.)"""
    radius, loss_drop, max_loss = sc[12], sc[13], sc[14]
    limit = sc[15] * (abs(loss0) + sc[16])
    diverged = (not (math.isfinite(loss) and math.isfinite(sq)) or loss > limit
                or loss > max_loss)
    if crit == 0:
        met = dist >= radius
    else:
        met = loss <= -loss_drop
    if diverged:
        return DIVERGED
    if met and t >= 1:
        return ESCAPED
    if t >= max_steps:
        return CENSORED
    return RUNNING


# Only "contract" (FMA) is allowed. With "reassoc" LLVM vectorizes the float64 loss
# reductions and versions each loop behind run-time alias checks on the array addresses;
# the vector and scalar versions round differently, so a run's result depended on where
# the allocator put its buffers (about 1 process in 6 differed in the last bits). Costs
# about 15% at 32x32.
@nb.njit(**_ROW)
def _one_run(opt, variant2, nesterov, crit, W, w_star, lam, row_mult, r, sc, seed, max_steps,
             noise_on, stride, trace, tmark):
    """One run from its initial iterate to a stop; returns (status, stop step, loss,
    escape distance, steps with a non-zero escape update, those of them lost to rounding)."""
    m, n = W.shape
    dt = W.dtype.type
    quartic, noise_scale = sc[8], sc[9]
    buf = np.empty(m * n, W.dtype)
    _init_iterate(W, w_star, buf, seed, sc[10], sc[11])
    s = seed_state(seed, _STREAM_NOISE)
    m1 = np.zeros_like(W)
    m2 = np.zeros_like(W)
    v = np.empty_like(W)
    slice_a = np.empty(max(m, n))
    slice_b = np.empty(max(m, n))
    scale_row = np.empty(n, W.dtype)
    loss, sq, dist = _stats(W, w_star, lam, quartic, r)
    loss0 = loss
    W_old = np.empty_like(W) if stride > 0 else W
    counted = 0  # steps whose update had a non-zero escape component (entry [0, 0])
    lost = 0  # ... of which rounding W + U changed that component by more than half
    t = 0
    while True:
        status = _stop_status(t, loss, sq, dist, crit, sc, max_steps, loss0)
        tracing = stride > 0 and t % stride == 0
        if tracing:
            W_old[:, :] = W
        if status != RUNNING:
            if tracing:  # the stopping iterate's row, no step after it (as the JAX loop)
                _record(trace[t // stride], W_old, W, w_star, m1, r, loss, sq, dist)
                tmark[t // stride] = t
            return status, t, loss, dist, counted, lost
        if noise_on:
            s = fill_normal(s, buf, dt(noise_scale), ZIG_KN, ZIG_WN, ZIG_FN)
        else:
            buf[:] = 0
        qsq = dt(quartic * sq)
        w00 = W[0, 0]
        if opt == ADAMW:
            u00, half, nsq = _adamw_step(W, w_star, lam, m1, m2, buf, row_mult, qsq, sc, t + 1)
        elif opt == SGD or opt == SIGN_DESCENT:
            u00, half, nsq = _momentum_step(W, w_star, lam, m1, buf, row_mult, qsq, sc,
                                            nesterov, opt == SIGN_DESCENT)
        elif opt == NORMALIZED_GD:
            u00, half, nsq = _normalized_step(W, w_star, lam, m1, buf, row_mult, qsq, sc)
        else:
            u00, half, nsq = _mano_step(W, w_star, lam, m1, v, buf, row_mult, qsq, sc,
                                        nesterov, variant2, t, slice_a, slice_b, scale_row)
        intended = -float(u00)
        if intended != 0.0:
            counted += 1
            if abs((float(W[0, 0]) - float(w00)) - intended) > 0.5 * abs(intended):
                lost += 1
        if tracing:
            _record(trace[t // stride], W_old, W, w_star, m1, r, loss, sq, dist)
            tmark[t // stride] = t
        sq = nsq
        loss = 0.5 * half + 0.25 * quartic * sq * sq
        dist = _escape_distance(W, w_star, r)
        t += 1
    return RUNNING, t, loss, dist, counted, lost  # unreachable


@nb.njit(parallel=True, cache=True)
def run_block(opt, variant2, nesterov, crit, bulk, w_star, row_mult, r, scalars, seeds,
              max_steps, noise_on, stride, traces, tmarks):
    """Run every row of ``scalars`` (one run each) to escape, divergence or its budget.

    Returns (status, stop step, final loss, final escape distance, steps with a non-zero
    escape-direction update, those of them lost to rounding), one entry per run. With
    ``stride`` > 0, iterate t (t % stride == 0) of run b fills ``traces[b, t // stride]``
    and sets ``tmarks[b, t // stride] = t``.
    """
    K = scalars.shape[0]
    m, n = bulk.shape
    status = np.empty(K, np.int64)
    stop = np.empty(K, np.int64)
    loss = np.empty(K, np.float64)
    dist = np.empty(K, np.float64)
    counted = np.empty(K, np.int64)
    lost = np.empty(K, np.int64)
    for b in nb.prange(K):
        sc = scalars[b]
        lam = np.empty((m, n), bulk.dtype)
        for i in range(m):
            for j in range(n):
                lam[i, j] = sc[7] * bulk[i, j]
        for i in range(r):
            lam[i, i] = -sc[6]
        W = np.empty((m, n), bulk.dtype)
        st, tt, ll, dd, cc, lo = _one_run(opt, variant2, nesterov, crit, W, w_star, lam,
                                          row_mult, r, sc, seeds[b], max_steps[b], noise_on,
                                          stride, traces[b], tmarks[b])
        status[b] = st
        stop[b] = tt
        loss[b] = ll
        dist[b] = dd
        counted[b] = cc
        lost[b] = lo
    return status, stop, loss, dist, counted, lost


def compiled(dtype) -> bool:
    """Whether ``run_block`` already has a compiled (or disk-cached and loaded) version for
    float arrays of ``dtype``."""
    want = np.dtype(dtype).name
    return any(want in str(sig) for sig in run_block.signatures)
