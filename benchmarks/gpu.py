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
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from saddle import Config, engine

GPU_SIZES = (1024, 2048, 4096)
STEPS = 20


def _ns_flops(n: int, steps: int = 5) -> float:
    return steps * 6.0 * n**3  # square: 4 n^3 (two products with X) + 2 n^3 (A @ A)


def _median_s(fn, repeats: int = STEPS, warmup: int = 3) -> float:
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _matmul_rate(n: int, dtype) -> float:
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32).astype(dtype)
    f = jax.jit(lambda a, b: a @ b)
    return 2 * n**3 / _median_s(lambda: f(a, b))


def _jax_update(opt, n: int):
    """(median step s, first-step update as float64 NumPy) of an optax-style optimizer."""
    W = jax.random.normal(jax.random.key(1), (n, n), jnp.float32) * 0.1
    G = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
    state = opt.init(W)
    f = jax.jit(opt.update)
    t = _median_s(lambda: f(G, state, W)[0])
    return t, np.asarray(f(G, state, W)[0], np.float64)


def _torch_muon(n: int, lr: float):
    """(median step s, first-step update) of torch.optim.Muon on the same W and G."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch has no CUDA device")
    W0 = np.asarray(jax.random.normal(jax.random.key(1), (n, n), jnp.float32) * 0.1)
    G = torch.as_tensor(np.asarray(jax.random.normal(jax.random.key(2), (n, n), jnp.float32)),
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
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(STEPS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times), update


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def bench_gpu_muon(sizes=GPU_SIZES) -> list[dict]:
    import optax

    from saddle.optimizers import muon

    rows = []
    lr = 0.02
    for n in sizes:
        f32_rate = _matmul_rate(n, jnp.float32)
        bf16_rate = _matmul_rate(n, jnp.bfloat16)
        ours, u_ours = _jax_update(muon(lr), n)
        ref, u_ref = _jax_update(optax.contrib.muon(lr), n)
        rows.append(dict(section="G1", n=n, precision="float32 (default: TF32)", step_s=ours,
                         peer="optax.contrib.muon", peer_step_s=ref, ratio_to_peer=ours / ref,
                         matmul_tflops=f32_rate / 1e12, floor_s=_ns_flops(n) / f32_rate,
                         ratio_to_floor=ours * f32_rate / _ns_flops(n),
                         rel_diff_to_peer=_rel(u_ours, u_ref)))
        ours16, u16 = _jax_update(muon(lr, ns_dtype=jnp.bfloat16), n)
        row = dict(section="G1", n=n, precision="bf16 Newton-Schulz", step_s=ours16,
                   peer="torch.optim.Muon", peer_step_s=None, ratio_to_peer=None,
                   matmul_tflops=bf16_rate / 1e12, floor_s=_ns_flops(n) / bf16_rate,
                   ratio_to_floor=ours16 * bf16_rate / _ns_flops(n),
                   rel_diff_to_peer=None, rel_diff_to_float32=_rel(u16, u_ours))
        try:
            t, u_torch = _torch_muon(n, lr)
            __import__("torch").cuda.empty_cache()
            row.update(peer_step_s=t, ratio_to_peer=ours16 / t, rel_diff_to_peer=_rel(u16, u_torch))
        except Exception as e:  # torch absent or without CUDA: the row says so
            row.update(peer=f"torch.optim.Muon unavailable: {type(e).__name__}: {e}"[:120])
        rows.append(row)
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
    sizes = (1024,) if quick else GPU_SIZES
    return bench_gpu_muon(sizes) + bench_gpu_bandwidth(1024 if quick else 4096) + \
        bench_gpu_engine(1024 if quick else 4096, 50 if quick else 200)


def print_gpu_table(rows: list[dict], console) -> None:
    from rich.table import Table

    g1 = [r for r in rows if r["section"] == "G1"]
    if g1:
        t = Table(title=f"G1. Muon step on {jax.devices()[0].device_kind}, median of {STEPS} "
                  "(target: <= 1.0x the peer)")
        for col in ("n", "precision", "step ms", "peer", "peer ms", "x peer", "rel diff",
                    "matmul TFLOP/s", "floor ms", "x floor"):
            t.add_column(col)
        for r in g1:
            peer_ms = "-" if r["peer_step_s"] is None else f"{r['peer_step_s'] * 1e3:.3f}"
            ratio = "-" if r["ratio_to_peer"] is None else f"{r['ratio_to_peer']:.2f}"
            rel = "-" if r["rel_diff_to_peer"] is None else f"{r['rel_diff_to_peer']:.1e}"
            t.add_row(str(r["n"]), r["precision"], f"{r['step_s'] * 1e3:.3f}", r["peer"],
                      peer_ms, ratio, rel, f"{r['matmul_tflops']:.1f}",
                      f"{r['floor_s'] * 1e3:.3f}", f"{r['ratio_to_floor']:.2f}")
        console.print(t)
    g2 = [r for r in rows if r["section"] == "G2"]
    if g2:
        t = Table(title="G2. Element-wise updates against the device's copy bandwidth")
        for col in ("optimizer", "n", "step ms", "floor ms", "x floor", "copy GB/s"):
            t.add_column(col)
        for r in g2:
            t.add_row(r["optimizer"], str(r["n"]), f"{r['step_s'] * 1e3:.3f}",
                      f"{r['floor_s'] * 1e3:.3f}", f"{r['ratio_to_floor']:.2f}",
                      f"{r['copy_gb_per_s']:.0f}")
        console.print(t)
    g3 = [r for r in rows if r["section"] == "G3"]
    if g3:
        t = Table(title="G3. Engine steps/s, one run (compile s per structure)")
        for col in ("optimizer", "n", "backend", "steps/s", "compile s"):
            t.add_column(col)
        for r in g3:
            t.add_row(r["optimizer"], str(r["n"]), r["backend"], f"{r['steps_per_s']:.1f}",
                      f"{r['compile_s']:.2f}")
        console.print(t)
