"""Section G: the GPU benchmarks (run where ``jax.default_backend() == "gpu"``).

G1. The Muon step at n in {1024, 2048, 4096}, median of 20 steps, measured side by side:
    - float32 at JAX's default matmul precision (TF32 on Ampere and later), ours against
      ``optax.contrib.muon`` (same algebra: EMA momentum, Nesterov, Keller scaling);
    - bf16 Newton-Schulz (``muon(ns_dtype=jnp.bfloat16)``) against ``torch.optim.Muon``,
      which always orthogonalizes in bf16 (skipped when torch with CUDA is absent);
    - both against the matmul floor: Newton-Schulz FLOPs / the measured matmul rate at that
      shape and precision.
    Each row also gives the relative difference of our update from the peer's.
G2. AdamW and Mano updates at n = 4096 against the device's copy bandwidth.
G3. Engine steps/s for one run of every optimizer at n = 4096 (the D = 1.7e7 sweep itself is
    ``saddle sweep benchmarks/gpu_sweep.toml``; see ``benchmarks/gpu_run.sh``).
G4. Newton-Schulz alone at n = 4096: ours, a polynomial form X <- (a I + A (b I + c A)) X,
    and torch's bf16 iteration.
"""

from __future__ import annotations

import statistics

import jax
import jax.numpy as jnp
import numpy as np

from saddle import Config, engine

from .common import BANDWIDTH_COLUMNS, bandwidth_cells, median_time, ms, num, section_table

GPU_SIZES = (1024, 2048, 4096)
STEPS = 20


def _ns_flops(n: int, steps: int = 5) -> float:
    return steps * 6.0 * n**3  # square: 4 n^3 (two products with X) + 2 n^3 (A @ A)


def _median_s(fn, repeats: int = STEPS, warmup: int = 3) -> float:
    return median_time(fn, repeats, warmup)


