"""The lab's benchmark suite: speed measured side by side in one process.

Every ratio in the table is between two timings taken in the same run, on the same machine:

A. Element-wise optimizers, a batch of 64 seeds at n = 64 for 2000 steps with isotropic noise
   (coherent basis, gamma = 0, so every run takes exactly 2000 steps): runs/s of the engine
   (auto backend), of JAX and of numba, against (1) the plain per-seed NumPy loop and
   (2) the floor set by generating the noise with the same generator plus the memory
   traffic of the optimizer's buffers.
B. The Muon step (optimizer update alone, float32) at n in {64, 256, 1024}: against
   ``optax.contrib.muon`` on the same shape and dtype, and against the matmul floor
   (Newton-Schulz FLOPs / the measured ``jnp.matmul`` FLOP rate at that shape).
C. AdamW and Mano steps at n = 1024 against the memory-bandwidth floor (bytes touched /
   measured copy bandwidth).
D. Engine steps/s for one run of every optimizer at n in {64, 256, 1024}, and compile time
   per configuration structure.
G. On a GPU: the Muon step at n up to 4096 against optax (float32) and torch (bf16), the
   element-wise updates against the copy bandwidth, engine steps/s (:mod:`benchmarks.gpu`).
N. Network landscapes: the linear network's engine steps/s against a plain optax loop of
   the same model and one with the escape test and early exit, AdamW and SGD, batched over
   seeds, at widths 128 and 1024 (:mod:`benchmarks.network`).

By default the CPU sections (ABCDN) run on a CPU and section G runs on a GPU.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from saddle import Config, engine, prng

from .common import BANDWIDTH_COLUMNS, bandwidth_cells, median_time, ms, section_table
from .gpu import bench_gpu, print_gpu_table
from .network import bench_network
from .sections import parse_sections

ELEMENTWISE = ("adamw", "sgd", "sign_descent", "normalized_gd", "mano")
ALL = ("adamw", "muon", "mano", "sgd", "sign_descent", "normalized_gd")


# --- A: element-wise batch -----------------------------------------------------------------


def _batch_config(opt: str, n: int, steps: int, backend: str) -> Config:
    return Config.from_dict(
        optimizer=opt, m=n, n=n, basis="coherent", gamma=0.0, radius=1e9, max_steps=steps,
        noise="isotropic", sigma=0.01, backend=backend,
    )


def _engine_runs_per_s(config: Config, seeds: int) -> tuple[float, float]:
    """(runs/s, compile s) of a batch of ``seeds`` runs; compile excluded from the rate."""
    out = engine.run_batch([config] * seeds, list(range(seeds)))
    compile_s = out.compile_s
    out = engine.run_batch([config] * seeds, list(range(seeds)))
    return seeds / out.wall_s, compile_s


def _numpy_runs_per_s(config: Config, steps: int, runs: int) -> float:
    from .numpy_loop import numpy_run

    t0 = time.perf_counter()
    for s in range(runs):
        numpy_run(config, s, steps)
    return runs / (time.perf_counter() - t0)


def _copy_bandwidth(per_thread: int) -> float:
    """Bytes moved per second (read + write) streaming ``per_thread`` bytes on each core.

    Measured at the size of the step's working set, in place (no allocation, so no page
    faults), on all cores with one slab per thread: a working set that fits in cache gets the
    cache's bandwidth, one that does not gets DRAM's. An earlier version timed ``x + 1`` on a
    fresh 256 MiB array in JAX; page faults on the output made that 6 GB/s, a "floor" that the
    AdamW step beat by 40%.
    """
    import numba as nb

    @nb.njit(parallel=True, cache=True)
    def stream(slabs, reps):
        for b in nb.prange(slabs.shape[0]):
            x = slabs[b]
            for _ in range(reps):
                for i in range(x.size):
                    x[i] = x[i] * np.float32(0.999) + np.float32(1e-3)
        return slabs[0, 0]

    threads = nb.get_num_threads()
    per = max(16, per_thread // 4)
    slabs = np.ones((threads, per), np.float32)
    reps = max(1, int(2e8 // (per * threads)))
    stream(slabs, 1)
    t = median_time(lambda: stream(slabs, reps), 3)
    return 2 * 4 * per * threads * reps / t


def _jax_normal_rate(size: int, draws: int) -> float:
    """Normals/s of the engine's pcg3d generator at this size (vmapped like the engine)."""
    keys = prng.run_key(jnp.arange(16, dtype=jnp.uint32), prng.STREAM_NOISE)
    shape = (size // 16,)

    def body(t, acc):
        return acc + jax.vmap(lambda k: prng.normal(k, t, shape, jnp.float32))(keys)

    f = jax.jit(lambda: jax.lax.fori_loop(0, draws, body, jnp.zeros((16,) + shape, jnp.float32)))
    t = median_time(f, 3)
    return draws * size / t


def _numba_normal_rate(size: int, draws: int) -> float:
    """Normals/s of the numba kernels' ziggurat, on all cores (one stream per thread)."""
    import numba as nb

    from saddle.kernels.rng import ZIG_FN, ZIG_KN, ZIG_WN, fill_normal, seed_state

    @nb.njit(parallel=True, cache=True)
    def fill(threads, size, draws, kn, wn, fn):
        acc = np.zeros(threads)
        for b in nb.prange(threads):
            s = seed_state(b, 0)
            buf = np.empty(size, np.float32)
            for _ in range(draws):
                s = fill_normal(s, buf, np.float32(1.0), kn, wn, fn)
                acc[b] += buf[0]
        return acc

    threads = nb.get_num_threads()
    per = max(1, draws // threads)
    fill(threads, 16, 1, ZIG_KN, ZIG_WN, ZIG_FN)
    t0 = time.perf_counter()
    fill(threads, size, per, ZIG_KN, ZIG_WN, ZIG_FN)
    return threads * per * size / (time.perf_counter() - t0)


def bench_elementwise(quick: bool) -> list[dict]:
    n, seeds, steps = 64, 64, (400 if quick else 2000)
    numpy_runs = 2 if quick else 4
    D = n * n
    normals = seeds * steps * D
    jax_rate = _jax_normal_rate(16 * D, 200)
    numba_rate = _numba_normal_rate(D, 400 if quick else 2000)
    buffers = {"adamw": 4, "sgd": 3, "sign_descent": 3, "normalized_gd": 3, "mano": 4}
    # The floor's traffic is one run's buffers per core: runs are independent, so the best
    # schedule (the numba kernel's) keeps a run in cache for all its steps.
    bw = _copy_bandwidth(D * 4 * max(buffers.values()))
    rows = []
    for opt in ELEMENTWISE:
        ref = _numpy_runs_per_s(_batch_config(opt, n, steps, "jax"), steps, numpy_runs)
        traffic_s = seeds * steps * D * 4 * 2 * buffers[opt] / bw
        for backend in ("numba", "jax"):
            rate, compile_s = _engine_runs_per_s(_batch_config(opt, n, steps, backend), seeds)
            gen = numba_rate if backend == "numba" else jax_rate
            floor_s = normals / gen + traffic_s
            rows.append(
                dict(
                    section="A",
                    optimizer=opt,
                    backend=backend,
                    n=n,
                    seeds=seeds,
                    steps=steps,
                    runs_per_s=rate,
                    numpy_runs_per_s=ref,
                    speedup_vs_numpy=rate / ref,
                    floor_s=floor_s,
                    time_s=seeds / rate,
                    ratio_to_floor=(seeds / rate) / floor_s,
                    normals_per_s=gen,
                    compile_s=compile_s,
                )
            )
    return rows


# --- B: Muon step against optax and the matmul floor -----------------------------------------


def _ns_flops(m: int, n: int, steps: int = 5) -> float:
    r, c = min(m, n), max(m, n)
    return steps * (4 * r * r * c + 2 * r**3)


def _matmul_rate(n: int) -> float:
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    t = median_time(lambda: f(a), 10 if n < 1024 else 5)
    return 2 * n**3 / t


def _update_time(opt, shape, dtype=jnp.float32, repeats=10) -> float:
    W = jax.random.normal(jax.random.key(1), shape, dtype) * 0.1
    G = jax.random.normal(jax.random.key(2), shape, dtype)
    state = opt.init(W)
    f = jax.jit(opt.update)
    return median_time(lambda: f(G, state, W)[0], repeats)


def bench_muon(quick: bool) -> list[dict]:
    import optax

    from saddle.optimizers import muon

    rows = []
    for n in (64, 256) if quick else (64, 256, 1024):
        reps = 20 if n < 1024 else 5
        ours = _update_time(muon(0.02), (n, n), repeats=reps)
        ref = _update_time(optax.contrib.muon(0.02), (n, n), repeats=reps)
        rate = _matmul_rate(n)
        floor = _ns_flops(n, n) / rate
        rows.append(
            dict(section="B", optimizer="muon", n=n, step_s=ours, optax_step_s=ref,
                 ratio_to_optax=ours / ref, matmul_gflops=rate / 1e9, floor_s=floor,
                 ratio_to_floor=ours / floor)
        )
    return rows


# --- C: element-wise steps at n = 1024 against memory bandwidth ------------------------------


def bench_bandwidth(quick: bool) -> list[dict]:
    from saddle.optimizers import adamw, mano

    n = 512 if quick else 1024
    bw = _copy_bandwidth(7 * n * n * 4 // 2)  # one step's arrays, split over two cores
    rows = []
    # Bytes touched per update: read g, W and the buffers, write the buffers and the update.
    for name, opt, arrays in (("adamw", adamw(1e-3), 2 + 2 + 3), ("mano", mano(1e-3), 2 + 1 + 2)):
        t = _update_time(opt, (n, n), repeats=10)
        floor = arrays * n * n * 4 / bw
        rows.append(dict(section="C", optimizer=name, n=n, step_s=t, floor_s=floor,
                         ratio_to_floor=t / floor, copy_gb_per_s=bw / 1e9))
    return rows


# --- D: engine steps/s for every optimizer -------------------------------------------------


def bench_engine(quick: bool) -> list[dict]:
    rows = []
    sizes = (64, 256) if quick else (64, 256, 1024)
    for n in sizes:
        steps = {64: 2000, 256: 400, 1024: 40}[n] // (4 if quick else 1)
        for opt in ALL:
            for basis in ("coherent", "incoherent"):
                if basis == "incoherent" and opt != "adamw":
                    continue  # one incoherent row: the cost of the dense-basis gradient
                c = Config.from_dict(optimizer=opt, m=n, n=n, basis=basis, gamma=0.0,
                                     radius=1e9, max_steps=steps)
                first = engine.run_batch([c], [0])
                out = engine.run_batch([c], [1])
                rows.append(dict(section="D", optimizer=opt, n=n, basis=basis,
                                 backend=engine.structure_of(c).backend,
                                 steps_per_s=steps / out.wall_s, compile_s=first.compile_s))
    return rows


def default_sections() -> str:
    return "G" if jax.default_backend() == "gpu" else "ABCDN"


def run(quick: bool = False, sections: str | None = None) -> dict:
    info = dict(
        machine=platform.machine(),
        processor=platform.processor() or platform.machine(),
        jax_backend=jax.default_backend(),
        devices=[str(d) for d in jax.devices()],
        jax_version=jax.__version__,
        cpu_count=__import__("os").cpu_count(),
        quick=quick,
    )
    sections = sections or default_sections()
    info["device_kind"] = jax.devices()[0].device_kind
    rows: list[dict] = []
    for sec, fn in (("A", bench_elementwise), ("B", bench_muon), ("C", bench_bandwidth),
                    ("D", bench_engine), ("G", bench_gpu), ("N", bench_network)):
        if sec in sections:
            rows.extend(fn(quick))
    return dict(info=info, rows=rows)


def print_table(result: dict, console=None) -> None:
    from rich.console import Console

    console = console or Console(soft_wrap=True)
    info = result["info"]
    console.print(f"[bold]saddle benchmarks[/bold] on {info['processor']}, {info['cpu_count']} "
                  f"cores, JAX {info['jax_version']} ({info['jax_backend']}: "
                  f"{info.get('device_kind', '?')})")
    rows = result["rows"]
    section_table(
        console, rows, "A",
        lambda r: f"A. Element-wise optimizers: {r['seeds']} seeds, n = {r['n']}, "
        f"{r['steps']} steps, isotropic noise (target: >= 5x NumPy, <= 1.5x floor)",
        ("optimizer", "backend", "runs/s", "NumPy runs/s", "x NumPy", "floor s", "time s",
         "x floor", "normals/s", "compile s"),
        lambda r: [r["optimizer"], r["backend"], f"{r['runs_per_s']:.1f}",
                   f"{r['numpy_runs_per_s']:.2f}", f"{r['speedup_vs_numpy']:.1f}",
                   f"{r['floor_s']:.2f}", f"{r['time_s']:.2f}", f"{r['ratio_to_floor']:.2f}",
                   f"{r['normals_per_s'] / 1e6:.0f}M", f"{r['compile_s']:.2f}"])
    section_table(
        console, rows, "B", "B. Muon step, float32 (target: <= 1.2x matmul floor, <= 1.0x optax)",
        ("n", "step ms", "optax ms", "x optax", "matmul GFLOP/s", "floor ms", "x floor"),
        lambda r: [str(r["n"]), ms(r["step_s"]), ms(r["optax_step_s"]),
                   f"{r['ratio_to_optax']:.2f}", f"{r['matmul_gflops']:.1f}", ms(r["floor_s"]),
                   f"{r['ratio_to_floor']:.2f}"])
    section_table(console, rows, "C",
                  "C. Element-wise steps against memory bandwidth (target: <= 1.5x floor)",
                  BANDWIDTH_COLUMNS, bandwidth_cells)
    section_table(
        console, rows, "D", "D. Engine steps/s, one run (compile time per structure; target < 5 s)",
        ("optimizer", "n", "basis", "backend", "steps/s", "compile s"),
        lambda r: [r["optimizer"], str(r["n"]), r["basis"], r["backend"],
                   f"{r['steps_per_s']:.1f}", f"{r['compile_s']:.2f}"])
    print_gpu_table(rows, console, info.get("device_kind"))
    section_table(
        console, rows, "N", "N. Linear network (m = n = 16): engine against plain optax loops, "
        "seed-steps/s",
        ("optimizer", "width", "D", "seeds", "steps", "engine", "optax", "optax+stop",
         "x optax", "x optax+stop"),
        lambda r: [r["optimizer"], str(r["width"]), str(r["D"]), str(r["seeds"]),
                   str(r["steps"]), f"{r['engine_steps_per_s']:.0f}",
                   f"{r['optax_steps_per_s']:.0f}", f"{r['optax_stop_steps_per_s']:.0f}",
                   f"{r['engine_over_optax']:.2f}", f"{r['engine_over_optax_stop']:.2f}"])


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer steps")
    p.add_argument("--sections", default=None,
                   help="which sections to run: any of ABCDGN (default: ABCDN on a CPU, G on a "
                   "GPU)")
    p.add_argument("--json", metavar="FILE", default="benchmarks/results.json",
                   help="where to write the JSON (default: benchmarks/results.json)")
    args = p.parse_args(argv)
    try:
        sections = parse_sections(args.sections)
    except ValueError as e:
        p.error(str(e))
    result = run(quick=args.quick, sections=sections)
    print_table(result)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0
