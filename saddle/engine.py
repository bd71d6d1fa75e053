"""The batched simulation engine.

One compiled program per *structure* (shape, escape rank, basis kind, optimizer structure,
noise kind, escape criterion, dtype, batch size). Everything else is data: the per-run
scalars (learning rate, momentum, gamma, sigma, radius, ...), the seeds and the step budget
are traced arrays, so a new seed, a new learning rate or a new ``max_steps`` never
recompiles. Runs in a batch are ``vmap``-ed; the loop is one ``lax.while_loop`` that stops
as soon as every run in the batch has escaped or diverged, or the budget is spent. Stopped
runs are frozen by masking.

Bit-for-bit reproducibility: XLA on the CPU chooses GEMM tilings and reduction
vectorizations from the whole array shape, batch dimension included, so the same run can
round differently in a batch of 1 and a batch of 5. The engine therefore compiles one
*block* of K runs, K = :func:`block_size` (a function of the structure alone), pads every
batch to whole blocks and runs block after block. A run's result depends only on its config
and seed, never on the batch it shares or its position in it.

Timing convention: iteration i evaluates f, its gradient and the escape coordinates at
W_i (the iterate after i optimizer steps), checks the criteria for i >= 1, and, if the run
goes on and i < max_steps, takes step i + 1 with fresh noise. So the escape time is the
first t >= 1 whose iterate W_t meets the criterion, and each gradient is computed once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import optimizers as optim
from . import prng
from .config import Config
from .landscapes import SpectralSaddle, landscape_arrays
from .noise import NoiseModel, generator, kronecker_row_scales
from .numerics import dtype_of, x64_enabled
from .reduce import tree_sum

__all__ = [
    "Structure",
    "RUNNING",
    "ESCAPED",
    "DIVERGED",
    "CENSORED",
    "BatchOutput",
    "structure_of",
    "scalars_of",
    "run_batch",
    "make_optimizer",
    "run_keys",
    "block_size",
    "SIGNAL_LOST_FRACTION",
    "compile_count",
    "TRACE_FIELDS",
]

RUNNING, ESCAPED, DIVERGED, CENSORED = 0, 1, 2, 3

# A run whose escape-direction updates were lost to rounding (W + U moved the first escape
# coordinate by less than half, or more than 1.5x, of the update's own component) in at
# least this fraction of its steps is flagged ``signal_lost``: in float32 the iterate's
# entries can be so large next to the update that the escape signal never reaches W.
SIGNAL_LOST_FRACTION = 0.5

# Per-run scalars: these may differ between the runs of one compiled batch.
SCALAR_FIELDS = (
    "learning_rate",
    "b1",
    "b2",
    "eps",
    "weight_decay",
    "momentum",
    "gamma",
    "bulk_scale",
    "quartic",
    "sigma",
    "noise_df",
    "init_scale",
    "init_escape",
    "radius",
    "loss_drop",
    "max_loss",
)


@dataclass(frozen=True)
class Structure:
    """What the compiled program depends on. Two configs with equal structures share it."""

    m: int
    n: int
    escape_rank: int
    coherent: bool
    optimizer: str
    nesterov: bool | None
    ns_steps: int | None
    orthogonalizer: str | None
    scaling: str | None
    variant: str | None
    noise: str
    noise_rank: int
    escape: str
    dtype: str
    rng: str
    backend: str  # resolved: "jax" or "numba"


def resolve_backend(config: Config) -> str:
    """The engine a config runs on. ``auto`` picks numba where the kernels run the structure
    and the benchmark found them faster (element-wise optimizers on the CPU), else JAX."""
    from .config import _numba_unsupported

    if config.backend != "auto":
        return config.backend
    if _numba_unsupported(config.to_dict()) is None and jax.default_backend() == "cpu":
        return "numba"
    return "jax"


def structure_of(config: Config) -> Structure:
    return Structure(
        m=config.m,
        n=config.n,
        escape_rank=config.escape_rank,
        coherent=config.basis == "coherent",
        optimizer=config.optimizer,
        nesterov=config.nesterov,
        ns_steps=config.ns_steps,
        orthogonalizer=config.orthogonalizer,
        scaling=config.scaling,
        variant=config.variant,
        noise=config.noise,
        noise_rank=config.noise_rank or 1,
        escape=config.escape,
        dtype=config.dtype,
        rng=config.rng,
        backend=resolve_backend(config),
    )


# Elements (runs x m x n) per block: big enough to amortize per-op overhead on a CPU for
# small shapes, and one run per block for large ones, where each op is already large.
_BLOCK_ELEMENTS = 1 << 16
_MAX_BLOCK = 32


def block_size(structure: Structure) -> int:
    """Runs per compiled block: a power of two that depends on the structure alone."""
    per_run = structure.m * structure.n
    k = 1
    while k < _MAX_BLOCK and 2 * k * per_run <= _BLOCK_ELEMENTS:
        k *= 2
    return k


def scalars_of(config: Config) -> dict[str, float]:
    """The per-run scalars of a config; fields that do not apply become harmless zeros."""
    out = {}
    for k in SCALAR_FIELDS:
        v = getattr(config, k)
        out[k] = 0.0 if v is None else float(v)
    if config.init == "saddle":
        out["init_scale"] = 0.0
    return out


def shared_arrays_key(config: Config) -> tuple:
    """The config fields the shared landscape arrays depend on."""
    return (
        config.m,
        config.n,
        config.escape_rank,
        config.bulk,
        config.bulk_ratio,
        config.bulk_tail,
        config.basis,
        config.mixing,
        config.saddle_point,
        config.saddle_point_scale,
        config.landscape_seed,
        config.noise_zipf if config.noise == "kronecker" else None,
        config.dtype,
    )


_SHARED_CACHE: dict[tuple, dict[str, Any]] = {}
_SHARED_CACHE_SIZE = 2  # landscapes kept; each holds O(mn + m^2 + n^2) numbers


def shared_arrays(config: Config) -> dict[str, Any]:
    """Arrays shared by every run of a batch: unit bulk, bases, W*, noise row scales.

    The last few landscapes are cached per process (keyed by :func:`shared_arrays_key` and
    the default device): a sweep at D = 1.7e7 spent about 1 s per batch rebuilding the same
    16.8M-entry landscape, as long as the GPU's compute for the batch.
    """
    key = (shared_arrays_key(config), str(jax.config.jax_default_device))
    hit = _SHARED_CACHE.pop(key, None)
    if hit is None:
        hit = _build_shared_arrays(config)
    _SHARED_CACHE[key] = hit  # most recent last
    while len(_SHARED_CACHE) > _SHARED_CACHE_SIZE:
        _SHARED_CACHE.pop(next(iter(_SHARED_CACHE)))
    return hit


def _build_shared_arrays(config: Config) -> dict[str, Any]:
    dtype = dtype_of(config.dtype)
    arrs = landscape_arrays(config)
    out = {k: (None if v is None else jnp.asarray(v, dtype)) for k, v in arrs.items()}
    out["row_scales"] = (
        jnp.asarray(kronecker_row_scales(config.m, config.noise_zipf), dtype)
        if config.noise == "kronecker"
        else None
    )
    return out


def make_optimizer(structure: Structure, s: dict[str, jax.Array]):
    """The optimizer of a structure, closing over (possibly traced) scalars ``s``."""
    name = structure.optimizer
    lr, wd = s["learning_rate"], s["weight_decay"]
    if name == "adamw":
        return optim.adamw(lr, b1=s["b1"], b2=s["b2"], eps=s["eps"], weight_decay=wd)
    if name == "muon":
        return optim.muon(
            lr,
            momentum=s["momentum"],
            nesterov=structure.nesterov,
            ns_steps=structure.ns_steps,
            orthogonalizer=structure.orthogonalizer,
            scaling=structure.scaling,
            eps=s["eps"],
            weight_decay=wd,
        )
    if name == "mano":
        return optim.mano(
            lr,
            momentum=s["momentum"],
            variant=structure.variant,
            nesterov=structure.nesterov,
            eps=s["eps"],
            weight_decay=wd,
        )
    if name == "sgd":
        return optim.sgd(lr, momentum=s["momentum"], nesterov=structure.nesterov, weight_decay=wd)
    if name == "sign_descent":
        return optim.sign_descent(lr, momentum=s["momentum"], weight_decay=wd)
    if name == "normalized_gd":
        return optim.normalized_gd(lr, momentum=s["momentum"], eps=s["eps"], weight_decay=wd)
    raise ValueError(f"optimizer: got {name!r}")


def run_keys(seeds: jax.Array, rng: str = "pcg3d") -> tuple[jax.Array, jax.Array]:
    """Per-run (init key, noise key), derived from the seed alone.

    A run's randomness depends only on its seed, never on its position in a batch or the
    batch size. ``pcg3d``: 32-bit keys hashed from (seed, stream). ``threefry``: the two
    halves of ``split(key(seed))``. Step t's noise is a function of (noise key, t).
    """
    if rng == "pcg3d":
        return prng.run_key(seeds, prng.STREAM_INIT), prng.run_key(seeds, prng.STREAM_NOISE)

    def one(seed):
        k_init, k_noise = jax.random.split(jax.random.key(seed))
        return k_init, k_noise

    return jax.vmap(one)(seeds)


class BatchOutput(NamedTuple):
    status: np.ndarray  # (B,) ESCAPED, DIVERGED or CENSORED
    stop_step: np.ndarray  # (B,) escape time, divergence step, or max_steps if censored
    final_loss: np.ndarray  # (B,) f at the last iterate evaluated
    final_distance: np.ndarray  # (B,) ||Pi_esc(W - W*)||_F at the last iterate
    wall_s: float  # execution time of the batch, compile excluded
    compile_s: float  # time to lower and compile (0 when cached)
    traces: list | None = None  # per run: {field: array over recorded steps}, if asked for
    # per run: the fraction of steps whose escape-direction update was lost to rounding (see
    # SIGNAL_LOST_FRACTION); None only from callers that build outputs by hand
    lost_fraction: np.ndarray | None = None


def _landscape(structure: Structure, shared, s) -> SpectralSaddle:
    return SpectralSaddle(
        bulk=shared["bulk"],
        bulk_scale=s["bulk_scale"],
        gamma=s["gamma"],
        quartic=s["quartic"],
        P=None if structure.coherent else shared["P"],
        Q=None if structure.coherent else shared["Q"],
        w_star=shared["w_star"],
        escape_rank=structure.escape_rank,
    )


def _noise(structure: Structure, shared, s) -> NoiseModel:
    return NoiseModel(
        sigma=s["sigma"],
        df=s["noise_df"],
        row_scales=shared["row_scales"],
        kind=structure.noise,
        rank=structure.noise_rank,
    )


TRACE_FIELDS = (
    "escape_distance",
    "orthogonal_drift",
    "loss",
    "update_fro",
    "update_spectral",
    "escape_alignment",
    "momentum_signal",
    "momentum_noise",
)
_EXACT_SPECTRAL = 256  # exact SVD for min(m, n) up to this; power iteration above


def _spectral_norm(A: jax.Array) -> jax.Array:
    """||A||_2: exact (SVD) for small matrices, 40 power iterations from a fixed start above
    (a deterministic lower estimate, used only for diagnostics)."""
    if min(A.shape) <= _EXACT_SPECTRAL:
        return jnp.linalg.svd(A, compute_uv=False)[0]
    v = jnp.ones((A.shape[1],), A.dtype) / np.sqrt(A.shape[1])

    def it(_, v):
        w = A.T @ (A @ v)
        return w / jnp.maximum(jnp.sqrt(tree_sum(w * w)), jnp.finfo(A.dtype).tiny)

    v = jax.lax.fori_loop(0, 40, it, v)
    Av = A @ v
    return jnp.sqrt(tree_sum(Av * Av))


def _trace_row(L: SpectralSaddle, W, W_new, mu, a, f):
    """The diagnostics of iterate W_t (see TRACE_FIELDS), one vector per run."""
    X = W - L.w_star
    dist2 = tree_sum(a * a)
    drift = jnp.sqrt(jnp.maximum(tree_sum(X * X) - dist2, 0))
    E0 = L.escape_direction(0)
    sgn = jnp.where(a[0] < 0, -1.0, 1.0).astype(W.dtype)
    delta = W_new - W
    dfro = jnp.sqrt(tree_sum(delta * delta))
    dspec = _spectral_norm(delta)
    along = tree_sum(delta * E0) * sgn
    align = jnp.where(dspec > 0, along / jnp.where(dspec > 0, dspec, 1), jnp.nan)
    moved = dfro > 0
    nan = jnp.asarray(jnp.nan, W.dtype)
    if mu is None:
        sig = noise = nan
    else:
        proj = tree_sum(mu * E0)
        sig = jnp.abs(proj)
        noise = _spectral_norm(mu - proj * E0)
    row = jnp.stack(
        [
            jnp.sqrt(dist2),
            drift,
            f,
            jnp.where(moved, dfro, nan),
            jnp.where(moved, dspec, nan),
            jnp.where(moved, align, nan),
            sig,
            noise,
        ]
    ).astype(W.dtype)
    return jnp.concatenate([a.astype(W.dtype), row])


class _Carry(NamedTuple):
    i: jax.Array
    W: jax.Array
    opt_state: Any
    status: jax.Array
    stop: jax.Array
    loss: jax.Array
    dist: jax.Array
    counted: jax.Array  # steps whose update had a non-zero escape component
    lost: jax.Array  # ... of which rounding W + U changed that component by more than half


def _rounding_lost(intended, realized):
    """Whether adding an update moved the first escape coordinate by less than half, or more
    than one and a half times, what the update itself says (rounding of W + U at work)."""
    return (intended != 0) & (jnp.abs(realized - intended) > 0.5 * jnp.abs(intended))


def _programs(structure: Structure, stride: int, points: int):
    """(init, advance): the un-jitted batched run, split so that it can stop at chunk ends.

    ``advance(shared, scalars, seeds, max_steps, carry, until)`` iterates while some run is
    running and i < until; with ``stride`` > 0 it also returns the trace rows of the
    iterates t = i with t % stride == 0 in this chunk, ``points`` slots per run.
    """
    dtype = dtype_of(structure.dtype)
    shape = (structure.m, structure.n)
    width = structure.escape_rank + len(TRACE_FIELDS)

    def init_one(shared, s, k_init):
        L = _landscape(structure, shared, s)
        E0 = L.escape_direction(0)
        Z = generator(structure.rng, k_init, 0).normal(shape, dtype)
        W = L.w_star + s["init_scale"] * Z + s["init_escape"] * E0
        opt = make_optimizer(structure, s)
        return W, opt.init(W)

    def evaluate_one(shared, s, W):
        L = _landscape(structure, shared, s)
        f, g, a = L.value_and_grad_with_coordinates(W)
        return f, g, a

    def step_one(shared, s, k_noise, t, W, g, opt_state):
        Xi = _noise(structure, shared, s).sample(generator(structure.rng, k_noise, t), shape, dtype)
        opt = make_optimizer(structure, s)
        updates, opt_state = opt.update(g + Xi, opt_state, W)
        W_new = W + updates
        # Signal-loss check: the update's own escape component against the change that
        # survived rounding in W + U (W_new - W is exact: Sterbenz).
        L = _landscape(structure, shared, s)
        intended = L.direction_coordinates(updates)[0]
        realized = L.direction_coordinates(W_new - W)[0]
        return W_new, opt_state, intended, realized

    def trace_one(shared, s, W, W_new, mu, a, f):
        return _trace_row(_landscape(structure, shared, s), W, W_new, mu, a, f)

    def cast(scalars):
        return {k: v.astype(dtype) for k, v in scalars.items()}

    def init(shared, scalars, seeds, max_steps):
        s = cast(scalars)
        k_init, _ = run_keys(seeds, structure.rng)
        B = seeds.shape[0]
        W, opt_state = jax.vmap(init_one, in_axes=(None, 0, 0))(shared, s, k_init)
        zeros = jnp.zeros((B,), dtype)
        izeros = jnp.zeros((B,), jnp.int32)
        return _Carry(jnp.asarray(0, jnp.int32), W, opt_state, izeros, max_steps, zeros, zeros,
                      izeros, izeros)

    def advance(shared, scalars, seeds, max_steps, carry, until):
        s = cast(scalars)
        _, k_noise = run_keys(seeds, structure.rng)
        B = seeds.shape[0]
        start = carry.i
        buf = jnp.full((B, points, width), jnp.nan, dtype) if stride else None
        tmark = jnp.full((B, points), -1, jnp.int32) if stride else None

        def cond(state):
            c = state[0]
            return jnp.any(c.status == RUNNING) & (c.i < until)

        def body(state):
            c, buf, tmark = state
            i = c.i
            running = c.status == RUNNING
            f, g, a = jax.vmap(evaluate_one, in_axes=(None, 0, 0))(shared, s, c.W)
            d = jnp.sqrt(tree_sum(a * a, axis=1))
            diverged = ~jnp.isfinite(f) | (f > s["max_loss"])
            if structure.escape == "projection":
                met = d >= s["radius"]
            else:
                met = f <= -s["loss_drop"]
            escaped = met & (i >= 1) & ~diverged
            outcome = jnp.where(
                diverged,
                DIVERGED,
                jnp.where(escaped, ESCAPED, jnp.where(i >= max_steps, CENSORED, RUNNING)),
            )
            new_status = jnp.where(running, outcome, c.status)
            stop = jnp.where(running & (new_status != RUNNING), i, c.stop)
            loss = jnp.where(running, f, c.loss)
            dist = jnp.where(running, d, c.dist)
            go_on = new_status == RUNNING
            W_new, opt_new, intended, realized = jax.vmap(
                step_one, in_axes=(None, 0, 0, None, 0, 0, 0)
            )(shared, s, k_noise, i, c.W, g, c.opt_state)
            counted = c.counted + (go_on & (intended != 0)).astype(jnp.int32)
            lost = c.lost + (go_on & _rounding_lost(intended, realized)).astype(jnp.int32)

            def keep(new, old):
                mask = go_on.reshape(go_on.shape + (1,) * (new.ndim - 1))
                return jnp.where(mask, new, old)

            W = keep(W_new, c.W)
            opt_state = jax.tree.map(keep, opt_new, c.opt_state)
            if stride:
                def record(bufs):
                    buf, tmark = bufs
                    mu = getattr(opt_state, "mu", None)
                    rows = jax.vmap(trace_one, in_axes=(None, 0, 0, 0, 0, 0, 0))(
                        shared, s, c.W, W, mu, a, f
                    )
                    p = (i - start) // stride
                    buf = buf.at[:, p].set(jnp.where(running[:, None], rows, jnp.nan))
                    tmark = tmark.at[:, p].set(jnp.where(running, i, -1))
                    return buf, tmark

                buf, tmark = jax.lax.cond(i % stride == 0, record, lambda b: b, (buf, tmark))
            c = _Carry(i + 1, W, opt_state, new_status, stop, loss, dist, counted, lost)
            return c, buf, tmark

        carry, buf, tmark = jax.lax.while_loop(cond, body, (carry, buf, tmark))
        return carry, buf, tmark

    return init, advance


_TRACE_POINTS = 128  # trace rows per run held on the device per chunk


def run_batch(
    configs: list[Config],
    seeds: list[int],
    *,
    shared: dict | None = None,
    on_block=None,
    trace_stride: int | None = None,
    trace_sink=None,
) -> BatchOutput:
    """Run one batch: run b uses ``configs[b]`` and ``seeds[b]``.

    All configs must share one :class:`Structure` and the same shared arrays (landscape
    bases, bulk pattern, W*); they may differ in every per-run scalar and in ``max_steps``.
    ``on_block(runs_done)`` is called after each block finishes (for progress bars).

    With ``trace_stride = k``, the diagnostics of every k-th iterate (``t``,
    ``escape_coordinates`` and :data:`TRACE_FIELDS`) are streamed: the device holds one chunk
    of ``k * 128`` steps, and ``trace_sink(b, rows)`` receives each chunk's rows of run b as
    they come. Without a sink the rows are collected into ``BatchOutput.traces``. Tracing
    never changes a run's result.
    """
    if len(configs) != len(seeds) or not configs:
        raise ValueError("run_batch: configs and seeds must be non-empty and equally long")
    structure = structure_of(configs[0])
    key0 = shared_arrays_key(configs[0])
    for c in configs[1:]:
        if structure_of(c) != structure or shared_arrays_key(c) != key0:
            raise ValueError("run_batch: configs differ in more than per-run scalars")
    if shared is None:
        shared = shared_arrays(configs[0])
    if trace_stride is not None and trace_stride < 1:
        raise ValueError(f"trace_stride: got {trace_stride}; allowed: an integer >= 1")
    if structure.backend == "numba":
        return _run_numba(structure, configs, seeds, shared, on_block, trace_stride, trace_sink)
    dtype = dtype_of(structure.dtype)
    K = block_size(structure)
    B = len(configs)
    padded = -(-B // K) * K
    # Padding runs repeat the last run; their results are dropped.
    idx = list(range(B)) + [B - 1] * (padded - B)
    table = [scalars_of(configs[i]) for i in idx]
    scalars = {k: np.array([row[k] for row in table]) for k in SCALAR_FIELDS}
    seed_arr = np.asarray([seeds[i] for i in idx], dtype=np.uint32)
    budgets = np.array([configs[i].max_steps for i in idx], dtype=np.int32)

    def block(j):
        sl = slice(j * K, (j + 1) * K)
        return (
            {k: jnp.asarray(v[sl], dtype) for k, v in scalars.items()},
            jnp.asarray(seed_arr[sl]),
            jnp.asarray(budgets[sl]),
        )

    stride = int(trace_stride or 0)
    points = _TRACE_POINTS if stride else 0
    chunk = stride * points if stride else None
    sink = trace_sink
    collected: dict[int, list] = {}
    if stride and sink is None:
        sink = lambda b, rows: collected.setdefault(b, []).append(rows)
    t0 = time.perf_counter()
    init_fn, advance_fn = _compiled(structure, stride, points, shared, *block(0))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outs = []
    for j in range(padded // K):
        args = block(j)
        carry = init_fn(shared, *args)
        budget = int(np.max(np.asarray(args[2])))
        while True:
            until = budget + 1 if chunk is None else int(carry.i) + chunk
            carry, buf, tmark = advance_fn(shared, *args, carry, jnp.asarray(until, jnp.int32))
            if stride:
                buf, tmark = np.asarray(buf), np.asarray(tmark)
                for k in range(K):
                    b = j * K + k
                    if b >= B:
                        break
                    ok = tmark[k] >= 0
                    if ok.any():
                        sink(b, _rows_to_trace(tmark[k][ok], buf[k][ok], structure.escape_rank))
            if not bool(jnp.any(carry.status == RUNNING)):
                break
        outs.append(jax.block_until_ready(
            (carry.status, carry.stop, carry.loss, carry.dist, carry.counted, carry.lost)))
        if on_block is not None:
            on_block(min((j + 1) * K, B))
    wall = time.perf_counter() - t0
    status, stop, loss, dist, counted, lost = (
        np.concatenate([np.asarray(o[i]) for o in outs])[:B] for i in range(6)
    )
    traces = None
    if stride and trace_sink is None:
        traces = [_concat_traces(collected.get(b, []), structure.escape_rank) for b in range(B)]
    return BatchOutput(status, stop, loss, dist, wall, compile_s, traces,
                       _lost_fraction(counted, lost))


def _lost_fraction(counted, lost) -> np.ndarray:
    counted = np.asarray(counted, np.float64)
    return np.where(counted > 0, np.asarray(lost, np.float64) / np.maximum(counted, 1), 0.0)


def _rows_to_trace(t: np.ndarray, rows: np.ndarray, r: int) -> dict[str, np.ndarray]:
    out = {"t": t.astype(np.int64), "escape_coordinates": rows[:, :r]}
    for k, name in enumerate(TRACE_FIELDS):
        out[name] = rows[:, r + k]
    return out


def _concat_traces(parts: list[dict], r: int) -> dict[str, np.ndarray]:
    if not parts:
        empty = {"t": np.zeros(0, np.int64), "escape_coordinates": np.zeros((0, r))}
        empty.update({name: np.zeros(0) for name in TRACE_FIELDS})
        return empty
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


_NUMBA_CHUNK = 8  # runs per kernel call: progress granularity; results do not depend on it


def _run_numba(
    structure: Structure, configs, seeds, shared, on_block, trace_stride=None, trace_sink=None
) -> BatchOutput:
    from .kernels import elementwise as ew

    npdt = np.float64 if structure.dtype == "float64" else np.float32
    m, n = structure.m, structure.n
    bulk = np.asarray(shared["bulk"], npdt)
    w_star = np.asarray(shared["w_star"], npdt)
    if structure.noise == "kronecker":
        row_mult = np.asarray(shared["row_scales"], npdt)
    else:
        row_mult = np.ones(m, npdt)
    rows = []
    for c in configs:
        sc = scalars_of(c)
        sc["noise_scale"] = sc["sigma"] / (np.sqrt(m) + np.sqrt(n)) if c.noise == "opnorm" else sc[
            "sigma"
        ]
        rows.append([sc[k] for k in ew.SCALARS])
    table = np.asarray(rows, np.float64)
    seed_arr = np.asarray(seeds, np.uint64)
    budgets = np.asarray([c.max_steps for c in configs], np.int64)
    args = (
        ew.OPT_CODES[structure.optimizer],
        structure.variant == "v2",
        bool(structure.nesterov),
        0 if structure.escape == "projection" else 1,
        bulk,
        w_star,
        row_mult,
        structure.escape_rank,
    )
    noise_on = structure.noise != "none"
    B = len(configs)
    stride = int(trace_stride or 0)
    width = structure.escape_rank + len(TRACE_FIELDS)
    points = int(budgets.max()) // stride + 1 if stride else 1
    compile_s = 0.0
    if not ew.compiled(npdt):
        t0 = time.perf_counter()
        ew.run_block(*args, table[:1], seed_arr[:1], np.zeros(1, np.int64), noise_on, 0,
                     np.zeros((1, 1, width)), np.zeros((1, 1), np.int64))
        compile_s = time.perf_counter() - t0
    outs = []
    traces = [] if stride and trace_sink is None else None
    t0 = time.perf_counter()
    for start in range(0, B, _NUMBA_CHUNK):
        sl = slice(start, start + _NUMBA_CHUNK)
        k = len(table[sl])
        tr = np.full((k, points, width), np.nan)
        tm = np.full((k, points), -1, np.int64)
        outs.append(ew.run_block(*args, table[sl], seed_arr[sl], budgets[sl], noise_on, stride,
                                 tr, tm))
        if stride:
            for q in range(k):
                ok = tm[q] >= 0
                rows = _rows_to_trace(tm[q][ok], tr[q][ok], structure.escape_rank)
                if trace_sink is not None:
                    trace_sink(start + q, rows)
                else:
                    traces.append(rows)
        if on_block is not None:
            on_block(min(start + _NUMBA_CHUNK, B))
    wall = time.perf_counter() - t0
    status, stop, loss, dist, counted, lost = (
        np.concatenate([o[i] for o in outs]) for i in range(6))
    return BatchOutput(
        status.astype(np.int32), stop.astype(np.int32), loss, dist, wall, compile_s, traces,
        _lost_fraction(counted, lost),
    )


_COMPILED: dict[Any, Any] = {}


def _signature(tree) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((x.shape, str(x.dtype)) for x in leaves)


def _compiled(structure: Structure, stride: int, points: int, shared, *block_args):
    """The compiled (init, advance) pair for a structure, trace layout and argument shapes,
    built once and cached. Values never enter the key: new seeds, scalars, budgets or chunk
    ends reuse the executables."""
    # x64 is part of the key: it sets the precision of the float32 polar factor's Gram matrix.
    key = (structure, stride, points, _signature((shared, block_args)), x64_enabled())
    hit = _COMPILED.get(key)
    if hit is None:
        init, advance = _programs(structure, stride, points)
        init_c = jax.jit(init).lower(shared, *block_args).compile()
        carry = jax.eval_shape(init, shared, *block_args)
        until = jax.ShapeDtypeStruct((), jnp.int32)
        # Donating the carry lets XLA update the iterate in place; the CPU backend cannot.
        donate = (4,) if jax.default_backend() != "cpu" else ()
        adv_c = jax.jit(advance, donate_argnums=donate).lower(
            shared, *block_args, carry, until
        ).compile()
        hit = _COMPILED[key] = (init_c, adv_c)
    return hit


def compile_count() -> int:
    """How many programs the engine has compiled in this process (for tests and benchmarks)."""
    return len(_COMPILED)