def _matmul_rate(n: int, dtype, chain: int = 10) -> float:
    """FLOP/s of ``a @ b`` at n x n: a chain of ``chain`` dependent products in one call, so
    that the host's dispatch (tens of microseconds, a third of a 4096 bf16 product) does not
    count against the GPU. A single timed ``a @ b`` understated the rate by up to 2x."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    b = (jax.random.normal(jax.random.key(1), (n, n), jnp.float32) / np.sqrt(n)).astype(dtype)

    def body(_, x):
        return x @ b

    f = jax.jit(lambda a: jax.lax.fori_loop(0, chain, body, a))
    return chain * 2 * n**3 / _median_s(lambda: f(a), repeats=10)


def _jax_update(opt, n: int):
    """(median step s, first-step update as float64 NumPy) of an optax-style optimizer."""
    W = jax.random.normal(jax.random.key(1), (n, n), jnp.float32) * 0.1
    G = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
    state = opt.init(W)
    f = jax.jit(opt.update)
    t = _median_s(lambda: f(G, state, W)[0])
    return t, np.asarray(f(G, state, W)[0], np.float64)


def _torch_median_s(fn, repeats: int = STEPS, warmup: int = 3) -> float:
    """Median of ``repeats`` calls of ``fn``, each timed with CUDA events."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def _torch_muon(n: int, lr: float):
    """(median step s, first-step update) of torch.optim.Muon on the same W and G."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch has no CUDA device")
    W0 = np.array(jax.random.normal(jax.random.key(1), (n, n), jnp.float32) * 0.1)
    G = torch.as_tensor(np.array(jax.random.normal(jax.random.key(2), (n, n), jnp.float32)),
                        device="cuda")
    p = torch.nn.Parameter(torch.as_tensor(W0, device="cuda").clone())
    opt = torch.optim.Muon([p], lr=lr, weight_decay=0.0)

    def step():
        p.grad = G
        opt.step()

    # The first step from zero momentum, for the update comparison.
    before = p.detach().clone()
    step()
    update = (p.detach() - before).double().cpu().numpy()
    return _torch_median_s(step), update


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def bench_gpu_muon(sizes=GPU_SIZES) -> list[dict]:
    import optax

    from saddle.optimizers import muon

    rows = []
    lr = 0.02
    precisions = (("float32", None, "optax.contrib.muon"),
                  ("bf16", jnp.bfloat16, "torch.optim.Muon"))
    for n in sizes:
        ref32, u_ref32 = _jax_update(optax.contrib.muon(lr), n)
        try:
            t_torch, u_torch = _torch_muon(n, lr)
            __import__("torch").cuda.empty_cache()
            torch_err = None
        except Exception as e:  # torch absent or without CUDA: the row says so
            t_torch, u_torch = None, None
            torch_err = f"unavailable: {type(e).__name__}: {e}"[:100]
        u32 = None
        for precision, ns_dtype, peer in precisions:
            rate = _matmul_rate(n, ns_dtype or jnp.float32)
            peer_t, peer_u = (ref32, u_ref32) if ns_dtype is None else (t_torch, u_torch)
            t, u = _jax_update(muon(lr, ns_dtype=ns_dtype), n)
            u32 = u if ns_dtype is None else u32
            rows.append(dict(
                section="G1", n=n, precision=precision, step_s=t,
                peer=peer if peer_t is not None or ns_dtype is None else f"{peer} {torch_err}",
                peer_step_s=peer_t, ratio_to_peer=None if peer_t is None else t / peer_t,
                rel_diff_to_peer=None if peer_u is None else _rel(u, peer_u),
                rel_diff_to_float32=_rel(u, u32), matmul_tflops=rate / 1e12,
                floor_s=_ns_flops(n) / rate, ratio_to_floor=t * rate / _ns_flops(n)))
    return rows


def _ns_polynomial_form(X, steps=5, coeffs=None):
    """Newton-Schulz written as X <- P X with P = a I + A (b I + c A): the same 6 n^3 FLOPs
    as the optax form, with one element-wise pass per step (measured here, not used)."""
    from saddle.optimizers import NS_COEFFS

    a, b, c = coeffs or NS_COEFFS
    n = X.shape[0]
    eye = jnp.eye(n, dtype=X.dtype)
    X = (X.astype(jnp.float32) / (jnp.linalg.norm(X.astype(jnp.float32)) + 1e-7)).astype(X.dtype)
    for _ in range(steps):
        A = X @ X.T
        P = A @ (c * A + b * eye) + a * eye
        X = P @ X
    return X


def bench_gpu_ns_forms(n: int = 4096) -> list[dict]:
    """Newton-Schulz alone at n: ours and the polynomial form in float32 and bf16, and
    torch's iteration (bf16 whatever its input, so timed once)."""
    from saddle.optimizers import newton_schulz

    rows = []
    for precision, dtype in (("float32", jnp.float32), ("bf16", jnp.bfloat16)):
        X = jax.random.normal(jax.random.key(3), (n, n), jnp.float32).astype(dtype)
        rate = _matmul_rate(n, dtype)
        for name, f in (("ours", jax.jit(newton_schulz)),
                        ("polynomial", jax.jit(_ns_polynomial_form))):
            t = _median_s(lambda f=f, X=X: f(X))
            rows.append(dict(section="G4", n=n, precision=precision, form=name, ns_s=t,
                             ratio_to_floor=t * rate / _ns_flops(n)))
    try:
        import torch
        from torch.optim._muon import _zeropower_via_newtonschulz as tns

        G = torch.randn(n, n, device="cuda", dtype=torch.float32)
        t = _torch_median_s(lambda: tns(G, (3.4445, -4.775, 2.0315), 5, 1e-7))
        rows.append(dict(section="G4", n=n, precision="bf16", form="torch", ns_s=t,
                         ratio_to_floor=None))
    except Exception as e:  # torch absent, without CUDA, or its private helper moved
        rows.append(dict(section="G4", n=n, precision="bf16",
                         form=f"torch: {type(e).__name__}: {e}"[:80], ns_s=None,
                         ratio_to_floor=None))
    return rows


def _copy_bandwidth(n_bytes: int = 1 << 30) -> float:
    x = jnp.ones(n_bytes // 4, jnp.float32)
    f = jax.jit(lambda x: x * jnp.float32(0.999) + jnp.float32(1e-3))
    return 2 * n_bytes / _median_s(lambda: f(x))


def bench_gpu_bandwidth(n: int = 4096) -> list[dict]:
    from saddle.optimizers import adamw, mano

    bw = _copy_bandwidth()
    rows = []
    for name, opt, arrays in (("adamw", adamw(1e-3), 2 + 2 + 3), ("mano", mano(1e-3), 2 + 1 + 2)):
        t, _ = _jax_update(opt, n)
        floor = arrays * n * n * 4 / bw
        rows.append(dict(section="G2", optimizer=name, n=n, step_s=t, floor_s=floor,
                         ratio_to_floor=t / floor, copy_gb_per_s=bw / 1e9))
    return rows


def bench_gpu_engine(n: int = 4096, steps: int = 200) -> list[dict]:
    rows = []
    for opt in ("adamw", "muon", "mano", "sgd", "sign_descent", "normalized_gd"):
        c = Config.from_dict(optimizer=opt, m=n, n=n, basis="coherent", gamma=0.0, radius=1e9,
                             max_steps=steps)
        first = engine.run_batch([c], [0])
        out = engine.run_batch([c], [1])
        rows.append(dict(section="G3", optimizer=opt, n=n, backend=engine.structure_of(c).backend,
                         steps_per_s=steps / out.wall_s, compile_s=first.compile_s))
    return rows


def bench_gpu(quick: bool = False) -> list[dict]:
    if jax.default_backend() != "gpu":
        print("section G skipped: JAX sees no GPU")
        return []
    n = 1024 if quick else 4096
    return (bench_gpu_muon((1024,) if quick else GPU_SIZES) + bench_gpu_bandwidth(n)
            + bench_gpu_engine(n, 50 if quick else 200) + bench_gpu_ns_forms(n))


def print_gpu_table(rows: list[dict], console, kind: str | None = None) -> None:
    kind = kind or jax.devices()[0].device_kind
    section_table(
        console, rows, "G1",
        f"G1. Muon step on {kind}, median of {STEPS} (target: <= 1.0x the peer)",
        ("n", "precision", "step ms", "peer", "peer ms", "x peer", "rel diff",
         "matmul TFLOP/s", "floor ms", "x floor"),
        lambda r: [str(r["n"]), r["precision"], ms(r["step_s"]), r["peer"],
                   ms(r["peer_step_s"]), num(r["ratio_to_peer"], ".2f"),
                   num(r["rel_diff_to_peer"], ".1e"), f"{r['matmul_tflops']:.1f}",
                   ms(r["floor_s"]), f"{r['ratio_to_floor']:.2f}"])
    section_table(console, rows, "G2",
                  "G2. Element-wise updates against the device's copy bandwidth",
                  BANDWIDTH_COLUMNS, bandwidth_cells)
    section_table(
        console, rows, "G4", f"G4. Newton-Schulz alone (5 steps), median of {STEPS}",
        ("n", "precision", "form", "ms", "x floor"),
        lambda r: [str(r["n"]), r["precision"], r["form"], ms(r["ns_s"]),
                   num(r["ratio_to_floor"], ".2f")])
    section_table(
        console, rows, "G3", "G3. Engine steps/s, one run (compile s per structure)",
        ("optimizer", "n", "backend", "steps/s", "compile s"),
        lambda r: [r["optimizer"], str(r["n"]), r["backend"], f"{r['steps_per_s']:.1f}",
                   f"{r['compile_s']:.2f}"])
